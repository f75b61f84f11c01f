"""The synthetic book: deterministic, valid under the contract, and what it planted is what it shows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cslab
from cslab.data.synth import PROGRAMME_HR, generate


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
    assert not a.tables["subscriptions"].equals(c.tables["subscriptions"])


def test_valid_under_the_contract(book):
    generated, data, panel = book
    assert cslab.validate(data.source).ok
    assert set(data.tables) == {"subscriptions", "accounts", "usage", "cs_activities", "tickets",
                                "outcomes", "cs_costs"}
    subs = data.subscriptions
    assert (subs["mrr"] > 0).all() and ((subs["end_date"] >= subs["start_date"]) | subs["end_date"].isna()).all()
    core = subs[subs["product"].eq("Core")].sort_values(["account_id", "start_date"])
    next_start = core.groupby("account_id")["start_date"].shift(-1)
    assert (core["end_date"].isna() | next_start.isna() | (core["end_date"] < next_start)).all()
    assert set(data.usage.metrics) == {"active_users", "features_used", "logins"}


def test_truth_names_the_planted_effects(book):
    truth = book[0].truth
    assert truth["programme_hr"] == PROGRAMME_HR
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
    identity = (moves["start_mrr"] + moves["new"] + moves["expansion"] - moves["contraction"]
                - moves["churn"] + moves["reactivation"])
    assert np.allclose(identity, moves["end_mrr"]) and len(moves) == 30
    assert (moves[["new", "expansion", "contraction", "churn"]].sum() > 0).all()
