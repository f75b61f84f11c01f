"""Total effects, exposure types, money and the bootstrap, on books this file simulates itself.

The simulation here is not ``cslab synth``: a monthly person-period book with one time-varying
confounder (adoption), a one-time programme given to accounts whose adoption looks weak and that
raises adoption afterwards (mediation), and a recurring programme whose effect lasts three months.
Its truth is computed by simulation with the programmes forced on and off, never from the formula.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cslab import glm, roi
from cslab.exposure import RECURRING_REPEAT_SHARE
from cslab.programmes import ProgrammeEffects, kinds_from_rows

DIRECT_HR = {"coaching": 0.8, "review": 0.6}
BOOST = 0.6  # coaching raises adoption by this much (on its z-scale), for good
ADOPTION = -0.9  # log hazard ratio per unit of adoption


def simulate(n=4000, months=24, seed=0, force=None):
    """Person-months of ``n`` accounts; ``force`` = (programme, on) overrides who gets it."""
    rng = np.random.default_rng(seed)
    adoption = rng.normal(0, 1, n)
    alive = np.ones(n, bool)
    coached = np.zeros(n, bool)
    last_review = np.full(n, -99)
    rows = []
    for t in range(months):
        # deliveries of month t, decided on last month's adoption (the observed signal)
        u1, u2, u3 = rng.random(n), rng.random(n), rng.random(n)
        p_coach = np.where(adoption < -0.3, 0.20, 0.03)
        p_review = np.where(adoption < 0, 0.12, 0.02)
        coach_now = ~coached & (u1 < p_coach)
        review_now = u2 < p_review
        if force and force[0] == "coaching":
            coach_now = ~coached & (np.full(n, force[1]) if t == 0 else np.zeros(n, bool))
        if force and force[0] == "review":
            review_now = np.full(n, force[1])
        coached |= coach_now
        last_review = np.where(review_now, t, last_review)
        # adoption drifts (AR(1), 0.9); coaching lifts it from the month after, by BOOST in the long run
        adoption = 0.9 * adoption + rng.normal(0, 0.35, n) + np.where(coached & ~coach_now, BOOST * 0.1, 0.0)
        exposed_review = (t - last_review) < 3  # a review in months t-2..t
        rows.append(
            pd.DataFrame(
                {
                    "account_id": np.char.add("S", np.arange(n).astype(str)),
                    "month": t,
                    "alive": alive.copy(),
                    "usage_adoption": adoption.copy(),
                    "cs_coaching_now": coach_now.astype(int),
                    "cs_review_now": review_now.astype(int),
                    "coached": coached.copy(),
                    "review_on": exposed_review,
                    "mrr": 100.0 + 0 * adoption,
                }
            )
        )
        # churn in month t+1 from the end-of-month state
        eta = (
            -3.6
            + ADOPTION * adoption
            + np.log(DIRECT_HR["coaching"]) * coached
            + np.log(DIRECT_HR["review"]) * exposed_review
        )
        churn = alive & (u3 < -np.expm1(-np.exp(eta)))
        rows[-1]["label"] = churn.astype(float)
        alive &= ~churn
    frame = pd.concat(rows, ignore_index=True)
    frame = frame[frame["alive"]].copy()
    month_ends = pd.period_range("2023-01", periods=months, freq="M").to_timestamp(how="end").normalize()
    frame["observation_date"] = month_ends[frame["month"].to_numpy()]
    frame["tenure_months"] = frame["month"].astype(float)
    frame["cs_coaching_count"] = frame.groupby("account_id")["cs_coaching_now"].cumsum()
    frame["cs_review_count"] = frame.groupby("account_id")["cs_review_now"].cumsum()
    frame["at_risk"], frame["renewal"], frame["segment"] = True, 0.0, "all"
    return frame.drop(columns=["alive", "cs_coaching_now", "cs_review_now"]).reset_index(drop=True)


def true_total_hr(programme):
    """The programme's total effect on the hazard: both worlds simulated, one cloglog of churn on
    the forced exposure and the month (common random numbers across the two worlds)."""
    on, off = simulate(n=20000, seed=99, force=(programme, True)), simulate(n=20000, seed=99, force=(programme, False))
    both = pd.concat([on.assign(world=1.0), off.assign(world=0.0)], ignore_index=True)
    X = np.column_stack(
        [np.ones(len(both)), both["world"], *[(both["month"] == m).astype(float) for m in range(2, 24)]]
    )
    return float(np.exp(glm.fit_binary(X, both["label"].to_numpy(), link="cloglog").coef[1]))


@pytest.fixture(scope="module")
def book():
    return simulate()


@pytest.fixture(scope="module")
def fitted(book):
    return ProgrammeEffects(exposure_months=3).fit(
        book, ["coaching", "review"], kinds={"coaching": "one_time", "review": "recurring"}
    )


def test_glm_matches_statsmodels_and_frequency_weights_equal_copies():
    import statsmodels.api as sm

    rng = np.random.default_rng(3)
    X = np.column_stack([np.ones(5000), rng.normal(size=(5000, 3))])
    y = (rng.random(5000) < -np.expm1(-np.exp(-2.5 + X[:, 1:] @ [0.4, -0.3, 0.1]))).astype(float)
    groups = rng.integers(0, 500, 5000)
    w = rng.gamma(4, 0.25, 5000)
    for link, sm_link in (("cloglog", sm.families.links.CLogLog()), ("logit", sm.families.links.Logit())):
        fit = glm.fit_binary(X, y, w, link=link)
        ref = sm.GLM(y, X, family=sm.families.Binomial(link=sm_link), var_weights=w).fit(
            cov_type="cluster", cov_kwds={"groups": groups}
        )
        assert np.abs(fit.coef - ref.params).max() < 1e-6
        se = np.sqrt(np.diag(glm.cluster_covariance(X, y, fit, groups, w)))
        assert np.abs(se / ref.bse - 1).max() < 0.02
    counts = rng.integers(0, 3, 5000)
    weighted = glm.fit_binary(X, y, counts.astype(float), link="cloglog").coef
    copied = glm.fit_binary(np.repeat(X, counts, axis=0), np.repeat(y, counts), link="cloglog").coef
    assert np.abs(weighted - copied).max() < 1e-6
    with pytest.raises(glm.ConvergenceError):
        glm.fit_binary(X, np.zeros(5000), link="logit")
    # an offset is a part of the linear predictor with its coefficient fixed at 1 (as statsmodels')
    offset = 0.4 * X[:, 1]
    fixed = glm.fit_binary(X[:, [0, 2, 3]], y, w, link="cloglog", offset=offset)
    ref = sm.GLM(
        y, X[:, [0, 2, 3]], family=sm.families.Binomial(link=sm.families.links.CLogLog()), var_weights=w, offset=offset
    ).fit()
    assert np.abs(fixed.coef - ref.params).max() < 1e-6


def test_refit_with_reused_information_reaches_the_same_maximum():
    """A replicate's refit from the point fit's information (the chord method) ends where a cold
    Fisher-scoring fit ends, for both links, a ridge penalty and a wide design of step indicators."""
    rng = np.random.default_rng(11)
    n = 20_000
    signals = rng.normal(size=(n, 4))
    steps = np.column_stack([(signals[:, j] > q).astype(float) for j in range(4) for q in (-1, -0.3, 0.3, 1)])
    X = np.column_stack([np.ones(n), signals, steps])
    y = (rng.random(n) < 1 / (1 + np.exp(3 - signals[:, 0] + 0.8 * steps[:, 6]))).astype(float)
    for link in ("logit", "cloglog"):
        point = glm.fit_binary(X, y, link=link, penalty=1.0)
        assert point.information is not None and point.information.shape == (X.shape[1], X.shape[1])
        for replicate in range(3):
            freq = rng.poisson(1.0, n).astype(float)
            cold = glm.fit_binary(X, y, freq, link=link, penalty=1.0, tol=1e-9)
            warm = glm.fit_binary(X, y, freq, link=link, penalty=1.0, tol=1e-9, **glm.warm_start(point))
            assert np.abs(warm.coef - cold.coef).max() < 1e-5, (link, replicate)
            assert warm.information is point.information  # converged on the reused information


def test_sandwich_of_a_penalised_fit_with_a_constant_column_is_finite():
    """A column constant on the fitted rows (a baseline signal that never varies among a programme's
    decisions) leaves X'WX singular; the penalised fit is defined, and so is its sandwich."""
    rng = np.random.default_rng(5)
    n = 3000
    X = np.column_stack([np.ones(n), rng.normal(size=n), np.ones(n), rng.integers(0, 2, n)])
    y = (rng.random(n) < 0.1 + 0.1 * X[:, 3]).astype(float)
    fit = glm.fit_binary(X, y, link="cloglog", penalty=0.1)
    V = glm.cluster_covariance(X, y, fit, rng.integers(0, 300, n), penalty=0.1)
    assert np.isfinite(V).all() and (np.diag(V)[[0, 1, 3]] > 0).all()
    assert abs(V[2, 2]) < 1e-12  # the constant copy of the intercept: held at 0 by the ridge
    se = np.sqrt(np.diag(V)[[0, 1, 3]])
    # the effect's standard error is the unpenalised one's up to the tiny ridge
    unpenalised = glm.cluster_covariance(
        X[:, [0, 1, 3]], y, glm.fit_binary(X[:, [0, 1, 3]], y, link="cloglog"), rng.integers(0, 300, n)
    )
    assert abs(se[2] / np.sqrt(unpenalised[2, 2]) - 1) < 0.1


