"""Revenue and logo metrics on the monthly account panel.

Every function takes the panel of :func:`cslab.panel` and returns numbers or tables; none reads
files or draws.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["book_summary", "format_book_summary"]


def book_summary(panel: pd.DataFrame) -> dict:
    """The book at a glance: accounts, active accounts and MRR at the last month, churn per year.

    Parameters
    ----------
    panel : DataFrame
        The monthly account panel.

    Returns
    -------
    dict
        ``n_accounts`` (accounts that ever paid), ``n_active`` and ``mrr_end`` (in the last month),
        ``first_month``, ``last_month``, and ``by_year``: a DataFrame indexed by calendar year with
        ``new``, ``churned`` and ``reactivated`` account counts and ``mrr_end``.

    Examples
    --------
    >>> s = book_summary(cslab.panel(cslab.load("data/demo")))  # doctest: +SKIP
    >>> s["n_active"], round(s["mrr_end"])  # doctest: +SKIP
    """
    last = panel["month"].max()
    at_end = panel[panel["month"].eq(last)]
    year = panel["month"].dt.year
    counts = pd.crosstab(year, panel["movement"]).reindex(
        columns=["new", "churn", "reactivation"], fill_value=0
    ).rename(columns={"churn": "churned", "reactivation": "reactivated"})
    year_end_mrr = panel[panel["month"].eq(panel.groupby(year)["month"].transform("max"))]
    counts["mrr_end"] = year_end_mrr.groupby(year_end_mrr["month"].dt.year)["mrr"].sum()
    counts.index.name = "year"
    return {
        "n_accounts": int(panel.loc[panel["active"], "account_id"].nunique()),
        "n_active": int(at_end["active"].sum()),
        "mrr_end": float(at_end["mrr"].sum()),
        "first_month": panel["month"].min(),
        "last_month": last,
        "by_year": counts,
    }


def format_book_summary(summary: dict, source: str = "") -> str:
    """The summary as a few lines of text for the command line."""
    lines = [
        f"{source}: {summary['first_month']:%Y-%m} to {summary['last_month']:%Y-%m}",
        f"accounts (ever paid): {summary['n_accounts']:,}",
        f"active accounts in {summary['last_month']:%Y-%m}: {summary['n_active']:,}",
        f"MRR in {summary['last_month']:%Y-%m}: {summary['mrr_end']:,.0f}",
        "year    new  churned  reactivated  MRR at year end",
    ]
    for year, row in summary["by_year"].iterrows():
        lines.append(f"{year}  {int(row['new']):5,d}  {int(row['churned']):7,d}"
                     f"  {int(row['reactivated']):11,d}  {row['mrr_end']:15,.0f}")
    return "\n".join(lines)
