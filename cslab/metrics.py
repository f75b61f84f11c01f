"""Revenue and logo metrics on the monthly account panel.

Every function takes the panel of :func:`cslab.panel` and returns numbers or tables; none reads
files or draws.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["book_summary", "format_book_summary", "mrr_movements", "mrr_bridge", "logo_churn_rate",
           "revenue_churn", "revenue_retention", "retention_over_time", "cohort_table"]


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


# ------------------------------------------------------------------------------------------------
# MRR movements and the bridge
# ------------------------------------------------------------------------------------------------
GAINS = ("new", "expansion", "reactivation")
LOSSES = ("contraction", "churn")


def mrr_movements(panel: pd.DataFrame) -> pd.DataFrame:
    """MRR movements by month, as positive amounts, with the start and end MRR of each month.

    The bridge identity holds every month:
    start MRR + new + expansion − contraction − churn + reactivation = end MRR.

    Returns
    -------
    DataFrame
        One row per month: ``start_mrr``, ``new``, ``expansion``, ``contraction``, ``churn``,
        ``reactivation``, ``end_mrr``, ``net_new_mrr``, account counts ``n_<movement>``,
        ``active_start`` and ``active_end``.

    Examples
    --------
    >>> movements = mrr_movements(cslab.panel(cslab.load("data/demo")))  # doctest: +SKIP
    """
    amounts = panel.pivot_table(index="month", columns="movement", values="movement_mrr",
                                aggfunc="sum", fill_value=0.0).abs()
    counts = panel.pivot_table(index="month", columns="movement", values="account_id",
                               aggfunc="size", fill_value=0)
    months = pd.Index(sorted(panel["month"].unique()), name="month")
    out = pd.DataFrame(index=months)
    totals = panel.groupby("month")["mrr"].sum().reindex(months, fill_value=0.0)
    active = panel.groupby("month")["active"].sum().reindex(months, fill_value=0)
    out["start_mrr"] = totals.shift(1, fill_value=0.0)
    for name in GAINS[:2] + LOSSES + GAINS[2:]:
        out[name] = amounts[name].reindex(months, fill_value=0.0) if name in amounts else 0.0
    out["end_mrr"] = totals
    out["net_new_mrr"] = out["new"] + out["expansion"] + out["reactivation"] - out["contraction"] - out["churn"]
    for name in GAINS + LOSSES:
        out[f"n_{name}"] = counts[name].reindex(months, fill_value=0) if name in counts else 0
    out["active_start"] = active.shift(1, fill_value=0).astype(int)
    out["active_end"] = active.astype(int)
    return out.reset_index()


def _window(panel: pd.DataFrame, months: int, as_of=None) -> tuple[pd.Timestamp, pd.Timestamp]:
    end = panel["month"].max() if as_of is None else pd.Timestamp(as_of).to_period("M").to_timestamp()
    return end - pd.DateOffset(months=months), end


def mrr_bridge(panel: pd.DataFrame, start=None, end=None) -> pd.DataFrame:
    """Waterfall from the MRR of month ``start`` through each movement to the MRR of month ``end``.

    Movements are those of the months after ``start`` up to ``end``; losses are negative.

    Returns
    -------
    DataFrame
        ``step`` (start, new, expansion, reactivation, contraction, churn, end) and ``amount``.

    Examples
    --------
    >>> mrr_bridge(panel, start="2024-12-01", end="2025-12-01")  # doctest: +SKIP
    """
    movements = mrr_movements(panel).set_index("month")
    start = movements.index.min() if start is None else pd.Timestamp(start)
    end = movements.index.max() if end is None else pd.Timestamp(end)
    inside = movements.loc[(movements.index > start) & (movements.index <= end)]
    start_mrr = movements["end_mrr"].get(start, 0.0)
    steps = [("start", start_mrr)] + [(g, inside[g].sum()) for g in GAINS] + \
            [(loss, -inside[loss].sum()) for loss in LOSSES] + [("end", movements["end_mrr"].get(end, 0.0))]
    return pd.DataFrame(steps, columns=["step", "amount"])


def logo_churn_rate(panel: pd.DataFrame, months: int = 12, as_of=None) -> dict:
    """Monthly logo churn pooled over a window, and its annual equivalent.

    monthly = churned accounts in the window / Σ accounts active at the start of each month;
    annual = 1 − (1 − monthly)^12.

    Examples
    --------
    >>> logo_churn_rate(panel, months=12)  # doctest: +SKIP
    {'monthly': 0.021, 'annual': 0.225, 'churned': 512, 'exposure': 24310}
    """
    start, end = _window(panel, months, as_of)
    movements = mrr_movements(panel)
    inside = movements[(movements["month"] > start) & (movements["month"] <= end)]
    exposure = int(inside["active_start"].sum())
    churned = int(inside["n_churn"].sum())
    monthly = churned / exposure if exposure else float("nan")
    return {"monthly": monthly, "annual": 1 - (1 - monthly) ** 12, "churned": churned,
            "exposure": exposure}


def revenue_churn(panel: pd.DataFrame, months: int = 12, as_of=None) -> dict:
    """Gross and net MRR churn rates, monthly (pooled over a window) and annualised.

    ChartMogul's B2B definitions: gross MRR churn = (churn + contraction) / start MRR; net MRR churn
    = (churn + contraction − expansion − reactivation) / start MRR (negative: the base grows on
    its own). Pooled: sums over the window divided by the sum of each month's start MRR.
    """
    start, end = _window(panel, months, as_of)
    movements = mrr_movements(panel)
    inside = movements[(movements["month"] > start) & (movements["month"] <= end)]
    base = inside["start_mrr"].sum()
    lost = inside["churn"].sum() + inside["contraction"].sum()
    gained = inside["expansion"].sum() + inside["reactivation"].sum()
    gross = float(lost / base) if base else float("nan")
    net = float((lost - gained) / base) if base else float("nan")
    return {"gross_monthly": gross, "net_monthly": net, "gross_annual": 1 - (1 - gross) ** 12,
            "net_annual": 1 - (1 - net) ** 12}


# ------------------------------------------------------------------------------------------------
# Revenue retention on the trailing starting-cohort basis
# ------------------------------------------------------------------------------------------------
def _matrices(panel: pd.DataFrame) -> tuple[pd.Index, pd.DatetimeIndex, np.ndarray, dict[str, np.ndarray]]:
    """Account x month matrices of MRR and of each movement's amount (absolute)."""
    accounts = pd.Index(panel["account_id"].unique())
    months = pd.DatetimeIndex(sorted(panel["month"].unique()))
    rows = accounts.get_indexer(panel["account_id"])
    cols = months.get_indexer(panel["month"])
    mrr = np.zeros((len(accounts), len(months)))
    mrr[rows, cols] = panel["mrr"].to_numpy()
    moves = {}
    for name in GAINS + LOSSES:
        matrix = np.zeros_like(mrr)
        hit = panel["movement"].eq(name).to_numpy()
        matrix[rows[hit], cols[hit]] = np.abs(panel["movement_mrr"].to_numpy()[hit])
        moves[name] = matrix
    return accounts, months, mrr, moves