def test_exposure_types_from_counts(book):
    kinds = kinds_from_rows(book, ["coaching", "review"])
    repeat = book.groupby("account_id")["cs_review_count"].max()
    share = (repeat[repeat > 0] > 1).mean()
    assert kinds["coaching"] == "one_time"  # given at most once
    assert kinds["review"] == ("recurring" if share >= RECURRING_REPEAT_SHARE else "one_time")
    assert kinds_from_rows(book, ["review"], min_repeat_share=share - 0.01) == {"review": "recurring"}
    assert kinds_from_rows(book, ["review"], min_repeat_share=share + 0.01) == {"review": "one_time"}


def test_total_effects_recover_simulated_truth_and_differ_from_direct(fitted):
    truth = {p: true_total_hr(p) for p in DIRECT_HR}
    # the mediated programme's total effect is stronger than its direct effect; the recurring one
    # has no mediator, so total = direct
    assert truth["coaching"] < DIRECT_HR["coaching"] - 0.05
    assert truth["review"] == pytest.approx(DIRECT_HR["review"], abs=0.05)
    s = fitted.summary
    for p, hr in truth.items():
        assert s.loc[p, "hr_low_model"] < hr < s.loc[p, "hr_high_model"], (p, hr, s.loc[p].to_dict())
        assert s.loc[p, "max_smd_after"] < 0.1
    # adjusting for the month's adoption (the direct effect) hides part of coaching's effect
    assert s.loc["coaching", "direct_hr"] > s.loc["coaching", "hr"] + 0.03
    # the naive comparison is biased the other way: coached accounts were weak to begin with
    assert s.loc["coaching", "naive_hr"] > truth["coaching"] + 0.1


