"""Metrics on a hand-computed book, and the identities on random and generated books."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cslab
from cslab import metrics
from cslab.data.io import CSData
from tests.conftest import write_folder

# The hand book, analysed as of 2024-01-31 (last month January 2024). Snapshots at month ends;
# end_date is the last paid day, so a line ending 2023-03-31 is churn in April.
#   A 100 from Jan 2023, 150 from June (expansion 50, June)            SMB         Basic -> Pro
#   B 100 Jan-Mar 2023 (churn 100, April)                              SMB
#   C 50 Jan-Aug, 30 from Sept (contraction 20, September)             SMB
#   D 200 Jan-Apr (churn 200, May), back at 100 in August (reactivation 100: a 3-month gap)
#                                                                      Enterprise
#   F 100 Jan-Feb, 60 Mar-May (contraction 40, March), 100 from June (expansion 40, June)
#                                                                      Enterprise
#   E new in July 2023 at 80; G new in August at 40, gone by the September snapshot (churn 40);
#   H new in January 2024 at 70                                        SMB
HAND_SUBSCRIPTIONS = (
    "account_id,start_date,end_date,mrr,plan\n"
    "A,2023-01-01,2023-05-31,100,Basic\nA,2023-06-01,,150,Pro\n"
    "B,2023-01-01,2023-03-31,100,Basic\n"
    "C,2023-01-01,2023-08-31,50,Basic\nC,2023-09-01,,30,Basic\n"
    "D,2023-01-01,2023-04-30,200,Basic\nD,2023-08-01,,100,Basic\n"
    "F,2023-01-01,2023-02-28,100,Basic\nF,2023-03-01,2023-05-31,60,Basic\nF,2023-06-01,,100,Basic\n"
    "E,2023-07-01,,80,Basic\n"
    "G,2023-08-01,2023-09-15,40,Basic\n"
    "H,2024-01-10,,70,Basic\n"
)
HAND_ACCOUNTS = "account_id,segment\nA,SMB\nB,SMB\nC,SMB\nD,Enterprise\nE,SMB\nF,Enterprise\nG,SMB\nH,SMB\n"
small_sample = pytest.mark.filterwarnings("ignore::cslab.errors.StatisticalWarning")


@pytest.fixture
def hand(tmp_path):
    folder = write_folder(tmp_path / "hand", {"subscriptions": HAND_SUBSCRIPTIONS, "accounts": HAND_ACCOUNTS})
    return cslab.panel(cslab.load(folder), as_of="2024-01-31")


# ------------------------------------------------------------------------------------------------
# Hand-computed values
# ------------------------------------------------------------------------------------------------
def test_revenue_retention_by_hand(hand):
    with pytest.warns(cslab.StatisticalWarning, match="5 accounts"):
        r = metrics.revenue_retention(hand, months=12)
    # cohort = active in January 2023: A, B, C, D, F; E, G and H joined later and are left out
    assert (r["start_month"], r["end_month"]) == (pd.Timestamp("2023-01-01"), pd.Timestamp("2024-01-01"))
    assert r["n_accounts"] == 5
    assert r["start_mrr"] == 550  # 100 + 100 + 50 + 200 + 100
    assert r["nrr"] == pytest.approx(380 / 550)  # now: A 150 + B 0 + C 30 + D 100 + F 100
    # capped per account: min(150,100) + min(0,100) + min(30,50) + min(100,200) + min(100,100)
    assert r["grr"] == pytest.approx(330 / 550)
    assert r["expansion_rate"] == pytest.approx(90 / 550)  # A 50 + F 40
    assert r["contraction_rate"] == pytest.approx(60 / 550)  # C 20 + F 40
    assert r["churn_rate"] == pytest.approx(300 / 550)  # B 100 + D 200
    assert r["reactivation_rate"] == pytest.approx(100 / 550)  # D back at 100
    assert r["headwind"] == pytest.approx(360 / 550)  # churn 300 + contraction 60
    assert r["tailwind"] == pytest.approx(90 / 550)
    # 1 + (90 - 60 - 300 + 100) / 550 = 380 / 550: the decomposition is exact
    parts = 1 + r["expansion_rate"] - r["contraction_rate"] - r["churn_rate"] + r["reactivation_rate"]
    assert parts == pytest.approx(r["nrr"], abs=1e-12)
    # GRR 330 vs 1 - headwind = 190: D's churn-and-return (100 back) and F's contraction and
    # re-expansion (40) count as losses in the movements but not point to point
    assert r["grr"] - (1 - r["headwind"]) == pytest.approx(140 / 550)


def test_revenue_retention_over_a_shorter_window_and_as_of(hand):
    with pytest.warns(cslab.StatisticalWarning):
        r = metrics.revenue_retention(hand, months=6, as_of="2023-07-20")
    # January -> July 2023: A 150, B 0, C 50, D 0 (back only in August), F 100 = 300
    assert r["end_month"] == pd.Timestamp("2023-07-01") and r["nrr"] == pytest.approx(300 / 550)
    assert r["grr"] == pytest.approx(250 / 550)  # 100 + 0 + 50 + 0 + 100
    assert r["reactivation_rate"] == 0 and r["churn_rate"] == pytest.approx(300 / 550)
    with pytest.raises(ValueError, match="history"):
        metrics.revenue_retention(hand, months=13)
    with pytest.raises(ValueError, match="outside the panel"):
        metrics.revenue_retention(hand, as_of="2024-03-31")


def test_logo_and_revenue_churn_by_hand(hand):
    with pytest.warns(cslab.StatisticalWarning, match="3 churns"):
        logo = metrics.logo_churn_rate(hand, months=12)
    # window February 2023 - January 2024; active at the start of each month (previous month's
    # end): Feb 5, Mar 5, Apr 5, May 4 (B gone), Jun 3 (D gone), Jul 3, Aug 4 (E), Sep 6 (D back,
    # G), Oct-Jan 5 each (G gone) = 5+5+5+4+3+3+4+6+5+5+5+5 = 55; churned: B, D, G
    assert (logo["churned"], logo["exposure"], logo["months"]) == (3, 55, 12)
    assert logo["monthly"] == pytest.approx(3 / 55)
    assert logo["annual"] == pytest.approx(1 - (1 - 3 / 55) ** 12)
    with pytest.warns(cslab.StatisticalWarning):
        revenue = metrics.revenue_churn(hand, months=12)
    # start MRR (previous month's total) of Feb..Jan:
    # 550, 550, 510, 410, 210, 300, 380, 520, 460, 460, 460, 460 = 5270
    # lost: churn 100 + 200 + 40, contraction 40 + 20 = 400; gained: expansion 90, reactivation 100
    assert revenue["start_mrr"] == 5270 and (revenue["lost"], revenue["gained"]) == (400, 190)
    assert revenue["gross_monthly"] == pytest.approx(400 / 5270)
    assert revenue["net_monthly"] == pytest.approx(210 / 5270)
    assert revenue["gross_annual"] == pytest.approx(1 - (1 - 400 / 5270) ** 12)
    with pytest.warns(cslab.StatisticalWarning) as caught:
        longer = metrics.logo_churn_rate(hand, months=24)
    # the panel starts in January 2023: the window is cut to the 12 months after it
    assert any("only 12 of the 24 months" in str(w.message) for w in caught)
    assert (longer["months"], longer["exposure"]) == (12, 55)


def test_bridge_and_movements_by_hand(hand):
    bridge = metrics.mrr_bridge(hand, start="2023-01-15", end="2024-01-31")
    # 550 + new (E 80 + G 40 + H 70) + 90 + 100 - 60 - 340 = 530
    assert bridge["step"].tolist() == ["start", "new", "expansion", "reactivation", "contraction", "churn", "end"]
    assert bridge.set_index("step")["amount"].to_dict() == {
        "start": 550,
        "new": 190,
        "expansion": 90,
        "reactivation": 100,
        "contraction": -60,
        "churn": -340,
        "end": 530,
    }
    assert bridge["amount"].iloc[:-1].sum() == bridge["amount"].iloc[-1]
    with pytest.raises(ValueError):
        metrics.mrr_bridge(hand, start="2023-06-01", end="2023-03-01")

    moves = metrics.mrr_movements(hand).set_index("month")
    assert len(moves) == 13
    april = moves.loc["2023-04-01"]  # B churns
    assert (april["start_mrr"], april["churn"], april["n_churn"], april["end_mrr"]) == (510, 100, 1, 410)
    assert (april["active_start"], april["active_end"]) == (5, 4)
    june = moves.loc["2023-06-01"]  # A +50 and F +40
    assert (june["expansion"], june["n_expansion"], june["net_new_mrr"]) == (90, 2, 90)
    august = moves.loc["2023-08-01"]  # D back, G new
    assert (august["reactivation"], august["new"], august["n_new"]) == (100, 40, 1)
    first = moves.iloc[0]
    assert (first["start_mrr"], first["new"], first["n_new"], first["end_mrr"]) == (0, 550, 5, 550)


def test_bridge_on_a_panel_cut_to_later_months(hand):
    moves = metrics.mrr_movements(hand[hand["month"] >= "2023-06-01"]).set_index("month")
    # the first month's start MRR is still May's total, not 0: the identity holds on any cut
    assert moves["start_mrr"].iloc[0] == 210 and moves["active_start"].iloc[0] == 3


def test_cohort_tables_by_hand(hand):
    logo = metrics.cohort_table(hand, period="M", kind="logo", values="count")
    assert logo.index.tolist() == ["2023-01", "2023-07", "2023-08", "2024-01"]
    assert logo.columns.tolist() == list(range(13))
    # January cohort (A B C D F): Apr B gone, May D gone, Aug D back
    assert logo.loc["2023-01"].tolist() == [5, 5, 5, 4, 3, 3, 3, 4, 4, 4, 4, 4, 4]
    assert logo.loc["2023-08"].iloc[:6].tolist() == [1, 0, 0, 0, 0, 0]  # G: 0 once gone, not NaN
    last = pd.Timestamp("2024-01-01")
    for cohort, row in logo.iterrows():  # NaN exactly at the ages not reached by January 2024
        reached = (last.to_period("M") - pd.Period(cohort, "M")).n
        assert row.isna().tolist() == [age > reached for age in row.index]
    assert logo[0].tolist() == list(logo.attrs["cohort_sizes"].values()) == [5, 1, 1, 1]

    pct = metrics.cohort_table(hand, period="M", kind="logo", values="pct")
    assert pct.loc["2023-01"].tolist() == pytest.approx([1, 1, 1, 0.8, 0.6, 0.6, 0.6, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8])
    revenue = metrics.cohort_table(hand, period="M", kind="revenue", values="pct")
    assert revenue.loc["2023-01", 5] == pytest.approx(300 / 550)  # June: A 150 + C 50 + F 100
    assert revenue.loc["2023-01", 12] == pytest.approx(380 / 550)  # = the NRR of this cohort
    money = metrics.cohort_table(hand, period="M", kind="revenue", values="count")
    assert money.loc["2023-01", 2] == 510 and money.attrs["cohort_start"]["2023-01"] == 550

    kept = metrics.cohort_table(hand, period="M", min_cohort_size=2)
    assert kept.index.tolist() == ["2023-01"]
    assert kept.attrs["dropped_cohorts"] == ["2023-07", "2023-08", "2024-01"]


def test_quarterly_cohorts_are_measured_at_quarter_ends(hand):
    logo = metrics.cohort_table(hand, period="Q", kind="logo", values="count")
    # 2023Q1 (A B C D F) at the ends of Mar, Jun, Sep, Dec 2023: 5; A C F = 3; + D = 4; 4.
    # 2023Q3 (E, G): G is gone by the end of September, so age 0 already counts 1 of 2.
    # 2024Q1 (H): the quarter has not ended by January 2024, so nothing is reached yet.
    assert logo.index.tolist() == ["2023Q1", "2023Q3", "2024Q1"]
    assert logo.loc["2023Q1"].tolist() == [5, 3, 4, 4]
    assert logo.loc["2023Q3"].iloc[:2].tolist() == [1, 1] and logo.loc["2023Q3"].iloc[2:].isna().all()
    assert logo.loc["2024Q1"].isna().all()
    assert logo.attrs["cohort_sizes"] == {"2023Q1": 5, "2023Q3": 2, "2024Q1": 1}
    pct = metrics.cohort_table(hand, period="Q", kind="logo", values="pct")
    assert pct.loc["2023Q1"].tolist() == pytest.approx([1, 0.6, 0.8, 0.8])
    assert pct.loc["2023Q3", 0] == pytest.approx(0.5)  # divided by the cohort's size, not its age 0
    revenue = metrics.cohort_table(hand, period="Q", kind="revenue", values="pct")
    assert revenue.loc["2023Q3", 0] == pytest.approx(80 / 120)  # E 80 of first-month E 80 + G 40
    assert revenue.loc["2023Q1", 3] == pytest.approx(380 / 550)  # December: A150 C30 D100 F100


def test_retention_over_time_by_hand(hand):
    with pytest.warns(cslab.StatisticalWarning):
        series = metrics.retention_over_time(hand, months=12)
    assert series["month"].tolist() == [pd.Timestamp("2024-01-01")]
    assert series["nrr"].iloc[0] == pytest.approx(380 / 550) and series["grr"].iloc[0] == pytest.approx(330 / 550)
    with pytest.warns(cslab.StatisticalWarning):
        six = metrics.retention_over_time(hand, months=6).set_index("month")
    assert len(six) == 7 and six.loc["2023-07-01", "nrr"] == pytest.approx(300 / 550)
    with pytest.warns(cslab.StatisticalWarning):
        by = metrics.retention_over_time(hand, months=12, by="segment").set_index("segment")
    # SMB: A B C 250 -> 150 + 0 + 30; Enterprise: D F 300 -> 100 + 100
    assert by.loc["SMB", "nrr"] == pytest.approx(180 / 250) and by.loc["SMB", "grr"] == pytest.approx(130 / 250)
    assert by.loc["Enterprise", "nrr"] == pytest.approx(200 / 300)
    assert by.loc["Enterprise", "grr"] == pytest.approx(200 / 300)
    # plan as in the start month: A is on Pro from June, so the window July 2023 - January 2024
    # puts it in Pro (its January plan was Basic)
    with pytest.warns(cslab.StatisticalWarning):
        plans = metrics.retention_over_time(hand, months=6, by="plan")
    pro = plans[plans["plan"].eq("Pro")].set_index("month")
    assert pro.loc["2024-01-01", "n_accounts"] == 1 and pro.loc["2024-01-01", "nrr"] == 1.0


def test_a_return_after_the_reactivation_window_counts_as_reactivation_for_the_cohort(tmp_path):
    # X pays 100 in Jan-Feb 2023 and comes back at 120 in June 2024 after 15 months away: the
    # panel calls it new (a second lifetime), the starting cohort of January 2023 a return
    folder = write_folder(
        tmp_path / "x",
        {
            "subscriptions": (
                "account_id,start_date,end_date,mrr\nX,2023-01-01,2023-02-28,100\nX,2024-06-01,,120\n"
                "Y,2023-01-01,,100\n"
            )
        },
    )
    panel = cslab.panel(cslab.load(folder), as_of="2024-07-31")
    assert panel.loc[panel["account_id"].eq("X") & panel["month"].eq("2024-06-01"), "movement"].item() == "new"
    with pytest.warns(cslab.StatisticalWarning):
        r = metrics.revenue_retention(panel, months=18)
    # start 200; now X 120 + Y 100 = 220; churn 100; back 120: 1 - 0.5 + 0.6 = 1.1
    assert r["nrr"] == pytest.approx(1.1) and r["grr"] == pytest.approx(1.0)
    assert (r["churn_rate"], r["reactivation_rate"]) == pytest.approx((0.5, 0.6))


def test_metric_definitions_cover_the_module():
    table = metrics.metric_definitions()
    assert list(table.columns) == ["metric", "formula", "in_plain_words", "function"]
    assert table["metric"].is_unique and table.notna().all().all()
    local = {f for f in table["function"] if "." not in f}
    assert local == {
        "mrr_movements",
        "mrr_bridge",
        "logo_churn_rate",
        "revenue_churn",
        "revenue_retention",
        "cohort_table",
    }
    assert set(local) <= set(metrics.__all__)


# ------------------------------------------------------------------------------------------------
# Identities on random books (hypothesis) and on a generated book
# ------------------------------------------------------------------------------------------------
BASE = pd.Timestamp("2023-01-01")
lines = st.lists(
    st.tuples(
        st.sampled_from("abcdefg"),  # account
        st.integers(0, 700),  # start, days after BASE
        st.one_of(st.none(), st.integers(0, 400)),  # days to the last paid day
        st.sampled_from([0.0, 10.0, 25.5, 99.99, 100.0, 250.0]),  # MRR, $0 lines included
    ),
    min_size=1,
    max_size=14,
)


def random_panel(rows, as_of_days):
    subs = pd.DataFrame(
        {
            "account_id": pd.Series([r[0] for r in rows], dtype=object),
            "start_date": BASE + pd.to_timedelta([r[1] for r in rows], unit="D"),
            "end_date": pd.to_datetime(
                [BASE + pd.Timedelta(days=r[1] + r[2]) if r[2] is not None else pd.NaT for r in rows]
            ),
            "mrr": [float(r[3]) for r in rows],
        }
    )
    as_of = BASE + pd.Timedelta(days=as_of_days)
    subs = subs[subs["start_date"] <= as_of]
    if subs.empty:
        return None, subs, as_of
    return cslab.panel(CSData(subscriptions=subs), as_of=as_of), subs, as_of


@small_sample
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=lines, as_of_days=st.integers(200, 800))
def test_bridge_and_retention_identities_on_random_books(rows, as_of_days):
    panel, subs, as_of = random_panel(rows, as_of_days)
    if panel is None or not panel["active"].any():
        return
    moves = metrics.mrr_movements(panel)
    # the bridge identity, every month
    identity = (
        moves["start_mrr"]
        + moves["new"]
        + moves["expansion"]
        - moves["contraction"]
        - moves["churn"]
        + moves["reactivation"]
    )
    np.testing.assert_allclose(identity, moves["end_mrr"], atol=1e-6)
    # start MRR is the previous month's end MRR, and end MRR is what the lines say at the snapshot
    np.testing.assert_allclose(moves["start_mrr"].iloc[1:], moves["end_mrr"].iloc[:-1], atol=1e-6)
    assert moves["start_mrr"].iloc[0] == 0
    for month, end_mrr, active_end in moves[["month", "end_mrr", "active_end"]].itertuples(index=False):
        snapshot = min(month + pd.offsets.MonthEnd(0), as_of)
        running = subs[(subs["start_date"] <= snapshot) & (subs["end_date"].isna() | (subs["end_date"] >= snapshot))]
        per_account = running.groupby("account_id")["mrr"].sum()
        assert end_mrr == pytest.approx(per_account.sum(), abs=1e-6)
        assert active_end == (per_account > 0).sum()
    assert (moves["active_start"].iloc[1:].to_numpy() == moves["active_end"].iloc[:-1].to_numpy()).all()
    assert (moves[list(metrics.MOVEMENT_STEPS)] >= 0).all().all()

    bridge = metrics.mrr_bridge(panel) if len(moves) > 1 else None
    if bridge is not None:
        assert bridge["amount"].iloc[:-1].sum() == pytest.approx(bridge["amount"].iloc[-1], abs=1e-6)

    logo = metrics.logo_churn_rate(panel, months=6)
    assert 0 <= logo["churned"] <= logo["exposure"]

    # retention against a direct computation on the account x month MRR matrix
    mrr = panel.pivot(index="account_id", columns="month", values="mrr").fillna(0.0)
    for months in (1, 3, 12, 18):
        series = metrics.retention_over_time(panel, months=months)
        for row in series.itertuples(index=False):
            then, now = mrr[row.start_month], mrr[row.month]
            members = then > 0
            assert row.n_accounts == members.sum()
            assert row.nrr == pytest.approx(now[members].sum() / then[members].sum(), rel=1e-9)
            assert row.grr == pytest.approx(np.minimum(now, then)[members].sum() / then[members].sum(), rel=1e-9)
        parts = (
            1
            + series["expansion_rate"]
            - series["contraction_rate"]
            - series["churn_rate"]
            + series["reactivation_rate"]
        )
        np.testing.assert_allclose(parts, series["nrr"], atol=1e-9)
        # the true invariants: 1 - headwind <= GRR <= min(1, NRR)
        assert (series["grr"] <= 1 + 1e-12).all() and (series["grr"] <= series["nrr"] + 1e-12).all()
        assert (series["grr"] >= 1 - series["headwind"] - 1e-12).all()
        np.testing.assert_allclose(series["headwind"], series["churn_rate"] + series["contraction_rate"])

    # cohort triangle: age 0 = cohort sizes; NaN exactly where an age is not reached yet
    table = metrics.cohort_table(panel, period="M", kind="logo", values="count")
    last = panel["month"].max().to_period("M")
    sizes = panel[panel["active"]].groupby(panel["cohort_month"].dt.strftime("%Y-%m"))["account_id"].nunique()
    assert table[0].to_dict() == sizes.to_dict() == table.attrs["cohort_sizes"]
    reached = np.array([(last - pd.Period(c, "M")).n for c in table.index])
    assert (table.isna().to_numpy() == (table.columns.to_numpy()[None, :] > reached[:, None])).all()
    assert (table.fillna(0).to_numpy() <= sizes.reindex(table.index).to_numpy()[:, None]).all()


def test_vectorised_retention_matches_point_estimates_on_a_generated_book(tmp_path):
    from cslab.data.synth import generate

    generate(n_accounts=400, n_months=24, seed=8).write(tmp_path / "b")
    panel = cslab.panel(cslab.load(tmp_path / "b"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cslab.StatisticalWarning)
        series = metrics.retention_over_time(panel, months=12)
        assert len(series) == 12
        for _, row in series.iloc[[0, 5, 11]].iterrows():
            point = metrics.revenue_retention(panel, months=12, as_of=row["month"])
            for key in metrics.RATE_COLUMNS:
                assert row[key] == pytest.approx(point[key], rel=1e-12), key
        by = metrics.retention_over_time(panel, months=12, by="segment")
    assert set(by["segment"]) == {"SMB", "Mid-Market", "Enterprise"}
    # the groups add up to the whole book
    totals = by.groupby("month")[["start_mrr", "n_accounts"]].sum()
    assert np.allclose(totals["start_mrr"], series.set_index("month")["start_mrr"])
    assert (totals["n_accounts"] == series.set_index("month")["n_accounts"]).all()
