"""Revenue and logo metrics on the monthly account panel: MRR movements, churn, NRR / GRR, cohorts.

Every function takes the panel of :func:`cslab.panel` (one row per account per month) and returns
numbers or tables; none reads files, draws or prints. The conventions are those of the panel (churn
at the end of the paid period, reactivation window, $0 accounts not active) plus one of this module:
revenue retention on the trailing-12-month *starting-cohort* basis (the accounts active 12 months ago,
followed to now; new accounts since are left out). :func:`metric_definitions` lists every formula in
plain words.

Examples
--------
>>> import cslab
>>> from cslab import metrics
>>> panel = cslab.panel(cslab.load("data/demo"))  # doctest: +SKIP
>>> metrics.revenue_retention(panel)["nrr"]  # doctest: +SKIP
0.912
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from cslab.data.months import analysis_month, month_index, month_of, month_start
from cslab.data.panel import label_missing
from cslab.errors import StatisticalWarning

__all__ = [
    "book_summary",
    "format_book_summary",
    "mrr_movements",
    "mrr_bridge",
    "logo_churn_rate",
    "revenue_churn",
    "revenue_retention",
    "retention_over_time",
    "quick_ratio",
    "cohort_table",
    "metric_definitions",
    "MOVEMENT_STEPS",
    "RATE_COLUMNS",
    "MIN_ACCOUNTS",
    "MIN_RATE_EVENTS",
]

#: The five MRR movements, in the order of the bridge identity.
MOVEMENT_STEPS = ("new", "expansion", "contraction", "churn", "reactivation")
GAINS = ("new", "expansion", "reactivation")
LOSSES = ("contraction", "churn")
#: Below these, a rate is reported with a :class:`~cslab.errors.StatisticalWarning`.
MIN_ACCOUNTS = 30
MIN_RATE_EVENTS = 5


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
    counts = (
        pd.crosstab(year, panel["movement"])
        .reindex(columns=["new", "churn", "reactivation"], fill_value=0)
        .rename(columns={"churn": "churned", "reactivation": "reactivated"})
    )
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
        lines.append(
            f"{year}  {int(row['new']):5,d}  {int(row['churned']):7,d}"
            f"  {int(row['reactivated']):11,d}  {row['mrr_end']:15,.0f}"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------
def _warn(message: str, stacklevel: int = 3) -> None:
    # stacklevel 3: the line of the user's call to the public function that warns
    warnings.warn(message, StatisticalWarning, stacklevel=stacklevel)


def _end_month(panel: pd.DataFrame, as_of=None) -> pd.Timestamp:
    """The month a trailing window ends in: the month of ``as_of``, else the panel's last month."""
    first, last = panel["month"].min(), panel["month"].max()
    end = analysis_month(panel, as_of)
    if not first <= end <= last:
        raise ValueError(f"as_of {end:%Y-%m} lies outside the panel ({first:%Y-%m} to {last:%Y-%m})")
    return end


def _in_window(movements: pd.DataFrame, months: int, as_of, panel: pd.DataFrame):
    """Rows of :func:`mrr_movements` for the ``months`` months up to the end month, and the window."""
    end = _end_month(panel, as_of)
    # the panel's first month has no month before it to measure from: windows start there at most
    start = max(end - pd.DateOffset(months=months), panel["month"].min())
    inside = movements[(movements["month"] > start) & (movements["month"] <= end)]
    if len(inside) < months:
        _warn(
            f"only {len(inside)} of the {months} months up to {end:%Y-%m} are in the panel: "
            "the rate is pooled over those",
            stacklevel=4,
        )
    return inside, start, end