def test_on_forever_recurring_exposure_misses_a_short_lived_effect(book):
    as_one_time = ProgrammeEffects().fit(book, ["review"], kinds={"review": "one_time"})
    recurring = ProgrammeEffects().fit(book, ["review"], kinds={"review": "recurring"})
    assert recurring.summary.loc["review", "hr"] < 0.75
    assert as_one_time.summary.loc["review", "hr"] > recurring.summary.loc["review", "hr"] + 0.1


def test_value_is_zero_without_effects_and_counts_each_window_delivery_once(fitted):
    model = fitted.plan_value("2024-01-01", "2024-12-31", horizon_months=12)
    plan = model.value_plan_
    # every valued account had a delivery in the window, and it is valued from its first one
    assert len(plan["accounts"]) == len(set(plan["accounts"])) > 100
    value = model.value(gross_margin=0.5)
    assert value["retained"] > 0 and value["expansion"] == 0.0  # no expansion outcome in this book
    neutral = {
        "programmes": {p: {**e, "churn_coef": np.r_[e["churn_coef"][:-1], 0.0]} for p, e in model.effects_.items()}
    }
    nothing = model.value(neutral, gross_margin=0.5)
    assert nothing["total"] == pytest.approx(0.0, abs=1e-6)
    assert all(abs(v) < 1e-6 for v in nothing["by_programme"].values())
    # margin scales the value
    assert model.value(gross_margin=1.0)["total"] == pytest.approx(2 * value["total"])


