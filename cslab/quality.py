"""Data quality of a client's export: the input profile and the data warnings.

A consultant running a stranger's export needs to know, before reading any figure, what the export
holds and what in it could bend the figures: lines of one account that overlap (a replaced plan left
open doubles MRR), zero-length lines, a mid-month last date, columns written after churn, a history
too short for a year-on-year rate. :func:`input_profile` describes every table;
:func:`data_warnings` lists what a reader must know, each as ``{"code", "message"}``:

=====================  ==========================================================================
code                   when
=====================  ==========================================================================
zero_length_lines      subscription lines ending the day before they start were dropped
overlapping_lines      lines of the same plan/product of one account overlap in time (share of
                       accounts above ``overlap_threshold``): likely replaced plans left open
implausible_nrr        NRR above 200% (usually overlapping lines summed, or a unit error)
mid_month_as_of        the data ends mid-month: the as-of moved back to the previous month end
leaky_attributes       account attributes left out of the models (:mod:`cslab.leakage`)
short_history          fewer than 13 months: year-on-year retention (NRR, GRR) not measurable
csm_cleared_on_churn   churned accounts have far fewer CSMs in ``accounts`` than active ones
=====================  ==========================================================================
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from cslab.data.io import CSData
from cslab.errors import StatisticalWarning
from cslab.leakage import account_status

__all__ = [
    "PROFILE_LABELS",
    "data_warnings_snapshot",
    "input_profile",
    "line_overlaps",
    "data_warnings",
    "csm_coverage_gap",
    "sanity_flags",
    "history_months",
    "WARNING_CODES",
]

WARNING_CODES = (
    "zero_length_lines",
    "overlapping_lines",
    "implausible_nrr",
    "mid_month_as_of",
    "leaky_attributes",
    "short_history",
    "csm_cleared_on_churn",
)
#: Column labels of :func:`input_profile` for readers.
PROFILE_LABELS = {
    "first_date": "from",
    "last_date": "to",
    "accounts_share": "of paying accounts",
    "per_account_month": "rows per account-month",
}
#: Months of history NRR and GRR need: the start month and the 12 after it.
YEAR_ON_YEAR_MONTHS = 13


def history_months(panel: pd.DataFrame) -> int:
    """Months the panel covers, first to last."""
    first, last = panel["month"].min(), panel["month"].max()
    return (last.year - first.year) * 12 + last.month - first.month + 1


def line_overlaps(subscriptions: pd.DataFrame, as_of=None) -> dict:
    """How subscription lines of one account overlap in time.

    Two lines overlap when one starts on or before the other's last paid day. Lines of different
    products overlapping are normal (an add-on); lines of the *same* plan and product overlapping
    usually mean a replaced plan was left open, and both are summed into MRR.

    Returns
    -------
    dict
        ``share_accounts_multiple_lines`` (accounts holding more than one running line on ``as_of``,
        among the accounts with a running line), ``n_accounts_overlapping`` and
        ``share_accounts_overlapping`` (any two lines overlapping, ever), ``n_accounts_same_plan_overlap``
        and ``share_accounts_same_plan_overlap`` (two lines of the same plan and product).

    Examples
    --------
    >>> line_overlaps(data.subscriptions)["share_accounts_same_plan_overlap"]  # doctest: +SKIP
    0.0
    """
    subs = subscriptions
    as_of = pd.Timestamp(as_of) if as_of is not None else subs["start_date"].max()
    end = subs["end_date"].fillna(pd.Timestamp.max)
    n_accounts = subs["account_id"].nunique()

    def overlapping(keys: list[str]) -> set:
        frame = pd.DataFrame({k: subs[k].astype(object).fillna("") for k in keys})
        frame["start"], frame["end"] = subs["start_date"].to_numpy(), end.to_numpy()
        frame = frame.sort_values(keys + ["start"], kind="stable")
        # the latest end among the earlier lines of the same key: a start on or before it overlaps
        frame["running_end"] = frame.groupby(keys, sort=False)["end"].cummax()
        prev_end = frame.groupby(keys, sort=False)["running_end"].shift(1)
        hit = frame["start"] <= prev_end
        return set(frame.loc[hit, "account_id"])

    any_overlap = overlapping(["account_id"])
    same_keys = ["account_id"] + [c for c in ("product", "plan") if c in subs]
    same = overlapping(same_keys)
    running = subs[(subs["start_date"] <= as_of) & (end >= as_of)]
    per_account = running.groupby("account_id").size()
    return {
        "share_accounts_multiple_lines": float((per_account > 1).mean()) if len(per_account) else 0.0,
        "n_accounts_overlapping": len(any_overlap),
        "share_accounts_overlapping": len(any_overlap) / n_accounts if n_accounts else 0.0,
        "n_accounts_same_plan_overlap": len(same),
        "share_accounts_same_plan_overlap": len(same) / n_accounts if n_accounts else 0.0,
        "same_plan_keys": [c for c in ("product", "plan") if c in subs],
    }


def _dated_tables(data: CSData) -> dict[str, tuple[pd.DataFrame, str]]:
    tables = {}
    for name, column in (("tickets", "opened_at"), ("cs_activities", "date"), ("outcomes", "committed_date")):
        frame = getattr(data, name)
        if frame is not None:
            tables[name] = (frame, column)
    return tables


def input_profile(data: CSData, panel: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per table: what the export holds.

    Columns: ``rows``, ``first_date``, ``last_date``, ``accounts`` (distinct accounts named),
    ``accounts_share`` (of the accounts with a subscription line), ``orphans`` (accounts named here
    without any subscription line), then ``per_account_month`` (rows per account and month of the
    panel, for event tables) and ``notes`` (table-specific facts: running lines, lines per account,
    overlaps, zero-MRR lines, metrics).

    Examples
    --------
    >>> input_profile(data, cslab.panel(data))  # doctest: +SKIP
    """
    subs = data.subscriptions
    paying = set(subs["account_id"])
    account_months = len(panel) if panel is not None else np.nan
    rows = []

    def row(name, n, first, last, ids, notes, per_month=np.nan):
        ids = pd.Series(pd.unique(pd.Series(ids).dropna()))
        rows.append(
            {
                "table": name,
                "rows": int(n),
                "first_date": first,
                "last_date": last,
                "accounts": len(ids),
                "accounts_share": ids.isin(paying).sum() / len(paying),
                "orphans": int((~ids.isin(paying)).sum()),
                "per_account_month": per_month,
                "notes": notes,
            }
        )

    overlaps = line_overlaps(subs, panel.attrs.get("as_of") if panel is not None else None)
    running = subs["end_date"].isna().mean()
    notes = [
        f"{running:.0%} of lines running (no end date)",
        f"{len(subs) / len(paying):.1f} lines per account",
        f"{overlaps['share_accounts_overlapping']:.0%} of accounts with overlapping lines "
        f"({overlaps['share_accounts_same_plan_overlap']:.0%} of the same "
        f"{'/'.join(overlaps['same_plan_keys']) or 'line'})",
        f"{(subs['mrr'] == 0).sum():,} zero-MRR lines",
    ]
    if data.zero_length_lines:
        notes.append(f"{data.zero_length_lines:,} zero-length lines dropped")
    if data.currency:
        notes.append(f"currency {data.currency}")
    row(
        "subscriptions",
        len(subs) + data.zero_length_lines,
        subs["start_date"].min(),
        subs["start_date"].max(),
        subs["account_id"],
        "; ".join(notes),
    )
    if data.accounts is not None:
        accounts = data.accounts
        extra = [c for c in accounts.columns if c != "account_id"]
        row(
            "accounts",
            len(accounts),
            pd.NaT,
            pd.NaT,
            accounts["account_id"],
            f"{len(extra)} attribute columns"
            + (f": {', '.join(extra[:12])}" if extra else "")
            + ("..." if len(extra) > 12 else ""),
        )
    if data.usage is not None:
        stats = data.usage.query(
            "SELECT count(*) AS n, min(date) AS first, max(date) AS last, "
            "count(DISTINCT account_id) AS accounts FROM usage"
        )
        ids = data.usage.query("SELECT DISTINCT account_id FROM usage")["account_id"]
        metrics = data.usage.metrics
        row(
            "usage",
            stats["n"].iloc[0],
            stats["first"].iloc[0],
            stats["last"].iloc[0],
            ids,
            f"{len(metrics)} metrics: {', '.join(metrics[:10])}" + ("..." if len(metrics) > 10 else ""),
            stats["n"].iloc[0] / account_months,
        )
    for name, (frame, column) in _dated_tables(data).items():
        row(
            name,
            len(frame),
            frame[column].min(),
            frame[column].max(),
            frame["account_id"],
            "",
            len(frame) / account_months,
        )
    if data.cs_costs is not None:
        costs = data.cs_costs
        rows.append(
            {
                "table": "cs_costs",
                "rows": len(costs),
                "first_date": costs["month"].min(),
                "last_date": costs["month"].max(),
                "accounts": np.nan,
                "accounts_share": np.nan,
                "orphans": np.nan,
                "per_account_month": np.nan,
                "notes": "",
            }
        )
    return pd.DataFrame(rows).set_index("table")


