"""The monthly account panel: one row per account per month, the structure every notebook stands on.

Conventions (each a parameter, defaults as in the data contract):

* month-end snapshot: an account's MRR in a month is the sum of its lines running on the month's
  last day (on ``as_of`` in the month of ``as_of``); ``end_date`` is the last paid day, so churn is
  counted at the end of the paid period;
* a return within ``reactivation_months`` of churning is a reactivation, after that a new customer;
* an account is active when its MRR is above ``min_mrr`` (by default: $0 accounts are not active).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cslab.data.engine import engine_name
from cslab.data.io import CSData
from cslab.data.months import analysis_month, month_index, month_of, month_start
from cslab.data.roles import snake

__all__ = [
    "panel",
    "MOVEMENTS",
    "month_index",
    "month_start",
    "month_of",
    "analysis_month",
    "active_in_month",
    "label_missing",
    "MISSING_LABEL",
]

#: The group of accounts whose value of a grouping column is missing.
MISSING_LABEL = "(missing)"

MOVEMENTS = ("new", "expansion", "contraction", "churn", "reactivation", "flat", "inactive")


def active_in_month(panel: pd.DataFrame, month=None) -> pd.DataFrame:
    """The panel's rows of the accounts active in ``month`` (default: the panel's latest month).

    ``month`` follows the kit's ``as_of`` convention (:func:`cslab.data.months.analysis_month`):
    any date in the month will do.

    Examples
    --------
    >>> now = active_in_month(panel_frame)  # doctest: +SKIP
    """
    month = analysis_month(panel, month)
    return panel[panel["month"].eq(month) & panel["active"]]


def label_missing(values: pd.Series) -> pd.Series:
    """Group labels with missing values as the group :data:`MISSING_LABEL` (an object series).

    Examples
    --------
    >>> label_missing(pd.Series(["SMB", None])).tolist()
    ['SMB', '(missing)']
    """
    return values.astype(object).where(values.notna(), MISSING_LABEL)


def _expand_lines(
    subs: pd.DataFrame, as_of: pd.Timestamp, engine: Any = None, first_month: int | None = None
) -> pd.DataFrame:
    """Account x month MRR and seats from subscription lines, on the engine
    (:func:`cslab.data.engine.line_months`: the month-end snapshot rule, written once for every engine)."""
    import ibis

    from cslab.data.engine import CALENDAR, LINE_COLUMNS, LINES, connect, line_months

    as_of_m = int(month_index([as_of])[0])
    subs = subs[subs["start_date"] <= as_of]
    if first_month is None:
        first_month = int(month_index(subs["start_date"]).min())
    columns = ["account_id", "start_date", "end_date", "mrr"] + [
        c for c in ("seats", "billing_period_months", "plan") if c in subs
    ]
    lines = subs[columns].reset_index(drop=True)
    lines["line"] = np.arange(len(lines), dtype="int64")
    for column in ("mrr", "seats", "billing_period_months"):
        if column in lines:
            lines[column] = lines[column].astype("float64")
    if "plan" in lines:
        lines["plan"] = lines["plan"].astype(object).where(lines["plan"].notna(), None)
    table = ibis.table({c: LINE_COLUMNS[c] for c in lines.columns}, name=LINES)
    calendar = pd.DataFrame({"m": np.arange(first_month, as_of_m + 1, dtype="int64")})
    out = connect(engine).run(line_months(table, as_of, as_of_m), {LINES: lines, CALENDAR: calendar})
    out["m"] = out["m"].astype("int64")
    for column in ("mrr", "seats", "billing_period_months"):
        if column in out:
            out[column] = out[column].astype("float64")
    if "seats" not in out:
        out["seats"] = np.nan
    return out


def _grid(first_month: pd.Series, as_of_m: int) -> pd.DataFrame:
    """Every account from its first month to the month of as_of."""
    n = (as_of_m - first_month.to_numpy() + 1).astype(int)
    account = np.repeat(first_month.index.to_numpy(), n)
    offset = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    return pd.DataFrame({"account_id": account, "m": np.repeat(first_month.to_numpy(), n) + offset})


def _classify(frame: pd.DataFrame, min_mrr: float, reactivation_months: int) -> pd.DataFrame:
    """Movement of each account-month, its signed amount, cohort, tenure and lifetime number."""
    account = frame["account_id"].to_numpy()
    first_row = np.r_[True, account[1:] != account[:-1]]
    active = frame["mrr"].to_numpy() > min_mrr
    mrr = np.where(active, frame["mrr"].to_numpy(), 0.0)  # inactive MRR is not counted anywhere
    prev_mrr = np.where(first_row, 0.0, np.r_[0.0, mrr[:-1]])
    prev_active = np.where(first_row, False, np.r_[False, active[:-1]])

    m = frame["m"].to_numpy()
    # Month of the latest active month strictly before this one, within the account.
    last_active = pd.Series(np.where(active, m, np.nan)).groupby(account, sort=False).shift(1)
    last_active = last_active.groupby(account, sort=False).ffill().to_numpy()
    gap = m - last_active - 1  # months without payment before this return
    returning = active & ~prev_active
    reactivation = returning & ~np.isnan(last_active) & (gap <= reactivation_months)
    new = returning & ~reactivation

    movement = np.select(
        [new, reactivation, ~active & prev_active, active & (mrr > prev_mrr), active & (mrr < prev_mrr), active],
        ["new", "reactivation", "churn", "expansion", "contraction", "flat"],
        default="inactive",
    )
    out = frame.assign(mrr=mrr, active=active, movement=movement, movement_mrr=mrr - prev_mrr)
    first_paid = pd.Series(np.where(active, m, np.nan)).groupby(account, sort=False).transform("min")
    out["cohort_month"] = month_start(first_paid.to_numpy())
    out["tenure_months"] = pd.array(np.where(m >= first_paid, m - first_paid, np.nan), dtype="Int64")
    out["lifetime"] = pd.Series(new.astype(int)).groupby(account, sort=False).cumsum().to_numpy()
    return out


def _monthly_counts(
    frame: pd.DataFrame, date_col: str, by: str | None, prefix: str, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Counts of dated events per account and month (optionally one column per category)."""
    frame = frame[frame[date_col] <= as_of]
    keys = pd.DataFrame({"account_id": frame["account_id"].to_numpy(), "m": month_index(frame[date_col])})
    if by is None:
        return keys.value_counts().rename(prefix).reset_index()
    kinds = {kind: snake(kind) for kind in pd.unique(frame[by])}  # once per kind, not per row
    keys["kind"] = prefix + frame[by].map(kinds).to_numpy()
    return (
        keys.pivot_table(index=["account_id", "m"], columns="kind", aggfunc="size", fill_value=0)
        .reset_index()
        .rename_axis(columns=None)
    )


