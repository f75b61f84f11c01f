"""The monthly account panel: hand-checked movements, the MRR bridge, nothing after as_of."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

import cslab
from cslab.data.io import CSData
from tests.conftest import write_folder

SUBS = (
    "account_id,start_date,end_date,mrr,seats\n"
    "A,2024-01-15,2024-03-14,100,10\nA,2024-03-15,,150,15\n"  # upgrade mid-March
    "B,2024-01-01,2024-02-29,50,5\nB,2024-05-01,,60,6\n"  # churn, back after 2 months
    "C,2024-02-01,2024-02-10,30,3\n"  # never at a month-end snapshot
    "D,2024-01-01,2024-01-31,40,4\nD,2024-06-01,,40,4\n"  # back after 4 months
    "E,2024-02-01,,0,1\n"
)  # a $0 (free) account


def build(tmp_path, **kw):
    data = cslab.load(write_folder(tmp_path / "d", {"subscriptions": SUBS}))
    return cslab.panel(data, as_of="2024-06-30", **kw)


def movements(p, account):
    return p.loc[p["account_id"].eq(account), "movement"].tolist()


def test_movements_by_hand(tmp_path):
    p = build(tmp_path)
    assert p.loc[p["account_id"].eq("A"), "mrr"].tolist() == [100, 100, 150, 150, 150, 150]
    assert movements(p, "A") == ["new", "flat", "expansion", "flat", "flat", "flat"]
    # B paid through Feb 29: churn counted in March, at the end of the paid period
    assert movements(p, "B") == ["new", "flat", "churn", "inactive", "reactivation", "flat"]
    assert p.loc[p["account_id"].eq("B"), "movement_mrr"].tolist() == [50, 0, -50, 0, 60, 0]
    assert movements(p, "C") == ["inactive"] * 5  # a ten-day line never counts
    assert movements(p, "E") == ["inactive"] * 5 and not p.loc[p.account_id.eq("E"), "active"].any()
    assert p.loc[p["account_id"].eq("A"), "tenure_months"].tolist() == [0, 1, 2, 3, 4, 5]
    assert p.loc[p["account_id"].eq("A"), "seats"].tolist() == [10, 10, 15, 15, 15, 15]


def test_reactivation_window_is_a_parameter(tmp_path):
    default = build(tmp_path)
    assert movements(default, "D") == ["new", "churn", "inactive", "inactive", "inactive", "reactivation"]
    short = build(tmp_path / "s", reactivation_months=3)
    assert movements(short, "D")[-1] == "new"  # 4 months away > 3: a new customer again
    assert short.loc[short["account_id"].eq("D"), "lifetime"].tolist() == [1, 1, 1, 1, 1, 2]


def test_as_of_ignores_later_data(tmp_path):
    data = cslab.load(write_folder(tmp_path / "d", {"subscriptions": SUBS}))
    early = cslab.panel(data, as_of="2024-03-20")
    assert early["month"].max() == pd.Timestamp("2024-03-01")
    # A's upgrade on Mar 15 counts on the snapshot of Mar 20 (as_of is the month's snapshot)
    assert early.loc[early["account_id"].eq("A"), "mrr"].tolist() == [100, 100, 150]
    # B's return in May does not exist yet
    assert movements(early, "B") == ["new", "flat", "churn"]
    cut = data.subscriptions[data.subscriptions["start_date"] <= "2024-03-20"].copy()
    cut["end_date"] = cut["end_date"].where(cut["end_date"] <= "2024-03-20")
    same = cslab.panel(CSData(subscriptions=cut), as_of="2024-03-20")
    pd.testing.assert_frame_equal(early[same.columns].reset_index(drop=True), same)


def test_bridge_on_hand_book(tmp_path):
    p = build(tmp_path)
    total = p.groupby("month")["mrr"].sum()
    moves = p.groupby("month")["movement_mrr"].sum()
    assert np.allclose(total.shift(1, fill_value=0) + moves, total)


lines = st.lists(
    st.tuples(
        st.sampled_from(list("ABCDEFG")),
        st.integers(0, 700),  # start: days after 2023-01-01
        st.one_of(st.none(), st.integers(0, 400)),  # duration in days, None = running
        st.sampled_from([0.0, 10.0, 25.5, 100.0, 999.0]),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(lines, st.integers(0, 24), st.integers(0, 800))
def test_mrr_bridge_holds_every_month(rows, window, as_of_days):
    base = pd.Timestamp("2023-01-01")
    subs = pd.DataFrame(
        {
            "account_id": [r[0] for r in rows],
            "start_date": [base + pd.Timedelta(days=r[1]) for r in rows],
            "end_date": [base + pd.Timedelta(days=r[1] + r[2]) if r[2] is not None else pd.NaT for r in rows],
            "mrr": [r[3] for r in rows],
        }
    )
    as_of = base + pd.Timedelta(days=max(as_of_days, int(subs["start_date"].dt.dayofyear.min())))
    if (subs["start_date"] > as_of).all():
        return
    p = cslab.panel(CSData(subscriptions=subs), as_of=as_of, reactivation_months=window)
    by_month = p.groupby("month").agg(mrr=("mrr", "sum"), moves=("movement_mrr", "sum"))
    full = by_month.reindex(pd.date_range(by_month.index.min(), by_month.index.max(), freq="MS"), fill_value=0.0)
    assert np.allclose(full["mrr"].shift(1, fill_value=0.0) + full["moves"], full["mrr"])
    signs = {"new": 1, "expansion": 1, "reactivation": 1, "contraction": -1, "churn": -1}
    for movement, sign in signs.items():
        amounts = p.loc[p["movement"].eq(movement), "movement_mrr"]
        assert (np.sign(amounts) == sign).all()
    assert p.loc[p["movement"].isin(["flat", "inactive"]), "movement_mrr"].eq(0).all()
    assert (p["month"] <= as_of).all()
    # every account runs from its first month to the month of as_of without gaps
    span = p.groupby("account_id")["month"].agg(["min", "max", "size"])
    months = (span["max"].dt.year - span["min"].dt.year) * 12 + span["max"].dt.month - span["min"].dt.month + 1
    assert (months == span["size"]).all()
    assert (span["max"] == as_of.to_period("M").to_timestamp()).all()