def csm_coverage_gap(panel: pd.DataFrame) -> dict | None:
    """Share of churned and of active accounts with a CSM in the panel's ``csm_id`` (last month).

    When ``csm_id`` comes only from today's ``accounts`` table, a CSM cleared when the account
    churned makes churned accounts look uncovered: a large gap is a sign of it.
    """
    if "csm_id" not in panel:
        return None
    last = account_status(panel)
    active = ~last["churned"]
    has = last["csm_id"].notna()
    if active.all() or not active.any():
        return None
    return {
        "covered_active": float(has[active].mean()),
        "covered_churned": float(has[~active].mean()),
        "n_active": int(active.sum()),
        "n_churned": int((~active).sum()),
    }


def sanity_flags(data: CSData, panel: pd.DataFrame) -> list[str]:
    """Plain-word flags on things that look wrong in the export, each with its likely cause."""
    flags = []  # overlapping lines are a data warning (data_warnings), not repeated here
    if data.accounts is not None:
        for column in data.accounts.columns:
            text = data.accounts[column]
            if text.dtype != object:
                continue
            churned_word = (
                text.astype(str)
                .str.lower()
                .str.strip()
                .isin({"churned", "cancelled", "canceled", "closed lost", "lost", "inactive"})
            )
            if churned_word.sum() >= 5:
                # the flag was written when the export was taken: compare with the lines running on
                # the export's last date, not on an as-of that may lie before it
                ids = set(data.accounts.loc[churned_word, "account_id"])
                subs, last = data.subscriptions, data.last_date()
                running = subs[
                    (subs["start_date"] <= last)
                    & (subs["end_date"].isna() | (subs["end_date"] >= last))
                    & (subs["mrr"] > 0)
                ]
                contradict = len(ids & set(running["account_id"]))
                if contradict:
                    flags.append(
                        f"{column}: {contradict:,} accounts marked as churned still have a paid line "
                        f"running on the export's last date ({last:%Y-%m-%d}): the flag and the end "
                        "dates disagree (a churn recorded before the paid period ends, or a line "
                        "left open)"
                    )
    by_table = []
    months = panel["month"].dt.to_period("M")
    all_months = pd.period_range(months.min(), months.max(), freq="M")
    for name, (frame, column) in _dated_tables(data).items():
        seen = frame[column].dt.to_period("M").unique()
        missing = [m for m in all_months if m not in set(seen)]
        if len(frame) and 0 < len(missing) < len(all_months) and len(missing) >= 2:
            by_table.append(f"{name} ({len(missing)} of {len(all_months)} months without rows)")
    if data.usage is not None:
        seen = data.usage.query("SELECT DISTINCT date_trunc('month', date) AS m FROM usage WHERE date IS NOT NULL")["m"]
        seen = set(pd.to_datetime(seen).dt.to_period("M"))
        missing = [m for m in all_months if m not in seen]
        if 2 <= len(missing) < len(all_months):
            by_table.append(f"usage ({len(missing)} of {len(all_months)} months without rows)")
    if by_table:
        flags.append(
            "activity only in some months: " + ", ".join(by_table) + "; figures built on "
            "these tables treat the empty months as zero activity (an export limited in time?)"
        )
    return flags