def _csm_in_force(frame: pd.DataFrame, activities: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """``csm_id`` as it was each month: the CSM of the account's latest activity so far.

    A CRM's ``accounts.csm_id`` is today's assignment, often cleared when an account churns; the
    CSM named on dated activities is the one in force then. Months before an account's first
    activity keep ``accounts.csm_id``.
    """
    acts = activities[activities["date"] <= as_of].dropna(subset=["csm_id"])
    if acts.empty:
        return frame
    first = frame.groupby("account_id", sort=False)["m"].min()
    # an activity before the account's first paid month counts in that month, like other events
    acts = acts[acts["account_id"].isin(first.index)]
    acts = acts.assign(m=np.maximum(month_index(acts["date"]), first.reindex(acts["account_id"]).to_numpy()))
    acts = acts.sort_values(["account_id", "date"], kind="stable")
    latest = acts.drop_duplicates(["account_id", "m"], keep="last")[["account_id", "m", "csm_id"]]
    merged = frame[["account_id", "m"]].merge(
        latest.rename(columns={"csm_id": "_csm"}), on=["account_id", "m"], how="left"
    )
    in_force = merged.groupby("account_id", sort=False)["_csm"].ffill().to_numpy()
    current = frame["csm_id"] if "csm_id" in frame else pd.Series(np.nan, index=frame.index, dtype=object)
    frame["csm_id"] = pd.Series(in_force, index=frame.index).where(pd.notna(in_force), current)
    return frame


def panel(
    data: CSData,
    as_of: str | pd.Timestamp | None = None,
    *,
    reactivation_months: int = 12,
    min_mrr: float = 0.0,
    usage_agg: str = "mean",
    engine: Any = None,
) -> pd.DataFrame:
    """Build the monthly account panel.

    The row-level steps (usage to account x month x metric, subscription lines to account x
    month) run on ``engine`` (:mod:`cslab.data.engine`: the same Ibis expressions on DuckDB, Spark
    or a warehouse); the per-account steps on their output (the month grid, movements, cohorts,
    event counts) run in pandas / numpy.

    Parameters
    ----------
    data : CSData
        Loaded tables (:func:`cslab.load`); needs ``subscriptions``.
    as_of : date, optional
        Analysis date; data dated after it is ignored everywhere. Defaults to the end of the last
        complete month of the data (:meth:`CSData.default_as_of`).
    reactivation_months : int, default 12
        A return within this many months without payment is a reactivation; a later return is
        counted as a new customer (a new ``lifetime``).
    min_mrr : float, default 0
        Accounts with MRR at or below it are not active (and their MRR is not counted).
    usage_agg : {"mean", "sum", "max"}, default "mean"
        How usage rows within a month are combined (see :meth:`UsageTable.monthly`).
    engine : str, SparkSession or Ibis backend, optional
        ``"duckdb"``, ``"spark"``, your SparkSession or an Ibis backend (a warehouse). Default: the
        engine the data was loaded for (``data.engine``), else ``$CSLAB_ENGINE``, else DuckDB. Every
        engine gives the same panel.

    Returns
    -------
    DataFrame
        One row per account per month from its first month with a subscription line to the month of
        ``as_of``: ``account_id``, ``month``, ``mrr``, ``seats``, ``active``, ``movement``,
        ``movement_mrr`` (signed), ``cohort_month``, ``tenure_months``, ``lifetime``, ``plan`` and
        ``billing_period_months`` (of the running lines, when subscriptions have them), the account
        attributes, ``usage_<metric>``, ``tickets``, ``csat``, ``cs_<activity_type>``,
        ``outcomes_committed`` and ``outcomes_achieved``. ``attrs["metric_roles"]`` maps each
        metric role to its metric (:mod:`cslab.data.roles`). Every month,
        ``sum(mrr[m-1]) + sum(movement_mrr[m]) == sum(mrr[m])`` (the MRR bridge).

    Examples
    --------
    >>> data = cslab.load("data/demo")  # doctest: +SKIP
    >>> p = cslab.panel(data, as_of="2025-12-31")  # doctest: +SKIP
    >>> p.groupby("month")["mrr"].sum().tail(1)  # doctest: +SKIP
    """
    if data.subscriptions is None:
        raise ValueError("the monthly panel needs a subscriptions table (snapshot data has none)")
    as_of = pd.Timestamp(as_of) if as_of is not None else data.default_as_of()
    as_of_m = month_index([as_of])[0]
    subs = data.subscriptions[data.subscriptions["start_date"] <= as_of]
    if subs.empty:
        raise ValueError(f"no subscription line starts on or before as_of={as_of:%Y-%m-%d}")

    engine = data.engine if engine is None else engine
    first_month = pd.Series(month_index(subs["start_date"]), index=subs["account_id"].to_numpy())
    first_month = first_month.groupby(level=0).min()
    lines = _expand_lines(subs, as_of, engine, int(first_month.min()))
    frame = _grid(first_month, as_of_m).merge(lines, on=["account_id", "m"], how="left")
    frame["mrr"] = frame["mrr"].fillna(0.0)
    frame = frame.sort_values(["account_id", "m"], kind="stable", ignore_index=True)
    frame = _classify(frame, min_mrr, reactivation_months)

    extras = []
    if data.usage is not None:
        usage = data.usage._monthly(as_of, usage_agg, engine)
        if len(usage):
            names = {m: "usage_" + snake(m) for m in usage["metric"].unique()}  # once per metric, not per row
            usage = usage.assign(metric=usage["metric"].map(names))
            extras.append(
                usage.pivot_table(index=["account_id", "m"], columns="metric", values="value")
                .reset_index()
                .rename_axis(columns=None)
            )
    if data.tickets is not None:
        counts = _monthly_counts(data.tickets, "opened_at", None, "tickets", as_of)
        if "csat" in data.tickets:
            t = data.tickets[data.tickets["opened_at"] <= as_of]
            csat = t.assign(m=month_index(t["opened_at"])).groupby(["account_id", "m"])["csat"].mean()
            counts = counts.merge(csat.reset_index(), on=["account_id", "m"], how="left")
        extras.append(counts)
    if data.cs_activities is not None:
        extras.append(_monthly_counts(data.cs_activities, "date", "activity_type", "cs_", as_of))
    if data.outcomes is not None:
        o = data.outcomes
        committed = _monthly_counts(o, "committed_date", None, "outcomes_committed", as_of)
        achieved = _monthly_counts(
            o[o["achieved_date"].notna()]
            if "achieved_date" in o
            else o.iloc[:0].assign(achieved_date=pd.Series(dtype="datetime64[ns]")),
            "achieved_date",
            None,
            "outcomes_achieved",
            as_of,
        )
        extras += [committed, achieved]
    for extra in extras:
        # Events dated before an account's first month count in its first month.
        extra = extra[extra["account_id"].isin(first_month.index)]
        extra = extra.assign(m=np.maximum(extra["m"].to_numpy(), first_month.reindex(extra["account_id"]).to_numpy()))
        value_cols = [c for c in extra.columns if c not in ("account_id", "m")]
        how = {c: ("mean" if c == "csat" or c.startswith("usage_") else "sum") for c in value_cols}
        extra = extra.groupby(["account_id", "m"], as_index=False).agg(how)
        frame = frame.merge(extra, on=["account_id", "m"], how="left")
    count_cols = [c for c in frame.columns if c == "tickets" or c.startswith("cs_") or c.startswith("outcomes_")]
    frame[count_cols] = frame[count_cols].fillna(0).astype(int)
    for column in ("outcomes_committed", "outcomes_achieved"):
        if column in frame:  # cumulative: to date, not in the month
            frame[column] = frame.groupby("account_id", sort=False)[column].cumsum()

    if data.accounts is not None:
        attributes = data.accounts.drop_duplicates("account_id").set_index("account_id")
        attributes = attributes.drop(columns=[c for c in attributes if c in frame.columns])
        frame = frame.join(attributes, on="account_id")
    # the accounts columns actually joined (a `plan` or `seats` of the CRM yields to the lines')
    joined = list(attributes.columns) if data.accounts is not None else []

    if data.cs_activities is not None and "csm_id" in data.cs_activities:
        frame = _csm_in_force(frame, data.cs_activities, as_of)

    frame.insert(1, "month", month_start(frame.pop("m").to_numpy()).to_numpy())
    leading = [
        "account_id",
        "month",
        "mrr",
        "seats",
        "active",
        "movement",
        "movement_mrr",
        "cohort_month",
        "tenure_months",
        "lifetime",
    ]
    frame = frame[leading + [c for c in frame.columns if c not in leading]]
    frame.attrs.update(
        as_of=as_of,
        reactivation_months=reactivation_months,
        min_mrr=min_mrr,
        usage_agg=usage_agg,
        engine=engine_name(engine),
        metric_roles=dict(data.metric_roles.roles),
        account_columns=joined,
    )
    return frame
