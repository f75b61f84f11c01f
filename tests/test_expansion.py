"""Expansion: planted drivers and AUC, the NRR identity, whitespace and uplift by hand, the ranked list."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

import cslab
from cslab import drivers, expansion, features
from tests.conftest import write_folder

HORIZON = 3


@pytest.fixture(scope="module")
def planted(demo_book):
    _, folder = demo_book
    data = cslab.load(folder)
    panel = cslab.panel(data)
    churn, scoring = features.build_dataset(data, panel, horizon_months=HORIZON)
    upsell, upsell_scoring = features.build_dataset(data, panel, horizon_months=HORIZON, target="expansion")
    fitted = expansion.fit_expansion(upsell, test_months=6, horizon_months=HORIZON, shap_sample=1000)
    return {"folder": folder, "data": data, "panel": panel, "churn": churn, "scoring": scoring,
            "upsell": upsell, "upsell_scoring": upsell_scoring, "fitted": fitted,
            "truth": json.loads((folder / "truth.json").read_text()),
            "truth_panel": pd.read_csv(folder / "truth_panel.csv", parse_dates=["month"])}


def test_expansion_target_keeps_the_churn_rows_and_features(planted):
    churn, upsell = planted["churn"], planted["upsell"]
    labels = ["label", "months_to_event"]
    pd.testing.assert_frame_equal(churn.drop(columns=labels), upsell.drop(columns=labels))
    pd.testing.assert_frame_equal(planted["scoring"], planted["upsell_scoring"])
    assert 0.04 < upsell["label"].mean() < 0.12 and churn["label"].mean() != upsell["label"].mean()
    with pytest.raises(ValueError, match="target"):
        features.build_dataset(planted["data"], planted["panel"], target="upsell")


def test_top_expansion_drivers_are_planted_ones(planted):
    ranking = planted["fitted"]["importance"]
    assert not any("_" in c and c.split("_")[0] in {"segment", "plan"} for c in ranking.index)  # summed back
    top5 = ranking.index[:5].tolist()
    planted_drivers = planted["truth"]["expansion_drivers"]
    assert top5[0] == "seat_utilisation", top5  # the strongest planted effect
    assert len(set(top5) & set(planted_drivers)) >= 3, (top5, planted_drivers)


def test_auc_close_to_the_true_probabilities(planted):
    fitted = planted["fitted"]
    test, truth = fitted["test"], planted["truth_panel"]
    rows = test.assign(month=test["observation_date"].dt.to_period("M").dt.to_timestamp())
    monthly = []
    for k in range(1, HORIZON + 1):  # truth_panel's month m: P(expand in m) given the state at end of m-1
        ahead = truth.assign(month=truth["month"] - pd.DateOffset(months=k))
        p = rows[["account_id", "month"]].merge(ahead, on=["account_id", "month"], how="left")["p_expand"]
        monthly.append(p.fillna(0).to_numpy())
    # The month after the observation date: computed by the generator from the features on that
    # date, the best any model of those features can know; 1 - (1 - p)^h ranks like p.
    known = roc_auc_score(rows["label"], 1 - (1 - monthly[0]) ** HORIZON)
    # Over the whole horizon: months 2 and 3 use states after the observation date.
    horizon = roc_auc_score(rows["label"], 1 - np.prod([1 - p for p in monthly], axis=0))
    auc = fitted["evaluation"]["auc"]
    assert auc == pytest.approx(roc_auc_score(test["label"], fitted["model"].predict_proba(test)))
    assert abs(auc - known) < 0.03, (auc, known, horizon)
    assert horizon - auc < 0.05, (auc, known, horizon)
    assert fitted["evaluation"]["top_decile_lift"] > 2
    assert fitted["evaluation"]["calibration_error"] < 0.02


@pytest.mark.filterwarnings("ignore::cslab.errors.StatisticalWarning")  # some CSMs have few accounts
@pytest.mark.parametrize("by", [None, "segment", "csm_id", "cohort_year"])
def test_nrr_decomposition_adds_up_every_month(planted, by):
    parts = expansion.nrr_components(planted["panel"], months=12, by=by)
    rebuilt = (1 + parts["expansion_rate"] - parts["contraction_rate"] - parts["churn_rate"]
               + parts["reactivation_rate"])
    assert np.abs(parts["nrr"] - rebuilt).max() < 1e-9
    assert parts["month"].nunique() == 36 - 12
    if by is None:
        last = parts.iloc[-1]
        assert last["nrr"] == pytest.approx(cslab.metrics.revenue_retention(planted["panel"])["nrr"])
    else:
        assert parts[by].notna().all()
    if by == "csm_id":
        assert expansion.NO_CSM in set(parts["csm_id"])
    if by == "cohort_year":
        assert set(parts["cohort_year"]) == {2023, 2024}  # accounts active 12 months before an end month


def test_ranked_opportunities(planted):
    fitted, scoring, panel = planted["fitted"], planted["upsell_scoring"], planted["panel"]
    train, _ = drivers.time_split(planted["churn"], test_months=6, horizon_months=HORIZON)
    health = drivers.health_scores(drivers.ChurnModel("trees").fit(train).predict_proba(scoring))
    p = fitted["model"].predict_proba(scoring)
    uplift = expansion.expected_uplift(panel)
    _, summary = expansion.whitespace(planted["data"], panel)
    explained = scoring.iloc[np.argsort(-p)[:50]]
    why = expansion.expansion_reasons(fitted["model"], explained)
    table = expansion.opportunities(scoring, p, uplift, health["band"], reasons=why, whitespace=summary,
                                    min_probability=0.15)
    assert list(table.columns) == list(expansion.EXPANSION_COLUMNS)
    assert len(table) == len(scoring) == table["account_id"].nunique()
    assert table["expected_expansion_arr"].is_monotonic_decreasing
    assert np.allclose(table["expected_expansion_arr"], table["probability"] * table["expected_uplift_arr"])
    red = table["health_band"].eq("red")
    assert red.sum() > 20 and table.loc[red, "action"].eq(expansion.STABILISE).all()
    assert set(table.loc[~red, "action"]) == {"expand", "nurture"}
    assert (table.loc[table["action"].eq("expand"), "probability"] >= 0.15).all()
    with_reasons = table["reasons"].ne("")
    assert with_reasons.sum() == 50 and not table["reasons"].str.contains("risk").any()
    assert (table.loc[with_reasons, "reasons"].str.count(";") == 2).mean() > 0.9  # three reasons each
    assert table["whitespace_products"].str.contains(r"% of peers\)").mean() > 0.9
    # the headroom cap: within a segment and plan, no account with free seats is expected to add
    # more than one that may add seats
    room = uplift["seat_room"].fillna(False).astype(bool)
    most_free = uplift[~room].groupby(["segment", "plan"])["expected_uplift_arr"].max()
    least_full = uplift[room].groupby(["segment", "plan"])["expected_uplift_arr"].min()
    both = most_free.index.intersection(least_full.index)
    assert len(both) >= 5 and (most_free[both] <= least_full[both]).all()
    assert (most_free[both] < least_full[both]).any()


def test_seat_utilisation_matches_the_features(planted):
    by_segment = expansion.seat_utilisation(planted["panel"])
    from_scoring = expansion.seat_utilisation(planted["scoring"])
    pd.testing.assert_frame_equal(by_segment, from_scoring)
    full = planted["scoring"]["seat_utilisation"] >= expansion.CAPACITY_THRESHOLD
    assert by_segment.loc["all", "share_at_capacity"] == pytest.approx(full.mean())
    assert by_segment.loc["all", "n_accounts"] == len(planted["scoring"])


# ------------------------------------------------------------------------------------------------
# A hand-made book: products, seats and usage checked by hand
# ------------------------------------------------------------------------------------------------
SUBS = ("account_id,start_date,end_date,mrr,product,plan,seats\n"
        "A,2024-01-01,2024-03-31,20,Core,Team,2\nA,2024-04-01,,100,Core,Team,10\n"   # +80 seats, April
        "A,2024-01-01,,30,Analytics,Team,\n"
        "B,2024-01-01,,100,Core,Team,10\nB,2024-03-01,,30,Analytics,Team,\n"         # +30 product, March
        "C,2024-01-01,,100,Core,Team,10\n"
        "D,2024-01-01,2024-04-30,40,Core,Team,4\nD,2024-05-01,,100,Core,Team,10\n"   # +60 seats, May
        "D,2024-01-01,,25,Automation,Team,\n"
        "E,2024-01-01,,100,Core,Team,10\nE,2024-01-01,,30,Analytics,Team,\n"
        "E,2024-05-01,,25,Automation,Team,\n"                                        # +25 product, May
        "F,2024-01-01,,500,Core,Business,50\nF,2024-01-01,,100,Integrations,Business,\n"
        "G,2024-01-01,2024-04-30,100,Core,Team,10\nG,2024-01-01,2024-04-30,30,Analytics,Team,\n")  # churns in May
ACCOUNTS = ("account_id,name,segment,employees\nA,Alpha,SMB,\nB,Beta,SMB,\nC,Gamma,SMB,10\nD,Delta,SMB,\n"
            "E,Epsilon,SMB,\nF,Foxtrot,Enterprise,\nG,Golf,SMB,\n")
USERS = {"A": 10, "B": 5, "C": 9, "D": 2, "E": 8, "F": 45}  # active users on 2024-06-30


@pytest.fixture
def hand(tmp_path):
    usage = "account_id,date,metric,value\n" + "".join(f"{a},2024-06-30,active_users,{u}\n"
                                                        for a, u in USERS.items())
    folder = write_folder(tmp_path / "hand", {"subscriptions": SUBS, "accounts": ACCOUNTS, "usage": usage})
    data = cslab.load(folder)
    return data, cslab.panel(data, as_of="2024-06-30")


def test_whitespace_by_hand(hand):
    data, panel = hand
    matrix = expansion.product_matrix(data, "2024-06-30")
    assert "G" not in matrix.index and matrix.loc["E"].sum() == 3  # G's lines ended before as_of
    table, summary = expansion.whitespace(data, panel, min_peers=3, size_bands=1)
    got = {(r.account_id, r.product): round(r.peer_adoption, 6) for r in table.itertuples()}
    # SMB peers are the four other SMB accounts: Analytics A, B, E; Automation D, E; Integrations none.
    # F, alone in Enterprise, is compared with all five other active accounts.
    assert got == {("A", "Automation"): 0.5, ("B", "Automation"): 0.5, ("C", "Analytics"): 0.75,
                   ("C", "Automation"): 0.5, ("D", "Analytics"): 0.75,
                   ("F", "Analytics"): 0.6, ("F", "Automation"): 0.4}
    assert table.set_index("account_id").loc["F", "peer_group"].eq("all active accounts").all()
    assert table.set_index("account_id").loc["C", "peer_group"].eq("same segment").all()
    assert summary["C"] == "Analytics (75% of peers); Automation (50% of peers)"
    assert summary["E"] == "" and set(summary.index) == set("ABCDEF")
    # the five SMB accounts all have 10 seats: tied sizes share a band, so banding changes nothing
    banded, _ = expansion.whitespace(data, panel, min_peers=3, size_bands=2)
    assert {(r.account_id, r.product): round(r.peer_adoption, 6) for r in banded.itertuples()} == got
    assert banded.set_index("account_id").loc["C", "peer_group"].eq("same segment and size band").all()
    assert banded.attrs["size_basis"] == "seats"


def test_seat_utilisation_and_uplift_by_hand(hand):
    _, panel = hand
    flags = expansion.at_capacity(panel).set_index("account_id")
    assert flags["seat_utilisation"].round(6).to_dict() == {"A": 1.0, "B": 0.5, "C": 0.9, "D": 0.2, "E": 0.8,
                                                            "F": 0.9}
    assert flags["at_capacity"].to_dict() == {"A": True, "B": False, "C": True, "D": False, "E": False, "F": True}
    summary = expansion.seat_utilisation(panel)
    assert summary.loc["SMB", "share_at_capacity"] == pytest.approx(2 / 5)
    assert summary.loc["all", "share_at_capacity"] == pytest.approx(3 / 6)
    assert summary.loc["SMB", "median"] == pytest.approx(0.8)

    uplift = expansion.expected_uplift(panel, min_count=2).set_index("account_id")
    # SMB Team expansions: +80 (seats), +30 (product), +60 (seats), +25 (product): median 45;
    # without seats: 27.5. Enterprise has none: F gets the median of all expansions.
    assert uplift["expected_uplift_mrr"].to_dict() == {"A": 45, "B": 27.5, "C": 27.5, "D": 27.5, "E": 27.5,
                                                       "F": 45}
    assert uplift.loc["A", "headroom"] == "at capacity: may add seats"
    assert uplift.loc["C", "headroom"].startswith("a seat for every employee")  # 10 seats, 10 employees
    assert uplift.loc["B", "uplift_basis"] == "segment and plan, no seats added"
    assert uplift.loc["F", "uplift_basis"] == "all expansions" and uplift.loc["F", "n_comparable"] == 4
    assert uplift.loc["A", "expected_uplift_arr"] == 12 * 45


def test_expansion_and_churn_labels_by_hand(hand):
    data, panel = hand
    default, _ = features.build_dataset(data, panel, horizon_months=2)
    churn, _ = features.build_dataset(data, panel, horizon_months=2, target="churn")
    upsell, _ = features.build_dataset(data, panel, horizon_months=2, target="expansion")
    pd.testing.assert_frame_equal(default, churn)

    def labels(frame, account):
        rows = frame[frame["account_id"].eq(account)]
        return rows["label"].tolist(), rows["months_to_event"].tolist()

    # observations Jan-Apr 2024 (June is as_of, the label looks 2 months ahead)
    assert labels(upsell, "A") == ([0, 1, 1, 0], [2, 2, 1, 2])  # expanded in April
    assert labels(upsell, "B") == ([1, 1, 0, 0], [2, 1, 2, 2])  # expanded in March
    assert labels(upsell, "G") == ([0, 0, 0, 0], [2, 2, 2, 2])
    assert labels(churn, "G") == ([0, 0, 1, 1], [2, 2, 2, 1])   # churned in May
    assert labels(churn, "A") == ([0, 0, 0, 0], [2, 2, 2, 2])
