"""Coverage study: do notebook 03's intervals cover the truth the generator simulates?

Twenty generated books, each analysed as notebook 03 does it (exposure types read from the data, total
effects, 200-replicate account bootstrap, the window's value against its cost). The truth is the
generator's, computed by simulation (``truth.json``): each programme's total effect on the churn hazard
with the programme forced on and off, and the ROI of the last 12 months' deliveries from paired worlds
with and without them. A 95% interval should cover it in about 19 books of 20; the effects and the ROI
are held to 17 (85%), as the issue asks. Sized to the two-core budget: 1,500 accounts per book, about 8 minutes.

History: the ROI interval first covered the simulated ROI in 13 of these 20 books. Projecting each
account's months from its first month's signals undervalued the window's work by half even with the
simulated hazard ratios (an account a programme reaches is often riskier then than it was at the start);
the landmark models (the hazard projected from where the account stood, regression to the mean built in)
brought that to within sampling error of the simulated value, and the ROI coverage to 16; a step at every
value of count signals in the binned propensity model (escalations follow "four tickets in a quarter")
to 17. The misses are all below the truth: at 1,500 accounts the escalation's estimate still leans above
1 (mean 1.16 over these books). Limiting those steps to small counts (employees and seats had gained 20
meaningless steps each) once left seed 512 without a QBR estimate: its outcome model reached the maximum
but Fisher scoring's gain flickered around zero in rounding noise (fitted probabilities near 1); the fit
now stops at a gain of 1e-9 of the log-likelihood (R's glm.fit: 1e-8 of the deviance), and the study
passes with the limit and the chord-method refits of the replicates (2026-12-03, 509 s).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

SEEDS = range(500, 520)
ACCOUNTS = 1500
REPLICATES = 200


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    import cslab
    from cslab import exposure, features, roi
    from cslab.data.synth import generate
    from cslab.programmes import ProgrammeEffects

    effects, money = [], []
    for seed in SEEDS:
        book = generate(n_accounts=ACCOUNTS, n_months=36, seed=seed)
        data = cslab.load(book.write(tmp_path_factory.mktemp(f"book{seed}")))
        panel = cslab.panel(data)
        dataset, scoring = features.build_dataset(data, panel, horizon_months=1)
        rows = roi.person_months(dataset, panel, scoring)
        kinds = exposure.classify_programmes(data.cs_activities)["exposure"].to_dict()
        model = ProgrammeEffects().fit(rows, sorted(kinds), kinds=kinds)
        start, end = roi.cost_window(panel.attrs["as_of"], 12)
        model.plan_value(start, end)
        cost = roi.cs_cost(data, start - pd.Timedelta(days=1), panel.attrs["as_of"])["total"]
        result = roi.cs_roi(model, cost, n_bootstrap=REPLICATES, seed=seed, n_jobs=2)
        for programme, row in result.effects.iterrows():
            effects.append(
                {
                    "seed": seed,
                    "programme": programme,
                    "truth": book.truth["programme_hr"][programme],
                    "hr": row["hr"],
                    "low": row["hr_low"],
                    "high": row["hr_high"],
                }
            )
        money.append(
            {
                "seed": seed,
                "truth": book.truth["roi"],
                "roi": result.roi,
                "low": result.roi_low,
                "high": result.roi_high,
                "failed": result.n_failed,
                "window": result.cost_window,
                "truth_window": book.truth["roi_cost_window"],
            }
        )
    return pd.DataFrame(effects), pd.DataFrame(money)


@pytest.mark.parametrize("programme", ["onboarding", "training", "qbr", "health_check", "escalation"])
def test_effect_intervals_cover_the_simulated_total_effects(study, programme):
    effects, _ = study
    runs = effects[effects["programme"].eq(programme)]
    covered = (runs["low"] <= runs["truth"]) & (runs["truth"] <= runs["high"])
    assert len(runs) == len(SEEDS)
    assert covered.sum() >= 17, runs.round(3).to_string()


def test_roi_intervals_cover_the_simulated_roi(study):
    _, money = study
    assert (money["window"] == money["truth_window"]).all()  # one window, as the truth's
    covered = (money["low"] <= money["truth"]) & (money["truth"] <= money["high"])
    assert covered.sum() >= 17, money.round(3).to_string()
    assert (money["failed"] <= 0.05 * REPLICATES).all()  # failures are rare, and counted
    assert np.isfinite(money[["roi", "low", "high"]]).all().all()
