"""Seat utilisation and capacity: how full each account's seats are, and who must buy before growing.

* :func:`at_capacity`: utilisation (active users / seats) of each account active on the analysis
  date, and whether it is at capacity;
* :func:`seat_utilisation`: its distribution by group.

Analyses only: nothing here reads files, draws or prints. :mod:`cslab.expansion` re-exports both.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cslab.data.months import analysis_month
from cslab.data.panel import label_missing
from cslab.data.roles import usage_column

__all__ = ["at_capacity", "seat_utilisation", "CAPACITY_THRESHOLD"]

#: Accounts whose utilisation (active users / seats) reaches this share are "at capacity". At 0.9 a
#: ten-seat team has at most one seat free: seats come in whole units, so small teams cannot get
#: closer without being full, and a team that fills nine seats in ten has to buy before it grows.
CAPACITY_THRESHOLD = 0.9


_month_of = analysis_month  # the kit's one as_of convention (cslab.data.months)


def at_capacity(panel_or_scoring: pd.DataFrame, *, as_of=None, threshold: float = CAPACITY_THRESHOLD) -> pd.DataFrame:
    """Seat utilisation of each account active on ``as_of``, and whether it is at capacity.

    Utilisation = active users / seats, as :mod:`cslab.features` computes ``seat_utilisation``:
    the month's mean of the metric in the ``active_users`` role (:mod:`cslab.data.roles`: WAU, MAU,
    active seats...) over the seats at the month-end snapshot.
    It can exceed 1 when seats are shared.

    Parameters
    ----------
    panel_or_scoring : DataFrame
        The monthly panel (the accounts active in the month of ``as_of``) or a scoring set of
        :func:`cslab.features.build_dataset` (its rows observed in that month).
    as_of : date, optional
        Default: the panel's last month, or the scoring set's latest observation date.
    threshold : float, default ``CAPACITY_THRESHOLD`` (0.9)
        At capacity when utilisation >= threshold (see :data:`CAPACITY_THRESHOLD` for why 0.9).

    Returns
    -------
    DataFrame
        ``account_id``, ``segment`` (when known), ``seats``, ``active_users``, ``seat_utilisation``
        and ``at_capacity`` (nullable boolean: missing where seats or active users are unknown).

    Examples
    --------
    >>> at_capacity(panel)["at_capacity"].mean()  # doctest: +SKIP
    """
    month = _month_of(panel_or_scoring, as_of)
    frame = panel_or_scoring
    if "month" in frame and "active" in frame:  # the panel
        rows = frame[frame["month"].eq(month) & frame["active"]]
        seats = rows["seats"].astype(float).where(rows["seats"] > 0)
        column = usage_column(frame, "active_users")
        users = rows[column].astype(float) if column is not None else np.nan * seats
        utilisation = users / seats
    else:  # a scoring set: utilisation is a feature already
        rows = frame[frame["observation_date"].dt.to_period("M").dt.to_timestamp().eq(month)]
        seats = (
            rows["seats"].astype(float).where(rows["seats"] > 0)
            if "seats" in rows
            else pd.Series(np.nan, index=rows.index)
        )
        utilisation = rows["seat_utilisation"].astype(float) if "seat_utilisation" in rows else np.nan * seats
        users = utilisation * seats
    out = rows[["account_id"] + (["segment"] if "segment" in rows else [])].copy()
    out["seats"] = seats.to_numpy()
    out["active_users"] = np.asarray(users, float)
    out["seat_utilisation"] = np.asarray(utilisation, float)
    full = pd.array(out["seat_utilisation"] >= threshold, dtype="boolean")
    full[out["seat_utilisation"].isna().to_numpy()] = pd.NA
    out["at_capacity"] = full
    return out.reset_index(drop=True)


def seat_utilisation(
    panel_or_scoring: pd.DataFrame, *, as_of=None, by: str | None = "segment", threshold: float = CAPACITY_THRESHOLD
) -> pd.DataFrame:
    """Distribution of seat utilisation among the accounts active on ``as_of``, by group.

    Parameters
    ----------
    panel_or_scoring : DataFrame
        The monthly panel or a scoring set (see :func:`at_capacity`).
    as_of : date, optional
        Default: the latest month.
    by : str or None, default "segment"
        Account column to group by (missing values form "(missing)"); None: one row for all.
    threshold : float, default 0.9
        At capacity when utilisation >= threshold.

    Returns
    -------
    DataFrame
        Indexed by group, with a last row ``all``: ``n_accounts``, ``n_measured`` (with seats and
        active users), ``mean``, ``p10``, ``p25``, ``median``, ``p75``, ``p90``, ``n_at_capacity``
        and ``share_at_capacity`` (of the measured accounts).

    Examples
    --------
    >>> seat_utilisation(panel).loc["all", "share_at_capacity"]  # doctest: +SKIP
    """
    accounts = at_capacity(panel_or_scoring, as_of=as_of, threshold=threshold)
    if by is not None and by not in accounts:
        source = panel_or_scoring
        month = _month_of(source, as_of)
        rows = source[source["month"].eq(month)] if "month" in source else source
        if by not in rows:
            raise ValueError(f"by={by!r} is not a column of the data")
        attribute = rows.drop_duplicates("account_id").set_index("account_id")[by]
        accounts[by] = accounts["account_id"].map(attribute)

    def describe(frame: pd.DataFrame) -> dict:
        values = frame["seat_utilisation"].dropna()
        q = values.quantile([0.1, 0.25, 0.5, 0.75, 0.9]).to_numpy() if len(values) else [np.nan] * 5
        full = int(frame["at_capacity"].sum())
        return {
            "n_accounts": len(frame),
            "n_measured": len(values),
            "mean": values.mean(),
            "p10": q[0],
            "p25": q[1],
            "median": q[2],
            "p75": q[3],
            "p90": q[4],
            "n_at_capacity": full,
            "share_at_capacity": full / len(values) if len(values) else np.nan,
        }

    rows = {}
    if by is not None:
        groups = label_missing(accounts[by])
        rows = {group: describe(frame) for group, frame in accounts.groupby(groups, sort=True)}
    rows["all"] = describe(accounts)
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = by or "group"
    return table
