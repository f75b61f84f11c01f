"""Exposure types of CS programmes (groundwork of issue 12): classified from the data, overridable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cslab.exposure import classify_programmes, exposure


def _activities():
    rng = np.random.default_rng(0)
    rows = []
    for i in range(200):
        start = pd.Timestamp("2023-01-01") + pd.Timedelta(days=int(rng.integers(0, 300)))
        rows.append((f"A{i}", start, "Kickoff Call"))  # once per account
        if i % 2:  # half the accounts have quarterly business reviews
            rows += [(f"A{i}", start + pd.Timedelta(days=91 * k), "Business Review") for k in range(1, 5)]
        if i % 10 == 0:  # one escalation for a tenth, two for a few (35% of them: recurring)
            rows.append((f"A{i}", start + pd.Timedelta(days=40), "Escalation"))
            if i % 30 == 0:
                rows.append((f"A{i}", start + pd.Timedelta(days=200), "Escalation"))
    return pd.DataFrame(rows, columns=["account_id", "date", "activity_type"])


def test_types_classified_from_repeats_and_spacing():
    table = classify_programmes(_activities())
    assert table["exposure"].to_dict() == {
        "business_review": "recurring",
        "escalation": "recurring",
        "kickoff_call": "one_time",
    }
    review = table.loc["business_review"]
    assert review["repeat_share"] == 1.0 and review["median_gap_days"] == 91
    assert "100% of the 100 accounts" in review["reason"] and "91 days apart" in review["reason"]
    assert table.loc["escalation", "repeat_share"] == pytest.approx(7 / 20)
    # the cut is a parameter: at 40% the same escalations count as one-time work
    assert classify_programmes(_activities(), min_repeat_share=0.4).loc["escalation", "exposure"] == "one_time"


def test_overrides_win_and_are_checked():
    table = classify_programmes(_activities(), {"escalation": "one_time"})
    assert table.loc["escalation", "exposure"] == "one_time"
    assert table.loc["escalation", "reason"].startswith("set by parameter")
    with pytest.raises(ValueError, match="unknown programme"):
        classify_programmes(_activities(), {"qbr": "recurring"})
    with pytest.raises(ValueError, match="type"):
        classify_programmes(_activities(), {"escalation": "sometimes"})


def test_recurring_exposure_fades_and_follows_calendar_months():
    dates = pd.to_datetime(
        ["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30", "2024-08-31", "2024-09-30"]
    )  # paused May-July
    rows = pd.DataFrame({"account_id": "A", "observation_date": dates, "cs_qbr_count": [1, 1, 2, 2, 2, 3]})
    assert exposure(rows, "qbr", "recurring", exposure_months=3).tolist() == [True, True, True, True, False, True]
    assert exposure(rows, "qbr", "recurring", exposure_months=3, dose=True).tolist() == [1, 1, 2, 1, 0, 1]
    assert exposure(rows, "qbr", "one_time").all()
    with pytest.raises(ValueError):
        exposure(rows, "qbr", "weekly")
