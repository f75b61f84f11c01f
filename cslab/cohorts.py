"""Signup cohort tables: logo or revenue retention by cohort and age.

Examples
--------
>>> table = cohort_table(cslab.panel(cslab.load("data/demo")), period="Q")  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cslab.data.panel import month_index

__all__ = ["cohort_table"]


def cohort_table(
    panel: pd.DataFrame, period: str = "M", kind: str = "logo", values: str = "pct", min_cohort_size: int = 0
) -> pd.DataFrame:
    """Signup cohorts as rows, age in periods as columns: logo or (net) revenue retention.

    A cohort is the customers whose first payment (``cohort_month``) fell in the same month or
    quarter. Age k of a monthly cohort is measured at the month k months after the signup month
    (each customer then has exactly k months of tenure). Age q of a quarterly cohort is measured
    at the **last month of the quarter q quarters after the signup quarter** (age 0 = the end of
    the signup quarter): calendar quarters, as in finance reports, so a quarter that has not ended
    by the panel's last month is not reached; customers who signed up early in a quarter have a
    little more tenure at each age than late ones.

    * logo: customers of the cohort active at that age (a reactivated customer counts again);
    * revenue: the cohort's MRR at that age — net, so it passes 100% when expansion outweighs
      churn;
    * ``values="pct"`` divides by the cohort's start: its size (logo) or the sum of its customers'
      first-month MRR (revenue). For monthly cohorts that is age 0; a quarterly cohort's age 0 can
      be below 100% (customers who left within their signup quarter) or, for revenue, above.

    Ages not reached yet by the panel's last month are NaN (the blank lower-right triangle),
    never 0.

    Parameters
    ----------
    panel : DataFrame
        The monthly account panel.
    period : {"M", "Q"}
        Cohorts and ages by month or by calendar quarter.
    kind : {"logo", "revenue"}
    values : {"pct", "count"}
        "count" gives customers (logo) or MRR (revenue).
    min_cohort_size : int
        Cohorts with fewer customers are dropped.

    Returns
    -------
    DataFrame
        Index ``cohort`` (labels such as ``"2024-03"`` or ``"2024Q1"``, in time order), columns the
        ages 0, 1, ... ``attrs``: ``dropped_cohorts`` (labels dropped for size), ``cohort_sizes``
        (every cohort's customers) and ``cohort_start`` (the "pct" denominators).

    Examples
    --------
    >>> cohort_table(panel, period="Q", kind="revenue").iloc[:3, :5]  # doctest: +SKIP
    """
    if period not in {"M", "Q"} or kind not in {"logo", "revenue"} or values not in {"pct", "count"}:
        raise ValueError("period must be 'M' or 'Q', kind 'logo' or 'revenue', values 'pct' or 'count'")
    paid = panel[panel["tenure_months"].notna()]  # from each account's first paid month on
    if paid.empty:
        raise ValueError("no account in the panel ever paid: there are no cohorts")
    label = pd.PeriodIndex(paid["cohort_month"], freq=period).astype(str)
    m, first = month_index(paid["month"]), month_index(paid["cohort_month"])
    last = month_index([panel["month"].max()])[0]
    if period == "Q":
        at_age = m % 3 == 2  # the last month of a calendar quarter
        age = m // 3 - first // 3
        reached = (last + 1) // 3 - 1  # the last quarter that has ended, as a quarter number
        cohort_last_age = pd.Series(reached - first // 3).groupby(label).max()
    else:
        at_age = np.ones(len(paid), dtype=bool)
        age = m - first
        cohort_last_age = pd.Series(last - first).groupby(label).max()

    first_month = m == first
    sizes = pd.Series(paid["account_id"].to_numpy()[first_month]).groupby(label[first_month]).nunique()
    start = (
        sizes if kind == "logo" else pd.Series(paid["mrr"].to_numpy()[first_month]).groupby(label[first_month]).sum()
    )
    measure = (paid["active"] if kind == "logo" else paid["mrr"]).to_numpy(dtype=float)
    cells = pd.Series(measure[at_age]).groupby([label[at_age], age[at_age]]).sum()
    cohorts = pd.Index(sorted(sizes.index), name="cohort")
    ages = np.arange(max(int(cohort_last_age.max()), 0) + 1)
    table = cells.unstack(fill_value=0.0).reindex(index=cohorts, columns=ages, fill_value=0.0)
    reached_ages = cohort_last_age.reindex(cohorts).to_numpy()[:, None]
    table = table.where(ages[None, :] <= reached_ages)  # not reached yet: NaN, never 0
    if values == "pct":
        table = table.div(start.reindex(cohorts), axis=0)
    keep = (sizes.reindex(cohorts) >= min_cohort_size).to_numpy()
    table = table[keep]
    table.columns.name = "quarters since signup quarter" if period == "Q" else "months since first payment"
    table.attrs.update(
        dropped_cohorts=cohorts[~keep].tolist(),
        cohort_sizes={k: int(v) for k, v in sizes.items()},
        cohort_start={k: float(v) for k, v in start.items()},
    )
    return table
