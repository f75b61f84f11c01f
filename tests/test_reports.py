"""The report steps notebooks 01 and 03 call (cslab.cohort_report, cslab.roi): each figure a sentence
states is the library's, each branch says what its numbers say."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cslab
from cslab import cohort_report as report
from cslab import metrics, roi, survival
from cslab.data.synth import generate


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    folder = generate(n_accounts=500, n_months=26, seed=5).write(tmp_path_factory.mktemp("book"))
    data = cslab.load(folder)
    return data, cslab.panel(data)


def test_quick_ratio_is_the_bridge_gains_over_its_losses(book):
    _, monthly = book
    movements = metrics.mrr_movements(monthly)
    quick = metrics.quick_ratio(movements, months=12)
    recent = movements.tail(12)
    gained = recent[["new", "expansion", "reactivation"]].sum().sum()
    lost = recent[["contraction", "churn"]].sum().sum()
    assert quick["months"] == 12 and quick["ratio"] == pytest.approx(gained / lost)
    assert f"USD {quick['ratio']:.2f} of new" in report.describe_quick_ratio(movements)
    nothing_lost = movements.assign(contraction=0.0, churn=0.0)
    assert np.isnan(metrics.quick_ratio(nothing_lost)["ratio"])


def test_headline_states_the_library_figures(book):
    _, monthly = book
    headline = report.headline_metrics(monthly)
    kept = metrics.revenue_retention(monthly, months=12)
    assert headline.kept["nrr"] == pytest.approx(kept["nrr"])
    assert f"**NRR was {kept['nrr']:.1%}**" in headline.sentence
    assert ("did not cover" in headline.sentence) == (kept["nrr"] < 1)
    assert headline.table.loc["GRR (12 months)", "value"] == f"{kept['grr']:.1%}"
    short = monthly[monthly["month"] >= monthly["month"].max() - pd.DateOffset(months=8)]
    short.attrs = monthly.attrs
    brief = report.headline_metrics(short)
    assert brief.kept is None and "Short history" in brief.sentence and "NRR (12 months)" not in brief.table.index


def test_survival_summary_and_recorded_results(book):
    data, monthly = book
    lifetimes = survival.account_lifetimes(monthly)
    surv = report.survival_summary(lifetimes, "segment")
    at = survival.survival_at(survival.kaplan_meier(lifetimes)["all"], times=(12,))
    assert surv.km_12 == pytest.approx(at["survival"].get(12))
    assert surv.by == "segment" and surv.logrank is not None and len(surv.sentences) == 2
    pooled, fits, why_not = report.fit_pooled_sbg(lifetimes, monthly, "Q", 10)
    assert why_not is None and 0 < pooled.alpha_ and "α =" in report.describe_sbg(pooled, "quarters")
    headline = report.headline_metrics(monthly)
    results = report.recorded_results(surv, pooled, lifetimes, headline=headline, book=metrics.book_summary(monthly))
    assert results["nrr_12m"] == pytest.approx(headline.kept["nrr"]) and results["sbg_alpha"] == pooled.alpha_
    steps = report.next_steps(headline.kept, surv)
    assert steps.count("\n- ") >= 1 and ("shrinks" in steps) == (headline.kept["nrr"] < 1)
    few = lifetimes.assign(event=0)
    assert report.fit_pooled_sbg(few, monthly)[0] is None and "No projection" in report.fit_pooled_sbg(few, None)[2]


def test_roi_report_steps(book):
    data, monthly = book
    with pytest.raises(ValueError, match="unknown programme"):
        roi.programme_rows(data, monthly, ["coffee"])
    prepared = roi.programme_rows(data, monthly, max_accounts=300, seed=1)
    assert prepared.book_accounts == monthly["account_id"].nunique()
    assert prepared.rows["account_id"].nunique() == 300 and "onboarding" in prepared.programmes
    fig, table = roi.naive_comparison(prepared)
    lifetimes = survival.account_lifetimes(prepared.sampled)
    ever = prepared.rows.groupby("account_id")["cs_onboarding_count"].max().gt(0)
    covered = lifetimes["account_id"].map(ever).fillna(False).astype(bool)
    assert table.loc["onboarding", "covered accounts"] == covered.sum()
    assert table.loc["onboarding", "churned, covered"] == pytest.approx(lifetimes.loc[covered, "event"].mean())
    assert len(fig.axes) >= len(prepared.programmes)
    assert roi.cost_share(50.0, 1000.0) == 0.05 and np.isnan(roi.cost_share(50.0, 0.0))
    ratios = {
        "cs_efficiency_ratio": 2.0,
        "saas_magic_number": None,
        "formulas": {"cs_efficiency_ratio": "A / B"},
        "retained_expanded_arr": 2e6,
        "efficiency_cost": 1e6,
        "efficiency_cost_window": "2024-01 to 2024-12",
        "notes": ["no quarters of cost"],
    }
    said = roi.describe_efficiency(ratios)
    assert (
        said[0].startswith("**CS efficiency ratio: 2.0** = A / B = USD 2M / USD 1M (cost of 2024-01 to 2024-12)")
        and len(said) == 2
    )
    per_csm = pd.DataFrame({"accounts": [10, 30, 5], "arr": [1e5, 3e5, 1e4]}, index=["c1", "c2", "(none)"])
    coverage = roi.describe_coverage(per_csm, None, csm_on_activities=True)
    assert "2 CSMs hold 40 active accounts" in coverage[0] and "5 accounts have no CSM" in coverage[0]
    assert len(coverage) == 2 and "latest CS activity" in coverage[1]
