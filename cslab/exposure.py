"""Exposure to a CS programme: given once, or recurring with an effect that fades.

Onboarding is given once: an account is exposed from the month after it, for good. A QBR, a health
check or an escalation recurs, and what it can change is the next few months: an account is
*exposed* while an activity of the programme fell within the last ``exposure_months`` months (the
count in that window is the *dose*). Treating a recurring programme as "on forever" from its first
activity credits a QBR held two years ago with this month's churn, and pulls a real, short-lived
effect towards no effect.

:func:`classify_programmes` decides the type of each programme from the data (how many treated
accounts received it more than once, and how far apart), overridable by the caller;
:func:`exposure` turns the monthly activity counts into the exposure series the effect models use.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from cslab.data.roles import parse_pairs, snake

__all__ = ["EXPOSURE_TYPES", "RECURRING_REPEAT_SHARE", "classify_programmes", "exposure", "parse_exposure_types"]

EXPOSURE_TYPES = ("one_time", "recurring")
#: A programme is recurring when at least this share of the accounts that received it received it
#: more than once. One-time work (onboarding, a certification) repeats for a few accounts at most; a
#: programme a quarter of its accounts got again is delivered again on purpose, and what it changes
#: is the next few months.
RECURRING_REPEAT_SHARE = 0.25


def parse_exposure_types(text: str) -> dict[str, str]:
    """``"qbr:recurring, Training=one_time"`` -> ``{"qbr": "recurring", "training": "one_time"}``.

    Programme names are put in the panel's form (:func:`cslab.data.roles.snake`); ``:`` and ``=``
    both separate (papermill cannot parse ``=`` in a parameter comment).

    Examples
    --------
    >>> parse_exposure_types("qbr:recurring, Training=one_time")
    {'qbr': 'recurring', 'training': 'one_time'}
    """
    out = {}
    for programme, kind in parse_pairs(text, "exposure_types", "PROGRAMME=TYPE").items():
        if kind not in EXPOSURE_TYPES:
            raise ValueError(f"exposure_types: {kind!r} for {programme!r} is not one of {', '.join(EXPOSURE_TYPES)}")
        out[snake(programme)] = kind
    return out


def classify_programmes(
    activities: pd.DataFrame,
    overrides: Mapping[str, str] | None = None,
    *,
    min_repeat_share: float = RECURRING_REPEAT_SHARE,
) -> pd.DataFrame:
    """The exposure type of each programme (activity type), and why.

    A programme is ``recurring`` when at least ``min_repeat_share`` of the accounts that received
    it received it more than once; otherwise ``one_time``. ``overrides`` (programme -> type) win.

    Parameters
    ----------
    activities : DataFrame
        The ``cs_activities`` table (``account_id``, ``date``, ``activity_type``).
    overrides : mapping, optional
        Programme (as the panel names it: ``business_review`` for "Business Review") -> type.
    min_repeat_share : float, default RECURRING_REPEAT_SHARE (0.25)

    Returns
    -------
    DataFrame
        Indexed by programme: ``accounts``, ``activities``, ``repeat_share`` (treated accounts with
        more than one activity), ``median_gap_days`` (between an account's consecutive activities),
        ``exposure`` (``one_time`` or ``recurring``) and ``reason`` in words.

    Raises
    ------
    ValueError
        An override names an unknown programme or type.

    Examples
    --------
    >>> acts = pd.DataFrame({"account_id": ["A", "A", "A", "B", "B", "C"],
    ...                      "date": pd.to_datetime(["2024-01-05", "2024-04-02", "2024-07-01",
    ...                                              "2024-02-01", "2024-05-03", "2024-03-01"]),
    ...                      "activity_type": ["QBR", "QBR", "QBR", "QBR", "QBR", "Onboarding"]})
    >>> classify_programmes(acts)["exposure"].to_dict()
    {'onboarding': 'one_time', 'qbr': 'recurring'}
    """
    acts = activities.dropna(subset=["account_id", "date", "activity_type"])
    acts = acts.assign(programme=acts["activity_type"].map(snake)).sort_values(["programme", "account_id", "date"])
    per_account = acts.groupby(["programme", "account_id"]).size()
    gaps = acts.groupby(["programme", "account_id"])["date"].diff().dt.days
    table = pd.DataFrame(
        {
            "accounts": per_account.groupby(level=0).size(),
            "activities": per_account.groupby(level=0).sum(),
            "repeat_share": per_account.gt(1).groupby(level=0).mean(),
            "median_gap_days": gaps.groupby(acts["programme"]).median(),
        }
    )
    table.index.name = "programme"
    overrides = dict(overrides or {})
    unknown = [p for p in overrides if p not in table.index]
    wrong = [t for t in overrides.values() if t not in EXPOSURE_TYPES]
    if unknown or wrong:
        raise ValueError(
            f"exposure types: unknown programme(s) {unknown} (the data has "
            f"{list(table.index)}) or type(s) {wrong} (use {' or '.join(EXPOSURE_TYPES)})"
        )
    kinds, reasons = [], []
    for programme, row in table.iterrows():
        share = f"{row['repeat_share']:.0%} of the {int(row['accounts']):,} accounts that received it"
        if programme in overrides:
            kinds.append(overrides[programme])
            reasons.append(f"set by parameter ({share} received it more than once)")
        elif row["repeat_share"] >= min_repeat_share:
            kinds.append("recurring")
            gap = row["median_gap_days"]
            reasons.append(
                f"{share} received it more than once" + (f", a median {gap:.0f} days apart" if pd.notna(gap) else "")
            )
        else:
            kinds.append("one_time")
            reasons.append(
                f"none of the {int(row['accounts']):,} accounts that received it received it twice"
                if row["repeat_share"] == 0
                else f"only {share} received it more than once"
            )
    return table.assign(exposure=kinds, reason=reasons)


def exposure(
    rows: pd.DataFrame, programme: str, kind: str = "one_time", *, exposure_months: int = 3, dose: bool = False
) -> pd.Series:
    """Exposure to a programme in each account-month, from the cumulative activity counts.

    ``rows`` holds account-months with ``cs_<programme>_count`` (the activities up to each month, as
    :func:`cslab.features.build_dataset` writes it) and ``observation_date`` (else rows are taken as
    consecutive months in order within each account). A row's exposure
    concerns the outcome of the month after it (churn or expansion next month), so an activity in
    the observation month already counts: the programme is on from the month after its activity.

    Parameters
    ----------
    rows : DataFrame
    programme : str
    kind : {"one_time", "recurring"}
        ``one_time``: exposed from the first activity on, for good. ``recurring``: exposed while an
        activity fell in the ``exposure_months`` months up to and including the row's month.
    exposure_months : int, default 3
    dose : bool, default False
        Return the number of activities in the window (recurring) or to date (one-time) instead of
        a yes/no.

    Examples
    --------
    >>> rows = pd.DataFrame({"account_id": ["A"] * 6, "cs_qbr_count": [0, 1, 1, 1, 1, 2]})
    >>> exposure(rows, "qbr", "recurring", exposure_months=3).tolist()
    [False, True, True, True, False, True]
    >>> exposure(rows, "qbr", "one_time").tolist()
    [False, True, True, True, True, True]
    """
    if kind not in EXPOSURE_TYPES:
        raise ValueError(f"kind must be one of {EXPOSURE_TYPES}, not {kind!r}")
    if exposure_months < 1:
        raise ValueError("exposure_months must be at least 1")
    column = f"cs_{programme}_count"
    if column not in rows:
        raise ValueError(f"no activities of type {programme!r}")
    count = rows[column].astype(float).fillna(0)
    if kind == "recurring":
        count = count - _count_months_before(rows, count, exposure_months)
    return count.astype(int) if dose else count.gt(0)


def _count_months_before(rows: pd.DataFrame, count: pd.Series, months: int) -> pd.Series:
    """Each row's cumulative count as it stood ``months`` months earlier (0 before any row).

    By calendar month when ``rows`` has ``observation_date`` (an account's months need not be
    consecutive: it may have paused), else by position within the account.
    """
    if "observation_date" not in rows:
        return count.groupby(rows["account_id"], sort=False).shift(months, fill_value=0.0)
    dates = pd.DatetimeIndex(rows["observation_date"])
    month = pd.Series(dates.year * 12 + dates.month, index=rows.index)
    table = pd.DataFrame({"account_id": rows["account_id"], "m": month, "count": count})
    query = pd.DataFrame({"account_id": rows["account_id"], "m": month - months, "row": np.arange(len(rows))})
    found = pd.merge_asof(query.sort_values("m"), table.sort_values("m"), on="m", by="account_id", direction="backward")
    before = found.sort_values("row")["count"].fillna(0.0).to_numpy()
    return pd.Series(before, index=rows.index)