# ------------------------------------------------------------------------------------------------
# MRR movements and the bridge
# ------------------------------------------------------------------------------------------------
def mrr_movements(panel: pd.DataFrame) -> pd.DataFrame:
    """MRR movements by month, as positive amounts, with the start and end MRR of each month.

    Each account-month of the panel carries one movement (``new``, ``expansion``, ``contraction``,
    ``churn``, ``reactivation``, ``flat`` or ``inactive``) and its signed change of MRR. Per month:

    * start MRR = total MRR of the previous month (0 before the first month);
    * new, expansion, contraction, churn, reactivation = the sum of the MRR changes of the
      accounts with that movement, as positive amounts (a churned account's whole MRR is churn);
    * end MRR = total MRR of the month;
    * net new MRR = new + expansion + reactivation − contraction − churn.

    So the bridge identity holds every month:
    start MRR + new + expansion − contraction − churn + reactivation = end MRR.

    Parameters
    ----------
    panel : DataFrame
        The monthly account panel (:func:`cslab.panel`), or rows of it for a group of accounts.

    Returns
    -------
    DataFrame
        One row per calendar month from the panel's first to its last: ``month``, ``start_mrr``,
        ``new``, ``expansion``, ``contraction``, ``churn``, ``reactivation``, ``end_mrr``,
        ``net_new_mrr``, account counts ``n_new``, ``n_expansion``, ``n_contraction``,
        ``n_churn``, ``n_reactivation``, and ``active_start`` / ``active_end`` (accounts active
        in the previous month / in the month).

    Examples
    --------
    >>> movements = mrr_movements(cslab.panel(cslab.load("data/demo")))  # doctest: +SKIP
    >>> movements[["month", "start_mrr", "new", "churn", "end_mrr"]].tail(1)  # doctest: +SKIP
    """
    months = pd.date_range(panel["month"].min(), panel["month"].max(), freq="MS", name="month")
    moving = panel[panel["movement"].isin(MOVEMENT_STEPS)]
    grouped = moving["movement_mrr"].abs().groupby([moving["month"], moving["movement"]])
    amounts = grouped.sum().unstack(fill_value=0.0).reindex(index=months, columns=list(MOVEMENT_STEPS), fill_value=0.0)
    counts = grouped.size().unstack(fill_value=0).reindex(index=months, columns=list(MOVEMENT_STEPS), fill_value=0)
    by_month = panel.groupby("month")
    # An account's MRR a month earlier is its MRR minus its signed movement; summed per month this
    # is the previous month's total, also on a panel cut to a later first month.
    previous = (panel["mrr"] - panel["movement_mrr"]).groupby(panel["month"]).sum()
    was_active = panel["movement"].isin(["expansion", "contraction", "flat", "churn"])
    out = pd.DataFrame(index=months)
    out["start_mrr"] = previous.reindex(months, fill_value=0.0)
    out[list(MOVEMENT_STEPS)] = amounts.to_numpy()
    out["end_mrr"] = by_month["mrr"].sum().reindex(months, fill_value=0.0)
    out["net_new_mrr"] = out["new"] + out["expansion"] + out["reactivation"] - out["contraction"] - out["churn"]
    out[[f"n_{name}" for name in MOVEMENT_STEPS]] = counts.to_numpy().astype(int)
    out["active_start"] = was_active.groupby(panel["month"]).sum().reindex(months, fill_value=0).astype(int)
    out["active_end"] = by_month["active"].sum().reindex(months, fill_value=0).astype(int)
    return out.reset_index()


def mrr_bridge(panel: pd.DataFrame, start=None, end=None) -> pd.DataFrame:
    """Waterfall from the MRR of month ``start`` through each movement to the MRR of month ``end``.

    start MRR + new + expansion + reactivation − contraction − churn = end MRR, with each movement
    summed over the months after ``start`` up to ``end`` (both taken as their month).

    Parameters
    ----------
    panel : DataFrame
        The monthly account panel.
    start, end : date, optional
        Defaults: the panel's first and last month. ``start`` may precede the panel (start MRR 0).

    Returns
    -------
    DataFrame
        ``step`` in waterfall order (``start``, ``new``, ``expansion``, ``reactivation``,
        ``contraction``, ``churn``, ``end``) and ``amount`` (losses negative); the amounts of the
        first six rows sum to the last. ``attrs`` holds ``start_month`` and ``end_month``.

    Examples
    --------
    >>> mrr_bridge(panel, start="2024-12-01", end="2025-12-01")  # doctest: +SKIP
    """
    movements = mrr_movements(panel)
    first, last = movements["month"].iloc[0], movements["month"].iloc[-1]
    start = first if start is None else month_of(start)
    end = last if end is None else month_of(end)
    if not (start < end and first <= end <= last):
        raise ValueError(
            f"the bridge needs start < end, with end in the panel ({first:%Y-%m} to "
            f"{last:%Y-%m}); got {start:%Y-%m} to {end:%Y-%m}"
        )
    inside = movements[(movements["month"] > start) & (movements["month"] <= end)]
    # start MRR = the previous month's total of the window's first month (0 before the panel)
    start_mrr = float(inside["start_mrr"].iloc[0]) if start >= first - pd.DateOffset(months=1) else 0.0
    steps = (
        [("start", start_mrr)]
        + [(g, float(inside[g].sum())) for g in GAINS]
        + [(loss, -float(inside[loss].sum())) for loss in LOSSES]
        + [("end", float(inside["end_mrr"].iloc[-1]))]
    )
    bridge = pd.DataFrame(steps, columns=["step", "amount"])
    bridge.attrs.update(start_month=start, end_month=end)
    return bridge