def _retention_at(mrr, moves, start: int, end: int, members: np.ndarray) -> dict:
    base_each = mrr[members, start]
    base = base_each.sum()
    now = mrr[members, end]
    sums = {name: m[members, start + 1:end + 1].sum() for name, m in moves.items()}
    # a cohort member that returns after the reactivation window is "new" again: for the cohort
    # it is a returning customer, counted with reactivation
    react = sums["reactivation"] + sums["new"]
    rate = (lambda x: float(x / base)) if base else (lambda x: float("nan"))
    return {
        "nrr": rate(now.sum()), "grr": rate(np.minimum(now, base_each).sum()),
        "expansion_rate": rate(sums["expansion"]), "contraction_rate": rate(sums["contraction"]),
        "churn_rate": rate(sums["churn"]), "reactivation_rate": rate(react),
        "headwind": rate(sums["churn"] + sums["contraction"]), "tailwind": rate(sums["expansion"]),
        "start_mrr": float(base), "n_accounts": int(members.sum()),
    }


def revenue_retention(panel: pd.DataFrame, months: int = 12, as_of=None) -> dict:
    """NRR, GRR and their parts on the trailing starting-cohort basis.

    The cohort is every account active ``months`` months before the last month (or ``as_of``);
    new accounts since are excluded (they have no starting revenue to retain).

    * NRR = their MRR now / their MRR then (reactivated members count);
    * GRR = Σ min(MRR now, MRR then) / MRR then: capped at 100% per account, so expansion of one
      account never offsets churn of another;
    * expansion, contraction, churn and reactivation rates = each movement summed over the cohort's
      months after the start, / MRR then; NRR = 1 + expansion − contraction − churn + reactivation;
    * Gainsight's headwind = churn + contraction rates, tailwind = expansion rate.

    GRR and 1 − headwind differ when an account contracts and re-expands within the window (the
    movements count both, the point-to-point GRR neither).

    Returns
    -------
    dict
        ``nrr``, ``grr``, ``headwind``, ``tailwind``, ``expansion_rate``, ``contraction_rate``,
        ``churn_rate``, ``reactivation_rate``, ``start_mrr``, ``n_accounts``, ``start_month``,
        ``end_month``.

    Examples
    --------
    >>> revenue_retention(panel)["nrr"]  # doctest: +SKIP
    1.043
    """
    start, end = _window(panel, months, as_of)
    _, month_index, mrr, moves = _matrices(panel)
    if start not in month_index:
        raise ValueError(f"no data {months} months before {end:%Y-%m}: revenue retention needs "
                         f"{months} months of history")
    s, e = month_index.get_loc(start), month_index.get_loc(end)
    out = _retention_at(mrr, moves, s, e, mrr[:, s] > 0)
    out.update(start_month=start, end_month=end)
    return out


