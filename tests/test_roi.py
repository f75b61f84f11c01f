"""Causal building blocks: weights, balance, weighted hazard ratios and E-values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cslab.roi import (
    e_value,
    ipw_weights,
    propensity_scores,
    standardised_mean_differences,
    weighted_hazard_ratio,
    weighted_kaplan_meier,
)


def test_e_value_by_hand():
    # HR 0.5 (rare outcome): RR* = 2, E = 2 + sqrt(2 x 1)
    assert e_value(0.5)["estimate"] == pytest.approx(2 + np.sqrt(2))
    assert e_value(2.0)["estimate"] == pytest.approx(2 + np.sqrt(2))
    # the limit nearer 1 of a protective HR is the upper one: 0.8 -> RR* 1.25, E = 1.25 + sqrt(1.25 x 0.25)
    assert e_value(0.6, 0.5, 0.8)["limit"] == pytest.approx(1.25 + np.sqrt(1.25 * 0.25))
    assert e_value(0.8, 0.6, 1.05)["limit"] == 1.0
    # a common outcome: the HR is first converted to a risk ratio closer to 1
    assert e_value(0.5, rare_outcome=False)["estimate"] < e_value(0.5)["estimate"]


def test_stabilised_weights_and_smd_by_hand():
    w = ipw_weights([0.5, 0.25, 0.5, 0.75], [1, 1, 0, 0], trim=0)
    assert w.tolist() == pytest.approx([1.0, 2.0, 1.0, 2.0])  # P(T)=0.5: 0.5/p and 0.5/(1-p)
    trimmed = ipw_weights([0.01, 0.5, 0.5, 0.5, 0.99], [1, 1, 0, 1, 0], trim=0.25)
    assert trimmed.max() <= np.quantile(ipw_weights([0.01, 0.5, 0.5, 0.5, 0.99], [1, 1, 0, 1, 0], trim=0), 0.75) + 1e-12
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "g": ["a", "a", "b", "a"]})
    smd = standardised_mean_differences(df, [1, 1, 0, 0], ["x", "g"])
    # means 1.5 vs 3.5; variances 0.5 and 0.5 -> pooled SD 0.707: (1.5 - 3.5) / 0.707
    assert smd["x"] == pytest.approx(-2 / np.sqrt(0.5))
    assert set(smd.index) == {"x", "g=a", "g=b"}


def simulate(n=6000, seed=0, hr=0.7):
    """Treatment goes to high-risk accounts (confounding by x); true conditional HR ``hr``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    segment = rng.choice(["SMB", "Enterprise"], size=n, p=[0.7, 0.3])
    risk = 0.9 * x + np.where(segment == "Enterprise", -0.5, 0.0)
    treated = rng.random(n) < 1 / (1 + np.exp(-(1.2 * x - 0.3)))
    hazard = 0.05 * np.exp(risk) * np.where(treated, hr, 1.0)
    time = rng.exponential(1 / hazard)
    follow = rng.uniform(6, 24, n)
    return pd.DataFrame(
        {
            "x": x,
            "segment": segment,
            "treated": treated.astype(int),
            "duration": np.minimum(time, follow),
            "event": (time <= follow).astype(int),
        }
    )


def test_weighting_removes_the_selection_bias_of_a_naive_comparison():
    df = simulate()
    naive = weighted_hazard_ratio(df["duration"], df["event"], df["treated"])
    assert naive["hr"] > 1.0  # covered accounts look worse: they were chosen for their risk
    p = propensity_scores(df, df["treated"], ["x", "segment"])
    w = ipw_weights(p, df["treated"], trim=0.01)
    before = standardised_mean_differences(df, df["treated"], ["x", "segment"])
    after = standardised_mean_differences(df, df["treated"], ["x", "segment"], weights=w)
    assert abs(before["x"]) > 0.5 and (after.abs() < 0.1).all()
    adjusted = weighted_hazard_ratio(df["duration"], df["event"], df["treated"], weights=w)
    # the marginal HR is pulled a little towards 1 from the conditional 0.7 (non-collapsibility)
    assert 0.6 < adjusted["hr"] < 0.85 and adjusted["upper"] < 1
    curves = weighted_kaplan_meier(df["duration"], df["event"], df["treated"], weights=w)
    assert (
        curves["covered"].survival_function_at_times(12).iloc[0]
        > curves["not covered"].survival_function_at_times(12).iloc[0]
    )