# ------------------------------------------------------------------------------------------------
# Churn rates over a trailing window
# ------------------------------------------------------------------------------------------------
def logo_churn_rate(panel: pd.DataFrame, months: int = 12, as_of=None) -> dict:
    """Monthly logo (customer) churn pooled over a trailing window, and its annual equivalent.

    monthly = accounts that churned in the window's months / sum over those months of the
    accounts active at the start of the month (the previous month's end);
    annual = 1 − (1 − monthly)^12: the monthly rate compounded over a year.

    Pooling (rather than averaging twelve monthly rates) weights each month by its customers,
    so a month with few customers cannot swing the rate. A reactivation does not offset a churn.

    Parameters
    ----------
    panel : DataFrame
        The monthly account panel.
    months : int, default 12
        Length of the window: the months after ``end - months`` up to the end month.
    as_of : date, optional
        The window ends in the month of ``as_of`` (default: the panel's last month).

    Returns
    -------
    dict
        ``monthly``, ``annual``, ``churned`` (accounts), ``exposure`` (account-months at risk),
        ``months`` (in the window), ``start_month`` (the month before the first one pooled) and
        ``end_month``. Warns (:class:`~cslab.errors.StatisticalWarning`) with fewer than
        ``MIN_RATE_EVENTS`` churns or fewer than ``MIN_ACCOUNTS`` customers a month on average.

    Examples
    --------
    >>> logo_churn_rate(panel, months=12)  # doctest: +SKIP
    {'monthly': 0.021, 'annual': 0.225, 'churned': 512, 'exposure': 24310, ...}
    """
    inside, start, end = _in_window(mrr_movements(panel), months, as_of, panel)
    exposure = int(inside["active_start"].sum())
    churned = int(inside["n_churn"].sum())
    if churned < MIN_RATE_EVENTS or exposure < MIN_ACCOUNTS * max(len(inside), 1):
        _warn(
            f"logo churn rests on {churned} churns among {exposure / max(len(inside), 1):.0f} "
            f"customers a month: at least {MIN_RATE_EVENTS} churns and {MIN_ACCOUNTS} customers are "
            "needed for a stable rate"
        )
    monthly = churned / exposure if exposure else float("nan")
    return {
        "monthly": monthly,
        "annual": 1 - (1 - monthly) ** 12,
        "churned": churned,
        "exposure": exposure,
        "months": len(inside),
        "start_month": start,
        "end_month": end,
    }