def test_bootstrap_is_reproducible_counts_failures_and_resamples_cost(fitted):
    model = fitted.plan_value("2024-01-01", "2024-12-31")
    one = roi.cs_roi(model, 50_000.0, n_bootstrap=6, seed=5, n_jobs=1)
    two = roi.cs_roi(model, 50_000.0, n_bootstrap=6, seed=5, n_jobs=2)
    pd.testing.assert_frame_equal(one.replicates, two.replicates)
    assert one.n_failed == 0 and len(one.replicates) == 6
    assert one.roi == pytest.approx((one.value - 50_000) / 50_000)
    assert one.value_window == one.cost_window == "2024-01 to 2024-12"
    per_account = np.full(model._n_accounts, 50_000 / model._n_accounts)
    with_cost = roi.cs_roi(model, 50_000.0, account_cost=per_account, n_bootstrap=6, seed=5)
    assert with_cost.replicates["cost"].nunique() == 1  # equal costs: resampling keeps the total
    uneven = per_account * np.linspace(0, 2, model._n_accounts)
    varied = roi.cs_roi(model, float(uneven.sum()), account_cost=uneven, n_bootstrap=6, seed=5)
    assert varied.replicates["cost"].nunique() > 1 and varied.cost_low < varied.cost < varied.cost_high


def test_a_failing_replicate_is_counted_not_dropped(fitted, monkeypatch):
    model = fitted.plan_value("2024-01-01", "2024-12-31")
    calls = {"n": 0}
    original = ProgrammeEffects.replicate

    def flaky(self, freq):
        calls["n"] += 1
        out = original(self, freq)
        if calls["n"] == 2:
            out["failed"] = {"review": "churn model: not converged"}
        return out

    monkeypatch.setattr(ProgrammeEffects, "replicate", flaky)
    result = roi.cs_roi(model, 10_000.0, n_bootstrap=4, seed=1)
    assert result.n_failed == 1
    assert (result.replicates["failed"] != "").sum() == 1 and result.replicates["value"].isna().sum() == 1


def test_efficiency_ratios_by_hand():
    months = pd.date_range("2024-01-01", periods=16, freq="MS")
    panel = pd.DataFrame(
        [
            {"account_id": a, "month": m, "mrr": mrr, "active": True}
            for a, mrr in (("A", 100.0), ("B", 200.0))
            for m in months
        ]
    )
    panel.loc[(panel["account_id"] == "B") & (panel["month"] >= "2025-01-01"), "mrr"] = 300.0
    panel["movement"] = np.where(
        (panel["account_id"] == "B") & (panel["month"] == pd.Timestamp("2025-01-01")), "expansion", "flat"
    )
    panel["movement_mrr"] = np.where(panel["movement"] == "expansion", 100.0, 0.0)
    cost = pd.Series(1000.0, index=months)
    got = roi.efficiency_ratios(panel, cost, months=12, cost_lag_months=3)
    # the customers of 12 months ago pay 400 a month now: 4,800 ARR, against the cost of the 12 months
    # ending 3 months before the last month (2025-04): 12,000
    assert got["efficiency_cost_window"] == "2024-02 to 2025-01"
    assert got["cs_efficiency_ratio"] == pytest.approx(4800 / 12000)
    # last quarter 2025-02..04: 3 x 400; the quarter before 2024-11..2025-01: 300 + 300 + 400
    assert got["saas_magic_number"] == pytest.approx((1200 - 1000) * 4 / 3000)
    short = roi.efficiency_ratios(panel, cost.iloc[-4:], months=12)
    assert short["cs_efficiency_ratio"] is None and short["notes"]
