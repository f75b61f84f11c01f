"""CS cost, revenue and coverage over dated windows, committed outcomes, and the efficiency ratios.

The money side of notebook ``03_cs_roi``: :func:`cost_window` and :func:`cs_cost` (from the
``cs_costs`` table, CSM salaries or activity hours), :func:`revenue`, :func:`coverage` per CSM,
:func:`outcome_attainment`, and :func:`efficiency_ratios`, each printed with its formula.

Examples
--------
>>> [str(d.date()) for d in cost_window("2025-12-31", 12)]
['2025-01-01', '2025-12-01']
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cslab.data.months import month_of
from cslab.data.panel import active_in_month

__all__ = [
    "cs_cost",
    "revenue",
    "coverage",
    "outcome_attainment",
    "monthly_cs_cost",
    "efficiency_ratios",
    "cost_window",
    "account_hours_cost",
]


def cs_cost(data, start, end, hourly_cost: float = 0.0, annual_cost_per_csm: float = 0.0) -> dict:
    """What customer success cost in the months after ``start`` up to ``end``.

    Total cost, from the best source present: the ``cs_costs`` table (what was spent), else
    ``annual_cost_per_csm`` x the CSMs named in ``accounts.csm_id`` x the window's share of a year,
    else activity hours x ``hourly_cost`` (which misses time not logged as an activity). The cost of
    each programme is always its activities' hours x ``hourly_cost`` (when hours are recorded).

    Returns
    -------
    dict
        ``total``, ``source`` (in words), ``by_programme`` (Series), ``hours`` (Series),
        ``csm_headcount`` (or None).

    Examples
    --------
    >>> cs_cost(data, "2024-12-31", "2025-12-31", hourly_cost=75)["total"]  # doctest: +SKIP
    """
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    activities = data.cs_activities
    if activities is not None and "hours" in activities:
        inside = activities[(activities["date"] > start) & (activities["date"] <= end)]
        hours = inside.groupby("activity_type")["hours"].sum()
    else:
        hours = pd.Series(dtype=float)
    by_programme = hours * hourly_cost
    months = (end.year - start.year) * 12 + end.month - start.month
    headcount = None
    accounts = data.accounts
    if accounts is not None and "csm_id" in accounts:
        headcount = int(accounts["csm_id"].nunique())
    costs = getattr(data, "cs_costs", None)
    if costs is not None and len(costs):
        month = costs["month"].dt.to_period("M").dt.to_timestamp()
        inside = costs[(month > month_of(start)) & (month <= month_of(end))]
        total, source = float(inside["cost"].sum()), "the cs_costs table"
        if "csm_headcount" in inside and inside["csm_headcount"].notna().any():
            headcount = int(round(inside["csm_headcount"].mean()))
    elif annual_cost_per_csm and headcount:
        total = annual_cost_per_csm * headcount * months / 12
        source = f"{headcount} CSMs x {annual_cost_per_csm:,.0f} a year"
    else:
        total, source = float(by_programme.sum()), "activity hours x the hourly cost"
    return {
        "total": total,
        "source": source,
        "by_programme": by_programme,
        "hours": hours,
        "csm_headcount": headcount,
        "months": months,
    }


def revenue(panel: pd.DataFrame, start, end) -> float:
    """Recurring revenue billed in the months after ``start`` up to ``end`` (sum of monthly MRR)."""
    start, end = month_of(start), month_of(end)
    inside = panel[(panel["month"] > start) & (panel["month"] <= end)]
    return float(inside["mrr"].sum())


def coverage(panel: pd.DataFrame) -> pd.DataFrame:
    """Active accounts and ARR per CSM in the panel's last month (accounts without a CSM as "(none)").

    Examples
    --------
    >>> coverage(panel).head()  # doctest: +SKIP
    """
    last = active_in_month(panel)
    csm = (
        last["csm_id"].astype(object).where(last["csm_id"].notna(), "(none)")
        if "csm_id" in last
        else pd.Series("(none)", index=last.index)
    )
    out = last.groupby(csm).agg(accounts=("account_id", "size"), arr=("mrr", lambda m: 12 * m.sum()))
    out.index.name = "csm_id"
    return out.sort_values("arr", ascending=False)


# ------------------------------------------------------------------------------------------------
# Required outcomes
# ------------------------------------------------------------------------------------------------
def outcome_attainment(data, panel: pd.DataFrame, as_of=None) -> dict:
    """How often customers reach the outcomes they committed to, how fast, and the ARR on them.

    * attainment rate = outcomes achieved by ``as_of`` / outcomes due by ``as_of`` (target date
      passed; without target dates, all committed ones);
    * time to first achieved outcome: Kaplan–Meier from an account's first commitment to its first
      achievement, censored at ``as_of`` (lifelines), as a median in months;
    * share of ARR on active accounts with at least one achieved outcome.

    Examples
    --------
    >>> outcome_attainment(data, panel)["attainment_rate"]  # doctest: +SKIP
    """
    from lifelines import KaplanMeierFitter

    as_of = pd.Timestamp(as_of) if as_of is not None else panel.attrs.get("as_of", panel["month"].max())
    outcomes = data.outcomes
    outcomes = outcomes[outcomes["committed_date"] <= as_of]
    achieved = (
        outcomes["achieved_date"].notna() & (outcomes["achieved_date"] <= as_of)
        if "achieved_date" in outcomes
        else pd.Series(False, index=outcomes.index)
    )
    due = (
        outcomes["target_date"].fillna(as_of) <= as_of
        if "target_date" in outcomes
        else pd.Series(True, index=outcomes.index)
    )
    per_account = (
        pd.DataFrame(
            {
                "account_id": outcomes["account_id"],
                "committed": outcomes["committed_date"],
                "achieved": outcomes["achieved_date"].where(achieved),
            }
        )
        .groupby("account_id")
        .min()
    )
    reached = per_account["achieved"].notna()
    months = ((per_account["achieved"].where(reached, as_of) - per_account["committed"]).dt.days / 30.4375).clip(
        lower=0
    )
    fitter = KaplanMeierFitter().fit(months, reached.astype(int), label="first achieved outcome")
    median = float(fitter.median_survival_time_)
    last = active_in_month(panel)
    with_outcome = last["account_id"].isin(outcomes.loc[achieved, "account_id"])
    return {
        "attainment_rate": float(achieved[due].mean()) if due.any() else float("nan"),
        "n_due": int(due.sum()),
        "n_achieved": int((achieved & due).sum()),
        "median_months_to_first": median if np.isfinite(median) else None,
        "time_to_first": fitter,
        "arr_share_with_outcome": float(last.loc[with_outcome, "mrr"].sum() / last["mrr"].sum())
        if len(last)
        else float("nan"),
    }


# ------------------------------------------------------------------------------------------------
# ROI of the deliveries of one window: estimate, percentile interval, replicate table
# ------------------------------------------------------------------------------------------------
def monthly_cs_cost(data, months, hourly_cost: float = 0.0, annual_cost_per_csm: float = 0.0) -> pd.Series:
    """CS cost of each month (first-of-month index), from the best source present (as
    :func:`cs_cost`): the ``cs_costs`` table, else CSMs × ``annual_cost_per_csm`` / 12, else activity
    hours × ``hourly_cost``. Months the source does not cover are missing (NaN), not zero.

    Examples
    --------
    >>> monthly_cs_cost(data, panel["month"].unique())  # doctest: +SKIP
    """
    index = pd.DatetimeIndex(sorted(pd.to_datetime(pd.Series(months)).dt.to_period("M").dt.to_timestamp().unique()))
    costs = getattr(data, "cs_costs", None)
    if costs is not None and len(costs):
        month = costs["month"].dt.to_period("M").dt.to_timestamp()
        return costs.groupby(month)["cost"].sum().reindex(index)
    accounts = data.accounts
    if annual_cost_per_csm and accounts is not None and "csm_id" in accounts and accounts["csm_id"].notna().any():
        return pd.Series(annual_cost_per_csm * accounts["csm_id"].nunique() / 12, index=index)
    activities = data.cs_activities
    if activities is not None and "hours" in activities and hourly_cost:
        month = activities["date"].dt.to_period("M").dt.to_timestamp()
        spent = (activities["hours"] * hourly_cost).groupby(month).sum()
        first = month.min()
        return spent.reindex(index).where(index >= first).fillna(0.0).where(index >= first)
    return pd.Series(np.nan, index=index)


def efficiency_ratios(
    panel: pd.DataFrame, monthly_cost: pd.Series, *, months: int = 12, cost_lag_months: int = 3
) -> dict:
    """Two ratios of what CS spending goes with, each with its formula (neither is an effect).

    * **CS efficiency ratio** = ARR the customers of ``months`` ago pay now (retained and expanded:
      NRR × their starting ARR) / CS cost of ``months`` months ending ``cost_lag_months`` before the
      end month (spending comes before the revenue it may keep).
    * **SaaS magic number, on CS cost** = (recurring revenue of the last quarter − of the quarter
      before) × 4 / CS cost of the quarter before: the usual form, with CS cost where the original
      has sales and marketing. Only where both quarters of revenue and the earlier quarter's cost
      exist.

    Returns
    -------
    dict
        ``cs_efficiency_ratio``, ``retained_expanded_arr``, ``efficiency_cost``,
        ``efficiency_cost_window``, ``saas_magic_number``, ``quarter``, ``quarter_revenue``,
        ``previous_quarter_revenue``, ``previous_quarter_cost``, ``formulas`` (in words), ``notes``.

    Examples
    --------
    >>> efficiency_ratios(panel, monthly_cs_cost(data, panel["month"]))["cs_efficiency_ratio"]  # doctest: +SKIP
    """
    from cslab.metrics import revenue_retention

    out = {
        "formulas": {
            "cs_efficiency_ratio": f"ARR now of the customers of {months} months ago (NRR x their starting ARR) / "
            f"CS cost of the {months} months ending {cost_lag_months} months earlier",
            "saas_magic_number": "(recurring revenue of the last quarter - of the quarter before) x 4 / "
            "CS cost of the quarter before",
        },
        "notes": [],
    }
    end = pd.Timestamp(panel["month"].max()).to_period("M")
    cost = monthly_cost.copy()
    cost.index = pd.DatetimeIndex(cost.index).to_period("M")
    try:
        kept = revenue_retention(panel, months=months)
        arr = 12 * kept["start_mrr"] * kept["nrr"]
    except ValueError as error:
        arr = None
        out["notes"].append(f"no efficiency ratio: {error}")
    last = end - cost_lag_months
    window = pd.period_range(last - months + 1, last, freq="M")
    spent = cost.reindex(window)
    out.update(
        retained_expanded_arr=arr,
        efficiency_cost_window=f"{window[0]} to {window[-1]}",
        efficiency_cost=float(spent.sum()) if spent.notna().all() else None,
    )
    if arr is not None and out["efficiency_cost"]:
        out["cs_efficiency_ratio"] = arr / out["efficiency_cost"]
    else:
        out["cs_efficiency_ratio"] = None
        if arr is not None:
            out["notes"].append(f"no efficiency ratio: the CS cost of {window[0]} to {window[-1]} is not in the data")
    # quarters: the last three complete months and the three before
    revenue_by_month = panel.groupby(panel["month"].dt.to_period("M"))["mrr"].sum()
    quarter = pd.period_range(end - 2, end, freq="M")
    before = pd.period_range(end - 5, end - 3, freq="M")
    have = revenue_by_month.reindex(quarter.append(before)).notna().all()
    q_cost = cost.reindex(before)
    if have and q_cost.notna().all() and q_cost.sum() > 0:
        rev_q, rev_b = float(revenue_by_month.reindex(quarter).sum()), float(revenue_by_month.reindex(before).sum())
        out.update(
            saas_magic_number=(rev_q - rev_b) * 4 / float(q_cost.sum()),
            quarter=f"{quarter[0]} to {quarter[-1]}",
            quarter_revenue=rev_q,
            previous_quarter_revenue=rev_b,
            previous_quarter_cost=float(q_cost.sum()),
        )
    else:
        out["saas_magic_number"] = None
        out["notes"].append("no SaaS magic number: it needs two quarters of revenue and the earlier quarter's CS cost")
    return out


def cost_window(as_of, months: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last calendar month (first-of-month) of the ``months`` months up to ``as_of``'s month.

    Examples
    --------
    >>> cost_window("2025-12-31", 12)
    (Timestamp('2025-01-01 00:00:00'), Timestamp('2025-12-01 00:00:00'))
    """
    end = pd.Timestamp(as_of).to_period("M")
    return (end - months + 1).to_timestamp(), end.to_timestamp()


def account_hours_cost(data, account_ids, start, end, hourly_cost: float) -> np.ndarray:
    """Activity hours × ``hourly_cost`` of each account (in ``account_ids`` order) in the calendar
    months ``start`` to ``end``: the cost the bootstrap resamples when cost comes from hours."""
    acts = data.cs_activities
    if acts is None or "hours" not in acts:
        return np.zeros(len(account_ids))
    month = acts["date"].dt.to_period("M").dt.to_timestamp()
    inside = acts[(month >= pd.Timestamp(start)) & (month <= pd.Timestamp(end))]
    spent = inside.groupby("account_id")["hours"].sum() * hourly_cost
    return spent.reindex(account_ids).fillna(0.0).to_numpy(float)
