"""Metrics on a hand-computed book; the NRR decomposition and the bridge on generated books."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cslab
from cslab import metrics, survival
from tests.conftest import PYSURVIVAL, write_folder

# Jan 2023 cohort: A 100 (expands to 150 in June), B 100 (churns in April), C 50 (contracts to 30
# in September), D 200 (churns in May, back at 100 in August); E new in July at 80.
HAND = ("account_id,start_date,end_date,mrr\n"
        "A,2023-01-01,2023-05-31,100\nA,2023-06-01,,150\n"
        "B,2023-01-01,2023-03-31,100\n"
        "C,2023-01-01,2023-08-31,50\nC,2023-09-01,,30\n"
        "D,2023-01-01,2023-04-30,200\nD,2023-08-01,,100\n"
        "E,2023-07-01,,80\n")


@pytest.fixture
def hand(tmp_path):
    return cslab.panel(cslab.load(write_folder(tmp_path / "d", {"subscriptions": HAND})),
                       as_of="2024-01-31")


def test_revenue_retention_by_hand(hand):
    r = metrics.revenue_retention(hand, months=12)
    assert r["start_month"] == pd.Timestamp("2023-01-01") and r["n_accounts"] == 4
    assert r["start_mrr"] == 450
    assert r["nrr"] == pytest.approx(280 / 450)          # A 150 + B 0 + C 30 + D 100
    assert r["grr"] == pytest.approx(230 / 450)          # min(150,100) + 0 + min(30,50) + min(100,200)
    assert r["headwind"] == pytest.approx(320 / 450)     # churn 100 + 200, contraction 20
    assert r["tailwind"] == pytest.approx(50 / 450)      # A's expansion
    assert r["reactivation_rate"] == pytest.approx(100 / 450)
    parts = 1 + r["expansion_rate"] - r["contraction_rate"] - r["churn_rate"] + r["reactivation_rate"]
    assert parts == pytest.approx(r["nrr"], abs=1e-12)


def test_logo_and_revenue_churn_by_hand(hand):
    logo = metrics.logo_churn_rate(hand, months=12)
    # active at the start of Feb..Jan: 4,4,4,3,2,2,3,4,4,4,4,4 = 42; churned: B and D
    assert (logo["churned"], logo["exposure"]) == (2, 42)
    assert logo["monthly"] == pytest.approx(2 / 42)
    assert logo["annual"] == pytest.approx(1 - (1 - 2 / 42) ** 12)
    revenue = metrics.revenue_churn(hand, months=12)
    # start MRR of Feb..Jan: 450,450,450,350,150,200,280,380,360,360,360,360 = 4150
    assert revenue["gross_monthly"] == pytest.approx(320 / 4150)
    assert revenue["net_monthly"] == pytest.approx((320 - 150) / 4150)


def test_bridge_and_movements_by_hand(hand):
    bridge = metrics.mrr_bridge(hand, start="2023-01-01", end="2024-01-01").set_index("step")["amount"]
    assert bridge.to_dict() == {"start": 450, "new": 80, "expansion": 50, "reactivation": 100,
                                "contraction": -20, "churn": -300, "end": 360}
    moves = metrics.mrr_movements(hand)
    identity = (moves["start_mrr"] + moves["new"] + moves["expansion"] - moves["contraction"]
                - moves["churn"] + moves["reactivation"])
    assert np.allclose(identity, moves["end_mrr"])
    april = moves.set_index("month").loc["2023-04-01"]
    assert (april["churn"], april["n_churn"], april["active_start"], april["active_end"]) == (100, 1, 4, 3)


def test_cohort_tables_by_hand(hand):
    logo = metrics.cohort_table(hand, period="M", kind="logo", values="pct")
    jan = logo.loc["2023-01"]
    assert jan.tolist() == [1, 1, 1, .75, .5, .5, .5, .75, .75, .75, .75, .75, .75]
    july = logo.loc["2023-07"]
    assert july[:7].tolist() == [1.0] * 7 and july[7:].isna().all()  # blank, not zero
    counts = metrics.cohort_table(hand, period="M", kind="logo", values="count")
    assert counts[0].tolist() == [4, 1]  # age 0 = cohort sizes
    revenue = metrics.cohort_table(hand, period="M", kind="revenue", values="pct")
    assert revenue.loc["2023-01", 12] == pytest.approx(280 / 450)
    assert revenue.loc["2023-01", 5] == pytest.approx(200 / 450)  # June: A 150 + C 50
    dropped = metrics.cohort_table(hand, period="M", min_cohort_size=2)
    assert dropped.index.tolist() == ["2023-01"] and dropped.attrs["dropped_cohorts"] == ["2023-07"]
    quarterly = metrics.cohort_table(hand, period="Q", kind="logo")
    assert quarterly.loc["2023Q1"].tolist() == [1, .75, .5, .75, .75]  # tenures 0, 3, 6, 9, 12


def test_retention_over_time_matches_point_estimates(hand, tmp_path):
    series = metrics.retention_over_time(hand, months=12)
    assert len(series) == 1 and series["nrr"].iloc[0] == pytest.approx(280 / 450)
    from cslab.data.synth import generate

    generate(n_accounts=600, n_months=24, seed=8).write(tmp_path / "b")
    panel = cslab.panel(cslab.load(tmp_path / "b"))
    series = metrics.retention_over_time(panel, months=12)
    assert len(series) == 12
    for _, row in series.iloc[[0, 5, 11]].iterrows():
        point = metrics.revenue_retention(panel, months=12, as_of=row["month"])
        assert row["nrr"] == pytest.approx(point["nrr"]) and row["grr"] == pytest.approx(point["grr"])
    decomposed = (1 + series["expansion_rate"] - series["contraction_rate"] - series["churn_rate"]
                  + series["reactivation_rate"])
    assert np.allclose(decomposed, series["nrr"])
    assert (series["grr"] <= 1 + 1e-12).all() and (series["grr"] <= series["nrr"] + series["reactivation_rate"] + 1e-12).all()
    by = metrics.retention_over_time(panel, months=12, by="segment")
    assert set(by["segment"]) == {"SMB", "Mid-Market", "Enterprise"}


def test_kaplan_meier_by_hand(hand):
    lifetimes = survival.account_lifetimes(hand).set_index("account_id")
    assert lifetimes.loc[list("ABCDE"), "duration"].tolist() == [12, 3, 12, 4, 6]
    assert lifetimes.loc[list("ABCDE"), "event"].tolist() == [0, 1, 0, 1, 0]
    with pytest.warns(cslab.StatisticalWarning):
        fitter = survival.kaplan_meier(lifetimes.reset_index())["all"]
    # product-limit: t=3: 1 of 5 at risk churns -> 0.8; t=4: 1 of 4 -> 0.8 * 3/4 = 0.6
    at = survival.survival_at(fitter, times=(3, 4, 12, 13))
    assert at["survival"].iloc[:3].tolist() == pytest.approx([0.8, 0.6, 0.6])
    assert np.isnan(at["survival"].iloc[3])  # beyond the data: not extrapolated
    assert survival.median_lifetime(fitter)["median"] is None  # never falls to 50%


def test_kaplan_meier_on_public_data_matches_lifelines():
    from lifelines import KaplanMeierFitter
    from lifelines.statistics import multivariate_logrank_test

    customers = cslab.load_customers(PYSURVIVAL, event_col="churned", duration_col="months_active").customers
    fitter = survival.kaplan_meier(customers)["all"]
    direct = KaplanMeierFitter().fit(customers["duration"], customers["event"])
    at_12 = survival.survival_at(fitter, times=(12,))["survival"].iloc[0]
    assert at_12 == pytest.approx(float(direct.survival_function_at_times(12).iloc[0]))
    assert 0.15 < at_12 < 0.35  # heavy churn in the first year of this public book
    test = survival.logrank_by(customers, "company_size")
    direct_test = multivariate_logrank_test(customers["duration"], customers["company_size"], customers["event"])
    assert test["p_value"] == pytest.approx(direct_test.p_value)
    assert test["degrees_of_freedom"] == customers["company_size"].nunique() - 1
