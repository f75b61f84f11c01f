"""As-of features: no leakage, labels from the future only, metric cohorts."""

from __future__ import annotations

import pandas as pd
import pytest

import cslab
from cslab.data.synth import generate
from cslab.features import build_dataset, churn_by_decile, feature_columns


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    folder = tmp_path_factory.mktemp("book")
    generated = generate(n_accounts=500, n_months=24, seed=31)
    generated.write(folder)
    return folder, generated


def truncate(tables: dict[str, pd.DataFrame], cut: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Every row dated after ``cut`` deleted; dates after it that a row carries become unknown."""
    t = {k: v.copy() for k, v in tables.items()}
    s = t["subscriptions"]
    s = s[pd.to_datetime(s["start_date"]) <= cut].copy()
    s["end_date"] = pd.to_datetime(s["end_date"]).where(pd.to_datetime(s["end_date"]) <= cut)
    t["subscriptions"] = s
    t["usage"] = t["usage"][pd.to_datetime(t["usage"]["date"]) <= cut]
    t["tickets"] = t["tickets"][pd.to_datetime(t["tickets"]["opened_at"]) <= cut].copy()
    t["tickets"]["closed_at"] = pd.to_datetime(t["tickets"]["closed_at"]).where(
        pd.to_datetime(t["tickets"]["closed_at"]) <= cut
    )
    t["cs_activities"] = t["cs_activities"][pd.to_datetime(t["cs_activities"]["date"]) <= cut]
    o = t["outcomes"][pd.to_datetime(t["outcomes"]["committed_date"]) <= cut].copy()
    o["achieved_date"] = pd.to_datetime(o["achieved_date"]).where(pd.to_datetime(o["achieved_date"]) <= cut)
    t["outcomes"] = o
    t["cs_costs"] = t["cs_costs"][pd.to_datetime(t["cs_costs"]["month"]) <= cut]
    return t


@pytest.mark.parametrize("cut", ["2023-09-30", "2024-06-30"])
def test_no_leakage_deleting_the_future_changes_nothing(book, tmp_path, cut):
    folder, generated = book
    cut = pd.Timestamp(cut)
    data = cslab.load(folder)
    dataset, _ = build_dataset(data, cslab.panel(data), horizon_months=3)
    observed = dataset[dataset["observation_date"] == cut].drop(columns=["label", "months_to_event"])
    assert len(observed) > 100

    past = tmp_path / "past"
    past.mkdir()
    for name, frame in truncate(generated.tables, cut).items():
        frame.to_csv(past / f"{name}.csv", index=False, date_format="%Y-%m-%d")
    past_data = cslab.load(past)
    _, scoring = build_dataset(past_data, cslab.panel(past_data, as_of=cut), horizon_months=3)
    left = observed.set_index("account_id").sort_index()
    right = scoring.set_index("account_id").sort_index()[left.columns]
    pd.testing.assert_frame_equal(left, right, check_dtype=False)


def test_labels_look_ahead_exactly_the_horizon(book):
    folder, _ = book
    data = cslab.load(folder)
    panel = cslab.panel(data)
    dataset, scoring = build_dataset(data, panel, horizon_months=3)
    last = panel["month"].max()
    assert dataset["observation_date"].max() == last - pd.DateOffset(months=3) + pd.offsets.MonthEnd(0)
    assert (scoring["observation_date"] == panel.attrs["as_of"]).all()
    row = dataset[dataset["label"].eq(1)].iloc[0]
    month = row["observation_date"].to_period("M").to_timestamp()
    history = panel[panel["account_id"].eq(row["account_id"])].set_index("month")["movement"]
    window = history.loc[month + pd.DateOffset(months=1) : month + pd.DateOffset(months=3)]
    assert "churn" in window.tolist()
    numeric, categorical = feature_columns(dataset)
    assert {
        "seat_utilisation",
        "usage_logins_trend",
        "tickets_90d",
        "csat_90d",
        "outcomes_achieved_share",
        "days_since_cs_activity",
        "months_to_renewal",
    } <= set(numeric)
    assert {"segment", "plan", "region"} <= set(categorical) and "label" not in numeric + categorical


def test_churn_by_decile_counts_every_row(book):
    folder, _ = book
    data = cslab.load(folder)
    dataset, _ = build_dataset(data, cslab.panel(data))
    table = churn_by_decile(dataset, "csat_90d")
    assert table["n"].sum() == len(dataset) and table.iloc[-1]["csat_90d"] == "missing"
    util = churn_by_decile(dataset, "seat_utilisation")
    assert util["churn_rate"].iloc[0] > 3 * util["churn_rate"].iloc[-1]  # planted: low use churns