def revenue_churn(panel: pd.DataFrame, months: int = 12, as_of=None) -> dict:
    """Gross and net MRR churn rates, monthly (pooled over a trailing window) and annualised.

    ChartMogul's standard (B2B) definitions, per month:

    * gross MRR churn = (churn + contraction) / MRR at the start of the month: revenue lost
      before any gains;
    * net MRR churn = (churn + contraction − expansion − reactivation) / MRR at the start of the
      month: revenue lost net of what existing customers added (negative when the installed base
      grows on its own).

    Pooled over the window: the movements summed over its months, divided by the sum of each
    month's start MRR. Annualised: 1 − (1 − monthly)^12.

    Parameters
    ----------
    panel : DataFrame
        The monthly account panel.
    months : int, default 12
        Length of the window (as in :func:`logo_churn_rate`).
    as_of : date, optional
        The window ends in the month of ``as_of`` (default: the panel's last month).

    Returns
    -------
    dict
        ``gross_monthly``, ``net_monthly``, ``gross_annual``, ``net_annual``, the amounts
        ``lost`` (churn + contraction), ``gained`` (expansion + reactivation) and ``start_mrr``
        (sum of the months' start MRR), ``months``, ``start_month``, ``end_month``.

    Examples
    --------
    >>> revenue_churn(panel)["gross_monthly"]  # doctest: +SKIP
    0.016
    """
    inside, start, end = _in_window(mrr_movements(panel), months, as_of, panel)
    if inside["active_start"].mean() < MIN_ACCOUNTS:
        _warn(
            f"revenue churn rests on {inside['active_start'].mean():.0f} customers a month on "
            f"average (fewer than {MIN_ACCOUNTS})"
        )
    base = float(inside["start_mrr"].sum())
    lost = float(inside["churn"].sum() + inside["contraction"].sum())
    gained = float(inside["expansion"].sum() + inside["reactivation"].sum())
    gross = lost / base if base else float("nan")
    net = (lost - gained) / base if base else float("nan")
    return {
        "gross_monthly": gross,
        "net_monthly": net,
        "gross_annual": 1 - (1 - gross) ** 12,
        "net_annual": 1 - (1 - net) ** 12,
        "lost": lost,
        "gained": gained,
        "start_mrr": base,
        "months": len(inside),
        "start_month": start,
        "end_month": end,
    }


# ------------------------------------------------------------------------------------------------
# Revenue retention on the trailing starting-cohort basis
# ------------------------------------------------------------------------------------------------
#: The figures of :func:`revenue_retention` and the rate columns of :func:`retention_over_time`.
RATE_COLUMNS = [
    "nrr",
    "grr",
    "headwind",
    "tailwind",
    "expansion_rate",
    "contraction_rate",
    "churn_rate",
    "reactivation_rate",
    "start_mrr",
    "n_accounts",
]


def _cohort_accounts(
    panel: pd.DataFrame, months: int, by: str | None = None, start: pd.Timestamp | None = None
) -> pd.DataFrame:
    """One row per account and start month s at which it was active, with s + ``months`` in the panel.

    Columns: ``m`` (start month as an integer), ``mrr_start``, ``mrr_end`` (MRR at s + months), each
    movement's amount summed over the months after s up to s + months, and the ``by`` column as in
    month s. Vectorised: the panel is merged with itself at a lag of ``months``, and a window's
    movements are the difference of per-account cumulative sums.
    """
    columns = ["account_id", "month", "mrr", "active", "movement", "movement_mrr"]
    frame = panel[columns + ([by] if by and by not in columns else [])]
    frame = frame.sort_values(["account_id", "month"], kind="stable", ignore_index=True)
    account = frame["account_id"].to_numpy()
    movement = frame["movement"].to_numpy()
    amount = frame["movement_mrr"].abs().to_numpy()
    cumulative = pd.DataFrame({name: np.where(movement == name, amount, 0.0) for name in MOVEMENT_STEPS})
    cumulative = cumulative.groupby(account, sort=False).cumsum()
    m = month_index(frame["month"])

    begins = frame["active"].to_numpy()
    ends = np.ones(len(frame), dtype=bool)
    if start is not None:
        s = month_index([start])[0]
        begins &= m == s
        ends &= m == s + months
    begin = pd.DataFrame({"account_id": account[begins], "m": m[begins], "mrr_start": frame["mrr"].to_numpy()[begins]})
    if by:
        labels = frame[by][begins]
        begin[by] = label_missing(labels).to_numpy()
    begin = pd.concat([begin, cumulative[begins].add_suffix("_0").reset_index(drop=True)], axis=1)
    finish = pd.DataFrame(
        {"account_id": account[ends], "m": m[ends] - months, "mrr_end": frame["mrr"].to_numpy()[ends]}
    )
    finish = pd.concat([finish, cumulative[ends].add_suffix("_1").reset_index(drop=True)], axis=1)
    # inner: every account has a row in each month from its first to the panel's last, so only
    # start months less than `months` before the end drop out
    out = begin.merge(finish, on=["account_id", "m"], how="inner")
    for name in MOVEMENT_STEPS:
        out[name] = out.pop(f"{name}_1") - out.pop(f"{name}_0")
    out["capped"] = np.minimum(out["mrr_end"], out["mrr_start"])
    return out


