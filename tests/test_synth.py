"""The synthetic book: deterministic, valid under the contract, and what it planted is what it shows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cslab
from cslab.data.synth import (
    EXPOSURE_MONTHS,
    PROGRAMME_DIRECT_HR,
    PROGRAMME_ENGAGEMENT_BOOST,
    PROGRAMME_EXPOSURE,
    PROGRAMME_HR,
    generate,
)


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    folder = tmp_path_factory.mktemp("book")
    generated = generate(n_accounts=1500, n_months=30, seed=11)
    generated.write(folder)
    data = cslab.load(folder)
    return generated, data, cslab.panel(data)


def test_deterministic_for_a_seed():
    a, b, c = (generate(n_accounts=150, n_months=12, seed=s) for s in (3, 3, 4))
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    pd.testing.assert_frame_equal(a.truth_panel, b.truth_panel)
    assert a.truth == b.truth  # the simulated truth too (ROI pairs, programme totals)
    assert not a.tables["subscriptions"].equals(c.tables["subscriptions"])
    assert a.truth["roi"] != c.truth["roi"]


def test_valid_under_the_contract(book):
    generated, data, panel = book
    assert cslab.validate(data.source).ok
    assert set(data.tables) == {
        "subscriptions",
        "accounts",
        "usage",
        "cs_activities",
        "tickets",
        "outcomes",
        "cs_costs",
    }
    subs = data.subscriptions
    assert (subs["mrr"] > 0).all() and ((subs["end_date"] >= subs["start_date"]) | subs["end_date"].isna()).all()
    core = subs[subs["product"].eq("Core")].sort_values(["account_id", "start_date"])
    next_start = core.groupby("account_id")["start_date"].shift(-1)
    assert (core["end_date"].isna() | next_start.isna() | (core["end_date"] < next_start)).all()
    assert set(data.usage.metrics) == {"active_users", "features_used", "logins"}


def test_truth_names_the_planted_effects(book):
    truth = book[0].truth
    assert PROGRAMME_HR is PROGRAMME_DIRECT_HR  # the old name: the formula's direct effects
    assert truth["programme_direct_hr"] == PROGRAMME_DIRECT_HR
    assert (
        truth["programme_exposure"]
        == PROGRAMME_EXPOSURE
        == {
            "onboarding": "one_time",
            "training": "one_time",
            "qbr": "recurring",
            "health_check": "recurring",
            "escalation": "recurring",
        }
    )
    assert truth["exposure_months"] == EXPOSURE_MONTHS == 3
    assert truth["programme_engagement_boost"] == PROGRAMME_ENGAGEMENT_BOOST
    assert set(truth["programme_hr"]) == set(truth["programme_hr_se"]) == set(PROGRAMME_DIRECT_HR)
    assert truth["churn_drivers"][:2] == ["months_to_renewal", "seat_utilisation"]
    assert {"usage_logins_trend", "tickets_90d", "csat_90d"} <= set(truth["churn_drivers"])
    assert truth["outcome_achieved_hr"] < 1 and truth["expansion_drivers"][0] == "seat_utilisation"


def _at_risk(panel):
    prev = panel.groupby("account_id")["active"].shift(1, fill_value=False).astype(bool)
    return panel[prev].assign(churned=lambda f: f["movement"].eq("churn"))


def test_churn_by_segment_and_overall(book):
    rows = _at_risk(book[2])
    by_segment = rows.groupby("segment")["churned"].mean()
    assert by_segment["SMB"] > by_segment["Mid-Market"] > by_segment["Enterprise"]
    assert 0.012 < rows["churned"].mean() < 0.04


def test_realised_churn_matches_true_probabilities(book):
    generated, _, panel = book
    rows = _at_risk(panel)
    truth = generated.truth_panel.assign(month=lambda f: pd.to_datetime(f["month"]))
    merged = rows.merge(truth, on=["account_id", "month"], how="inner")
    assert len(merged) > 0.97 * len(rows)
    expected, realised = merged["p_churn"].mean(), merged["churned"].mean()
    se = np.sqrt((merged["p_churn"] * (1 - merged["p_churn"])).sum()) / len(merged)
    assert abs(realised - expected) < 4 * se


def test_effect_directions(book):
    rows = _at_risk(book[2])
    prior = book[2].groupby("account_id")[["usage_active_users", "seats", "tickets"]].shift(1)
    util = (prior["usage_active_users"] / prior["seats"]).loc[rows.index]
    low, high = rows.loc[util < 0.4, "churned"].mean(), rows.loc[util > 0.8, "churned"].mean()
    assert low > 1.5 * high
    many = prior["tickets"].loc[rows.index] >= 2
    assert rows.loc[many, "churned"].mean() > rows.loc[~many, "churned"].mean()


def test_cs_attention_is_selected_not_random(book):
    _, data, _ = book
    acts = data.cs_activities
    onboarded = data.accounts["account_id"].isin(acts.loc[acts["activity_type"].eq("onboarding"), "account_id"])
    share = onboarded.groupby(data.accounts["segment"]).mean()
    assert share["Enterprise"] > share["Mid-Market"] > share["SMB"]
    trained = data.accounts["account_id"].isin(acts.loc[acts["activity_type"].eq("training"), "account_id"])
    assert 0.05 < trained.mean() < 0.9


def test_mrr_bridge_holds_every_month_of_a_generated_book(book):
    from cslab import metrics

    moves = metrics.mrr_movements(book[2])
    identity = (
        moves["start_mrr"]
        + moves["new"]
        + moves["expansion"]
        - moves["contraction"]
        - moves["churn"]
        + moves["reactivation"]
    )
    assert np.allclose(identity, moves["end_mrr"]) and len(moves) == 30
    assert (moves[["new", "expansion", "contraction", "churn"]].sum() > 0).all()


def test_programme_totals_are_simulated_not_the_formula(book):
    """Total effects (forced on vs never, 20,000 reference accounts): mediation adds to onboarding and
    training; qbr and health checks act only directly; escalation does nothing."""
    truth = book[0].truth
    total, se, direct = truth["programme_hr"], truth["programme_hr_se"], truth["programme_direct_hr"]
    assert truth["programme_hr_method"]["reference_accounts"] >= 20_000
    assert all(0 < v < 0.05 for v in se.values()), se
    log_gap = {p: np.log(total[p]) - np.log(direct[p]) for p in total}
    # mediation through engagement: the total is well beyond the direct effect
    assert total["onboarding"] < 0.78 and log_gap["onboarding"] < -2 * se["onboarding"]
    assert total["training"] < 0.90 and log_gap["training"] < -3 * se["training"]
    # no mediation: the continuously exposed world shows the direct effect, pulled a little towards
    # 1 (the frail survive longer where the programme runs, so the at-risk mix is frailer: a marginal
    # hazard ratio is not the conditional one), never beyond it
    for p in ("qbr", "health_check"):
        assert 0 < log_gap[p] < 0.25, (p, total[p], direct[p])
        assert np.log(total[p]) < -4 * se[p]  # still a clear effect
    assert abs(total["escalation"] - 1) <= 0.05


def test_roi_truth_is_simulated(book):
    generated = book[0]
    truth = generated.truth
    assert truth["roi_pairs"] == 8 and truth["roi_gross_margin"] == 0.8
    assert truth["roi_value_horizon_months"] == 12
    assert truth["roi_cost_window"] == "2024-07 to 2025-06"  # the last 12 months of 30 from 2023-01
    assert np.isfinite(truth["roi"]) and truth["roi_value"] > 0
    assert truth["roi"] == pytest.approx(truth["roi_value"] / truth["roi_cost"] - 1)
    assert 0 < truth["roi_sd"] < 1
    # each pair's world A re-draws the window's activities: a cost close to the book's own
    costs = generated.tables["cs_costs"]
    assert len(costs) == 30 and truth["roi_cost_book"] == costs["cost"].iloc[-12:].sum()
    assert abs(truth["roi_cost"] / truth["roi_cost_book"] - 1) < 0.02


def test_one_time_and_recurring_programmes(book):
    acts = book[1].cs_activities
    per_account = acts.groupby(["activity_type", "account_id"]).size()
    assert per_account["training"].max() == 1 and per_account["onboarding"].max() == 1
    for p in ("qbr", "health_check", "escalation"):
        assert (per_account[p] >= 2).sum() > 20, p  # recurring: repeat deliveries
    # training still goes to accounts whose seats look under-used (last month's utilisation)
    panel = book[2]
    util = panel.groupby("account_id")["usage_active_users"].shift(1) / panel.groupby("account_id")["seats"].shift(1)
    month = acts.assign(month=acts["date"].dt.to_period("M").dt.to_timestamp())
    trained = month[month["activity_type"].eq("training")][["account_id", "month"]].assign(trained=True)
    rows = panel.assign(util=util).merge(trained, on=["account_id", "month"], how="left")
    rows = rows[rows["active"] & rows["util"].notna()]
    rate = rows["trained"].notna().groupby(rows["util"] < 0.45).mean()
    assert rate[True] > 3 * rate[False]


def test_parquet_book_reads_as_the_csv_book(tmp_path):
    """`cslab synth --format parquet`: the same book, typed; its panel is the CSV book's (which rounds
    numbers to six significant digits)."""
    import cslab
    from cslab.data.synth import generate

    book = generate(200, 12, seed=3)
    as_csv = cslab.panel(cslab.load(book.write(tmp_path / "csv")))
    as_parquet = cslab.panel(cslab.load(book.write(tmp_path / "parquet", file_format="parquet")))
    assert sorted(p.name for p in (tmp_path / "parquet").glob("*.parquet")) == sorted(
        f"{name}.parquet" for name in book.tables
    )
    assert as_parquet.shape == as_csv.shape and (as_parquet["movement"] == as_csv["movement"]).all()
    numeric = as_csv.select_dtypes("number").columns
    assert np.allclose(as_parquet[numeric].astype(float), as_csv[numeric].astype(float), rtol=1e-5, equal_nan=True)
