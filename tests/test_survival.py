"""Account lifetimes, Kaplan–Meier and log-rank: by hand on a tiny book, against lifelines on public data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test
from scipy.stats import norm

import cslab
from cslab import survival
from tests.conftest import write_folder
from tests.test_metrics import HAND_ACCOUNTS, HAND_SUBSCRIPTIONS

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PYSURVIVAL = SHARED_DATA / "saas_churn_pysurvival.csv"


@pytest.fixture
def lifetimes(tmp_path):
    folder = write_folder(tmp_path / "hand", {"subscriptions": HAND_SUBSCRIPTIONS, "accounts": HAND_ACCOUNTS})
    return survival.account_lifetimes(cslab.panel(cslab.load(folder), as_of="2024-01-31"))


@pytest.fixture(scope="module")
def customers():
    assert PYSURVIVAL.exists(), f"public test data missing: {PYSURVIVAL}"
    return cslab.load_customers(PYSURVIVAL, event_col="churned", duration_col="months_active").customers


def test_account_lifetimes_by_hand(lifetimes):
    # see tests/test_metrics.py for the book (last month January 2024). Durations = months paid
    # before the first churn, or tenure in January 2024 if still paying (censored):
    # A 12 (Jan 2023 -> Jan 2024), B 3 (Jan-Mar, churn April), C 12, D 4 (churn May; its return in
    # August does not count: first lifetime only), E 6 (Jul -> Jan), F 12, G 1 (August only), H 0
    frame = lifetimes.set_index("account_id").loc[list("ABCDEFGH")]
    assert frame["duration"].tolist() == [12, 3, 12, 4, 6, 12, 1, 0]
    assert frame["event"].tolist() == [0, 1, 0, 1, 0, 0, 1, 0]
    assert frame["mrr"].tolist() == [100, 100, 50, 200, 80, 100, 40, 70]  # first month's MRR
    assert frame.loc["A", "plan"] == "Basic" and frame.loc["D", "segment"] == "Enterprise"
    assert frame.loc["E", "cohort_month"] == pd.Timestamp("2023-07-01")
    assert not {"month", "movement", "tenure_months", "lifetime"} & set(lifetimes.columns)


def test_kaplan_meier_by_hand(lifetimes):
    with pytest.warns(cslab.StatisticalWarning, match="8 customers, 3 churned"):
        fitter = survival.kaplan_meier(lifetimes)["all"]
    assert fitter._label == "all"
    # product limit: at t=1, 7 at risk (H was censored at 0), G churns: 6/7; at t=3, 6 at risk
    # (G gone), B churns: 6/7 * 5/6 = 5/7; at t=4, 5 at risk, D churns: 5/7 * 4/5 = 4/7;
    # then only censoring (E at 6; A, C, F at 12)
    at = survival.survival_at(fitter, times=(0, 1, 2, 3, 4, 12, 13))
    assert at["survival"].iloc[:6].tolist() == pytest.approx([1, 6 / 7, 6 / 7, 5 / 7, 4 / 7, 4 / 7])
    assert at.loc[13].isna().all()  # beyond the longest observation: not extrapolated
    # exponential Greenwood band at t=3: var(log(-log S)) = Σ d/(n(n-d)) / log(S)^2
    s = 5 / 7
    v = (1 / (7 * 6) + 1 / (6 * 5)) / np.log(s) ** 2
    z = norm.ppf(0.975)
    assert at.loc[3, "lower"] == pytest.approx(s ** np.exp(z * np.sqrt(v)))
    assert at.loc[3, "upper"] == pytest.approx(s ** np.exp(-z * np.sqrt(v)))
    assert survival.median_lifetime(fitter)["median"] is None  # survival never falls to 50%


def test_kaplan_meier_by_group_by_hand(lifetimes):
    with pytest.warns(cslab.StatisticalWarning, match="segment=Enterprise: 2 customers"):
        fitters = survival.kaplan_meier(lifetimes, by="segment")
    assert sorted(fitters) == ["Enterprise", "SMB"] and fitters["SMB"]._label == "SMB"
    # Enterprise: D churns at 4 of 2 at risk -> 1/2; SMB: G at 1 of 5 -> 4/5, B at 3 of 4 -> 3/5
    at = survival.survival_at(fitters, times=(12,))
    assert at.loc["Enterprise", "survival"] == pytest.approx(0.5)
    assert at.loc["SMB", "survival"] == pytest.approx(0.6)
    both = survival.survival_at(fitters, times=(4, 12))
    assert both.loc["Enterprise", "time"].tolist() == [4, 12]
    # the median is the first time survival is at or below 50%: month 4 for Enterprise
    assert survival.median_lifetime(fitters["Enterprise"])["median"] == 4.0


def test_logrank_by_hand(lifetimes):
    with pytest.warns(cslab.StatisticalWarning, match="log-rank"):
        test = survival.logrank_by(lifetimes, "segment")
    # churn times 1, 3, 4 with Enterprise at risk 2 of 7, 2 of 6, 2 of 5; one churn each time
    # expected Enterprise churns: 2/7 + 2/6 + 2/5 = 107/105 against 1 observed;
    # variance Σ (n1/n)(1 - n1/n) = 10/49 + 8/36 + 6/25
    expected = (1 - 107 / 105) ** 2 / (10 / 49 + 8 / 36 + 6 / 25)
    assert test["test_statistic"] == pytest.approx(expected)
    assert test["degrees_of_freedom"] == 1 and test["groups"] == ["Enterprise", "SMB"]
    assert 0.9 < test["p_value"] < 1
    with pytest.raises(ValueError, match="two groups"):
        survival.logrank_by(lifetimes.assign(one="x"), "one")


def test_missing_durations_are_a_clear_error(lifetimes):
    with pytest.raises(ValueError, match="duration"):
        survival.kaplan_meier(lifetimes.drop(columns="duration"))
    with pytest.raises(ValueError, match="no duration"):
        survival.kaplan_meier(lifetimes.assign(duration=np.nan))


def test_kaplan_meier_on_public_data_matches_lifelines(customers):
    fitter = survival.kaplan_meier(customers)["all"]
    direct = KaplanMeierFitter().fit(customers["duration"], customers["event"])
    at = survival.survival_at(fitter, times=(6, 12, 24))
    assert at.loc[12, "survival"] == pytest.approx(float(direct.survival_function_at_times(12).iloc[0]))
    # 46.6% of these customers are flagged as churned, but many were censored after 3-9 months:
    # the Kaplan–Meier estimate of survival at 12 months is much lower, about 24%
    assert 0.2 < at.loc[12, "survival"] < 0.3
    assert at.loc[12, "lower"] < at.loc[12, "survival"] < at.loc[12, "upper"]
    assert at.loc[24].isna().all()  # durations stop at 12 months
    median = survival.median_lifetime(fitter)
    assert median["median"] == direct.median_survival_time_ == 6.0


def test_logrank_on_public_data_matches_lifelines(customers):
    test = survival.logrank_by(customers, "company_size")
    direct = multivariate_logrank_test(customers["duration"], customers["company_size"], customers["event"])
    assert np.isfinite(test["p_value"]) and test["p_value"] == pytest.approx(direct.p_value)
    assert test["test_statistic"] == pytest.approx(direct.test_statistic)
    assert test["degrees_of_freedom"] == customers["company_size"].nunique() - 1 == 4
    fitters = survival.kaplan_meier(customers, by="company_size")
    assert sorted(fitters) == sorted(customers["company_size"].unique())