def test_achieved_outcome_effect_on_the_demo_book(demo_book):
    import cslab
    from cslab import features
    from cslab.roi import person_months, programme_effect

    book, folder = demo_book
    data = cslab.load(folder)
    rows = person_months(features.build_dataset(data, cslab.panel(data), horizon_months=1)[0])
    result = programme_effect(
        rows, "outcome_achieved", others=list(book.truth["programme_hr"]), treated=rows["outcomes_achieved_share"].gt(0)
    )
    truth = book.truth["outcome_achieved_hr"]
    assert result["hr_low"] <= truth <= result["hr_high"]
    # accounts that achieve outcomes are the engaged ones: the naive ratio overstates the effect
    assert abs(np.log(result["naive_hr"] / truth)) > 2 * abs(np.log(result["hr"] / truth))
    assert result["max_smd_after"] < 0.1 < result["max_smd_before"]
    assert "outcomes_achieved_share" not in result["balance"].index


def test_common_support_by_hand():
    from cslab.roi import common_support

    d = pd.DataFrame({"started": [1, 1, 1, 0, 0, 0], "p": [0.3, 0.6, 0.95, 0.05, 0.4, 0.7]})
    got = common_support(d)
    # starters span 0.3-0.95, the others 0.05-0.7: shared 0.3-0.7; 0.95 and 0.05 fall outside
    assert (got["low"], got["high"]) == (0.3, 0.7)
    assert got["share_outside"] == pytest.approx(2 / 6) and got["share_started_outside"] == pytest.approx(1 / 3)


def test_bootstrap_interval_by_hand():
    from cslab.roi import bootstrap_interval

    # normal interval: SD of (1, 2, 3) is 1, so the estimate +/- 1.96
    low, high = bootstrap_interval([1.0, 2.0, 3.0], 2.0)
    assert (low, high) == pytest.approx((2 - 1.959964, 2 + 1.959964), abs=1e-5)
    # from 200 replicates on: the percentile interval
    values = np.arange(1000, dtype=float)
    assert bootstrap_interval(values, 500.0) == pytest.approx(tuple(np.quantile(values, [0.025, 0.975])))
    assert np.isnan(bootstrap_interval([np.nan, 1.0], 1.0)[0])


@pytest.fixture(scope="module")
def small_rows(tmp_path_factory):
    import cslab
    from cslab import features
    from cslab.data.synth import generate
    from cslab.roi import person_months

    folder = generate(n_accounts=900, n_months=24, seed=7).write(tmp_path_factory.mktemp("boot"))
    data = cslab.load(folder)
    panel = cslab.panel(data)
    return data, panel, person_months(features.build_dataset(data, panel, horizon_months=1)[0], panel)


def test_expansion_outcome_and_money_follow_the_panel(small_rows):
    from cslab.roi import programme_effect

    data, panel, rows = small_rows
    # the expansion label is the next month's movement in the panel, checked on one account
    account = rows.loc[rows["expanded"].eq(1), "account_id"].iloc[0]
    mine = rows[rows["account_id"].eq(account)]
    moves = panel[panel["account_id"].eq(account)].set_index("month")["movement"]
    for _, row in mine.iterrows():
        following = row["observation_date"].to_period("M").to_timestamp() + pd.DateOffset(months=1)
        assert row["expanded"] == int(moves.get(following) == "expansion")
    effect = programme_effect(rows, "onboarding", others=["onboarding", "training"], window_months=12)
    # a protective effect retains ARR; its sign follows the hazard ratio
    assert np.sign(effect["retained_arr"]) == np.sign(1 - effect["hr"])
    assert effect["n_treated_window"] > 0
    assert 0 <= effect["expansion_rate_untreated"] <= 1 and 0 <= effect["expansion_rate_treated"] <= 1
    assert set(effect["curves"].columns) == {"treated", "not treated"}
    assert (effect["curves"].diff().fillna(0) <= 1e-12).all().all()  # survival never rises


def test_costs_come_from_the_best_source(small_rows):
    from cslab.roi import cs_cost

    data, _, _ = small_rows
    start, end = pd.Timestamp("2024-01-31"), pd.Timestamp("2024-12-31")
    from_table = cs_cost(data, start, end, hourly_cost=100)
    months = data.cs_costs["month"].dt.to_period("M").dt.to_timestamp()
    expected = data.cs_costs.loc[(months > "2024-01-01") & (months <= "2024-12-01"), "cost"].sum()
    assert from_table["total"] == pytest.approx(expected) and from_table["source"] == "the cs_costs table"
    acts = data.cs_activities
    inside = acts[(acts["date"] > start) & (acts["date"] <= end)]
    assert from_table["by_programme"].sum() == pytest.approx(100 * inside["hours"].sum())
    data.cs_costs, saved = None, data.cs_costs
    try:
        per_csm = cs_cost(data, start, end, hourly_cost=100, annual_cost_per_csm=120_000)
        csms = data.accounts["csm_id"].nunique()
        assert per_csm["total"] == pytest.approx(120_000 * csms * 11 / 12)
        by_hours = cs_cost(data, start, end, hourly_cost=100)
        assert by_hours["total"] == pytest.approx(100 * inside["hours"].sum())
    finally:
        data.cs_costs = saved