def retention_over_time(panel: pd.DataFrame, months: int = 12, by: str | None = None) -> pd.DataFrame:
    """NRR, GRR and their parts at every month with ``months`` of history behind it.

    Parameters
    ----------
    by : str, optional
        An account attribute (e.g. ``segment``): one row per group and month, the group taken as
        in the cohort's start month.

    Returns
    -------
    DataFrame
        ``month`` (end of each window), ``start_month``, the rates of :func:`revenue_retention`
        and, with ``by``, the group column.
    """
    accounts, month_index, mrr, moves = _matrices(panel)
    if by is not None:
        groups = panel.drop_duplicates("account_id").set_index("account_id")[by].reindex(accounts)
        labels = groups.astype(object).where(groups.notna(), "(missing)").to_numpy()
    rows = []
    for e in range(months, len(month_index)):
        s = e - months
        members = mrr[:, s] > 0
        if by is None:
            rows.append({"month": month_index[e], "start_month": month_index[s],
                         **_retention_at(mrr, moves, s, e, members)})
        else:
            for label in sorted(set(labels[members])):
                rows.append({"month": month_index[e], "start_month": month_index[s], by: label,
                             **_retention_at(mrr, moves, s, e, members & (labels == label))})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------
# Cohort tables
# ------------------------------------------------------------------------------------------------
def cohort_table(panel: pd.DataFrame, period: str = "M", kind: str = "logo", values: str = "pct",
                 min_cohort_size: int = 0) -> pd.DataFrame:
    """Signup cohorts as rows, age in periods as columns: logo or (net) revenue retention.

    Age k is k periods after each customer's own first payment (so every cohort starts at 100%).
    Logo: customers of the cohort active at age k (a reactivated customer counts again); revenue:
    the cohort's MRR at age k — net, so it passes 100% when expansion outweighs churn. ``values``
    "pct" divides by the cohort's start (its size, or its first-month MRR). Ages that some member
    of a cohort has not reached yet are NaN (the blank lower-right triangle), never 0.

    Parameters
    ----------
    period : {"M", "Q"}
        Cohorts and ages by month or by quarter.
    kind : {"logo", "revenue"}
    values : {"pct", "count"}
        "count" gives customers (logo) or MRR (revenue).
    min_cohort_size : int
        Cohorts with fewer customers are dropped; ``table.attrs["dropped_cohorts"]`` lists them and
        ``table.attrs["cohort_sizes"]`` gives every cohort's size.

    Examples
    --------
    >>> cohort_table(panel, period="Q", kind="revenue").iloc[:3, :5]  # doctest: +SKIP
    """
    if period not in {"M", "Q"} or kind not in {"logo", "revenue"} or values not in {"pct", "count"}:
        raise ValueError("period must be M or Q, kind logo or revenue, values pct or count")
    p = 3 if period == "Q" else 1
    paid = panel[panel["tenure_months"].notna()].copy()
    paid["cohort"] = pd.PeriodIndex(paid["cohort_month"], freq=period).astype(str)
    tenure = paid["tenure_months"].astype(int)
    last_tenure = tenure.groupby(paid["account_id"]).transform("max")
    observed = (last_tenure // p).groupby(paid["cohort"]).min()
    at_age = paid[tenure % p == 0].assign(age=tenure[tenure % p == 0] // p)
    measure = at_age["active"].astype(float) if kind == "logo" else at_age["mrr"]
    table = measure.groupby([at_age["cohort"], at_age["age"]]).sum().unstack("age")
    sizes = paid.loc[tenure.eq(0)].groupby("cohort")["account_id"].nunique()
    start = sizes if kind == "logo" else paid.loc[tenure.eq(0)].groupby("cohort")["mrr"].sum()
    ages = np.arange(table.columns.max() + 1)
    table = table.reindex(columns=ages).fillna(0.0)
    table = table.where(ages[None, :] <= observed.reindex(table.index).to_numpy()[:, None])
    if values == "pct":
        table = table.div(start.reindex(table.index), axis=0)
    keep = sizes.reindex(table.index) >= min_cohort_size
    table = table[keep.to_numpy()]
    table.index.name = "cohort"
    table.columns.name = f"{'quarters' if p == 3 else 'months'} since first payment"
    table.attrs["dropped_cohorts"] = sorted(keep[~keep].index.tolist())
    table.attrs["cohort_sizes"] = sizes.to_dict()
    return table