def data_warnings(
    data: CSData,
    panel: pd.DataFrame,
    *,
    as_of_given: bool = False,
    left_out: list[dict] | None = None,
    overlap_threshold: float = 0.02,
) -> list[dict]:
    """What a reader must know before trusting the figures: ``[{"code", "message"}, ...]``.

    Parameters
    ----------
    data : CSData
    panel : DataFrame
        :func:`cslab.panel` at the as-of used.
    as_of_given : bool
        Whether the as-of was set explicitly (then a mid-month last date is the user's choice).
    left_out : list of dict, optional
        :meth:`cslab.leakage.AttributeScreen.records`.
    overlap_threshold : float, default 0.02
        Share of accounts with same-plan overlapping lines from which ``overlapping_lines`` is raised.

    Examples
    --------
    >>> [w["code"] for w in data_warnings(data, cslab.panel(data))]  # doctest: +SKIP
    []
    """
    from cslab import metrics

    out = []
    if data.zero_length_lines:
        out.append(
            {
                "code": "zero_length_lines",
                "message": f"{data.zero_length_lines:,} subscription lines end the day before they start "
                "(a plan replaced on its first day, as billing exports write it); they never ran "
                "and were dropped",
            }
        )
    overlaps = line_overlaps(data.subscriptions, panel.attrs.get("as_of"))
    if overlaps["share_accounts_same_plan_overlap"] > overlap_threshold:
        keys = "/".join(overlaps["same_plan_keys"]) or "line"
        out.append(
            {
                "code": "overlapping_lines",
                "message": f"{overlaps['share_accounts_same_plan_overlap']:.0%} of accounts "
                f"({overlaps['n_accounts_same_plan_overlap']:,}) hold lines of the same {keys} "
                "that overlap in time, and overlapping lines are summed into MRR; likely cause: "
                "the export keeps each replaced plan as an open line. Revenue figures are "
                "overstated until replaced lines are closed",
            }
        )
    n_months = history_months(panel)
    if n_months < YEAR_ON_YEAR_MONTHS:
        out.append(
            {
                "code": "short_history",
                "message": f"the book covers {n_months} month{'s' if n_months != 1 else ''}; NRR and GRR "
                f"need {YEAR_ON_YEAR_MONTHS} (a starting month and the 12 after it), so they are "
                "not reported; churn models and programme effects use what there is",
            }
        )
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StatisticalWarning)
            nrr = metrics.revenue_retention(panel, months=12)["nrr"]
        if pd.notna(nrr) and nrr > 2:
            cause = (
                "overlapping lines of the same plan are summed"
                if overlaps["share_accounts_same_plan_overlap"] > overlap_threshold
                else "check for lines left open after a plan change, or MRR in cents or yearly amounts"
            )
            out.append(
                {
                    "code": "implausible_nrr",
                    "message": f"NRR is {nrr:.0%}: above 200% is implausible for a subscription book; "
                    f"likely cause: {cause}",
                }
            )
    note = data.as_of_note()
    if note and not as_of_given:
        out.append({"code": "mid_month_as_of", "message": note[0].upper() + note[1:]})
    if left_out:
        columns = ", ".join(item["column"] for item in left_out)
        out.append(
            {
                "code": "leaky_attributes",
                "message": f"{len(left_out)} account column{'s' if len(left_out) != 1 else ''} left out of "
                f"the models as written at or after churn, or separating churners on "
                f"{'their' if len(left_out) != 1 else 'its'} own: {columns} (see 'Left out of "
                "the models'; keep one with -p include_attributes=COLUMN)",
            }
        )
    gap = csm_coverage_gap(panel)
    has_history = data.cs_activities is not None and "csm_id" in data.cs_activities
    if gap and not has_history and gap["covered_active"] - gap["covered_churned"] > 0.25:
        out.append(
            {
                "code": "csm_cleared_on_churn",
                "message": f"{gap['covered_active']:.0%} of active accounts have a CSM in accounts.csm_id "
                f"but only {gap['covered_churned']:.0%} of churned ones: the CRM probably "
                "clears the CSM when an account leaves, so CSM coverage of churned accounts is "
                "understated (a csm_id on cs_activities would give the CSM in force at the time)",
            }
        )
    return out


def data_warnings_snapshot(left_out: list[dict]) -> list[dict]:
    """The data warnings of a one-row-per-customer table: only the leakage guard applies."""
    if not left_out:
        return []
    columns = ", ".join(item["column"] for item in left_out)
    return [
        {
            "code": "leaky_attributes",
            "message": f"{len(left_out)} column{'s' if len(left_out) != 1 else ''} left out of the churn model "
            f"as written at or after churn, separating churners on their own, or the tenure in "
            f"disguise: {columns} (keep one with -p include_attributes=COLUMN)",
        }
    ]