def _rates(accounts: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Retention rates of each group of :func:`_cohort_accounts` rows."""
    sums = accounts.groupby(keys, sort=True)[["mrr_start", "mrr_end", "capped", *MOVEMENT_STEPS]].sum()
    base = sums["mrr_start"]
    # a cohort member back after the reactivation window is "new" again in the panel; for the
    # cohort it is a returning customer, so its MRR counts as reactivation
    returning = sums["reactivation"] + sums["new"]
    out = pd.DataFrame(
        {
            "nrr": sums["mrr_end"] / base,
            "grr": sums["capped"] / base,
            "headwind": (sums["churn"] + sums["contraction"]) / base,
            "tailwind": sums["expansion"] / base,
            "expansion_rate": sums["expansion"] / base,
            "contraction_rate": sums["contraction"] / base,
            "churn_rate": sums["churn"] / base,
            "reactivation_rate": returning / base,
            "start_mrr": base,
            "n_accounts": accounts.groupby(keys, sort=True).size(),
        }
    )
    return out.reset_index()


def revenue_retention(panel: pd.DataFrame, *, months: int = 12, as_of=None) -> dict:
    """NRR, GRR and their parts on the trailing starting-cohort basis.

    The cohort is every account active in the start month, ``months`` months before the end
    month (the month of ``as_of``, default the panel's last month). Accounts that started paying
    since are left out: they have no starting revenue to retain.

    * NRR = the cohort's MRR in the end month / its MRR in the start month. Members that churned
      and came back count with what they pay now.
    * GRR = sum over the cohort's accounts of min(MRR now, MRR then) / MRR then: each account is
      capped at 100%, so one account's expansion never offsets another's churn. GRR <= 1 and
      GRR <= NRR.
    * expansion, contraction, churn and reactivation rates = each movement's amount summed over
      the cohort's accounts and the months after the start month up to the end month, / MRR then
      (a member back after the reactivation window counts as reactivation). Exactly:
      NRR = 1 + expansion − contraction − churn + reactivation.
    * Gainsight's headwind = churn + contraction rates (what the cohort took away); tailwind =
      expansion rate (what it added).

    GRR (point to point, capped per account) and 1 − headwind differ when an account contracts
    and re-expands (or churns and returns) within the window: the movements count both the loss
    and the gain, the point-to-point GRR neither. Always 1 − headwind <= GRR <= min(1, NRR).

    Parameters
    ----------
    panel : DataFrame
        The monthly account panel.
    months : int, default 12
        Months between the start and the end month.
    as_of : date, optional
        The end month is the month of ``as_of`` (default: the panel's last month).

    Returns
    -------
    dict
        ``nrr``, ``grr``, ``headwind``, ``tailwind``, ``expansion_rate``, ``contraction_rate``,
        ``churn_rate``, ``reactivation_rate``, ``start_mrr``, ``n_accounts`` (cohort size),
        ``start_month``, ``end_month``. Warns (:class:`~cslab.errors.StatisticalWarning`) when the
        cohort has fewer than ``MIN_ACCOUNTS`` accounts.

    Raises
    ------
    ValueError
        When the panel does not reach back to the start month.

    Examples
    --------
    >>> r = revenue_retention(panel, months=12)  # doctest: +SKIP
    >>> r["nrr"], r["grr"], r["headwind"], r["tailwind"]  # doctest: +SKIP
    (0.912, 0.822, 0.181, 0.090)
    """
    end = _end_month(panel, as_of)
    start = end - pd.DateOffset(months=months)
    if start < panel["month"].min():
        raise ValueError(
            f"revenue retention up to {end:%Y-%m} needs the panel to start by "
            f"{start:%Y-%m} ({months} months of history); it starts "
            f"{panel['month'].min():%Y-%m}"
        )
    rates = _rates(_cohort_accounts(panel, months, start=start).assign(m=0), ["m"])
    if rates.empty:
        out = dict.fromkeys(RATE_COLUMNS, float("nan")) | {"start_mrr": 0.0, "n_accounts": 0}
    else:
        row = rates.iloc[0]
        out = {k: float(row[k]) for k in RATE_COLUMNS} | {"n_accounts": int(row["n_accounts"])}
    if out["n_accounts"] < MIN_ACCOUNTS:
        _warn(
            f"revenue retention rests on {out['n_accounts']} accounts active in {start:%Y-%m} "
            f"(fewer than {MIN_ACCOUNTS})"
        )
    return out | {"start_month": start, "end_month": end}


def retention_over_time(panel: pd.DataFrame, months: int = 12, by: str | None = None) -> pd.DataFrame:
    """NRR, GRR and their parts at every month with ``months`` of history behind it.

    Each row is :func:`revenue_retention` with that month as the end month: the cohort of the
    accounts active ``months`` months earlier, followed to that month (same formulas).

    Parameters
    ----------
    panel : DataFrame
        The monthly account panel.
    months : int, default 12
        Length of each trailing window.
    by : str, optional
        An account column (e.g. ``segment``, ``plan``): one row per group and month, each account
        in the group it was in at the cohort's start month; missing values form "(missing)".

    Returns
    -------
    DataFrame
        ``month`` (end of each window), ``start_month``, the ``by`` column if given, then
        ``nrr``, ``grr``, ``headwind``, ``tailwind``, ``expansion_rate``, ``contraction_rate``,
        ``churn_rate``, ``reactivation_rate``, ``start_mrr`` and ``n_accounts``. Months whose start
        month has no active account have no row. Warns
        (:class:`~cslab.errors.StatisticalWarning`) when rows rest on fewer than ``MIN_ACCOUNTS``
        accounts.

    Examples
    --------
    >>> retention_over_time(panel, months=12, by="segment").tail(3)  # doctest: +SKIP
    """
    keys = ["m"] + ([by] if by else [])
    out = _rates(_cohort_accounts(panel, months, by=by), keys)
    out.insert(0, "month", month_start(out["m"].to_numpy() + months))
    out.insert(1, "start_month", month_start(out.pop("m").to_numpy()))
    small = out[out["n_accounts"] < MIN_ACCOUNTS]
    if len(small):
        where = ", ".join(f"{r.month:%Y-%m}" + (f" ({by}={r[by]})" if by else "") for _, r in small.head(3).iterrows())
        _warn(f"{len(small)} of {len(out)} retention figures rest on fewer than {MIN_ACCOUNTS} accounts (e.g. {where})")
    return out


def quick_ratio(movements: pd.DataFrame, months: int = 12) -> dict:
    """The SaaS quick ratio over the last ``months`` months: (new + expansion + reactivation MRR) /
    (churned + contracted MRR).

    Above 4 is healthy growth; below 1 the book shrinks. Reactivation counts as a gain, as in the
    bridge identity.

    Parameters
    ----------
    movements : DataFrame
        :func:`mrr_movements`.
    months : int
        Trailing months (fewer when the panel is shorter).

    Returns
    -------
    dict
        ``ratio`` (NaN when nothing was lost), ``gained``, ``lost`` and ``months`` used.

    Examples
    --------
    >>> moves = pd.DataFrame({"new": [30.0, 10.0], "expansion": [10.0, 0.0], "reactivation": [0.0, 0.0],
    ...                       "contraction": [5.0, 5.0], "churn": [10.0, 0.0]})
    >>> quick_ratio(moves)["ratio"]
    2.5
    """
    recent = movements.tail(months)
    gained = float(sum(recent[c].sum() for c in GAINS if c in recent))
    lost = float(sum(recent[c].sum() for c in LOSSES if c in recent))
    return {"ratio": gained / lost if lost > 0 else float("nan"), "gained": gained, "lost": lost, "months": len(recent)}


# re-exported: their own modules since issue 13, documented here first
from cslab.cohorts import cohort_table  # noqa: E402
from cslab.definitions import metric_definitions  # noqa: E402
