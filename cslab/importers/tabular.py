"""Subscription exports written as tables (the Stripe dashboard's CSV, Chargebee's export) into lines.

Both exports give one row per subscription, or per subscription item (an add-on, a second
price); every row becomes one line. The exports differ in their column names and status words,
which :class:`Columns` and :class:`Statuses` name; the rules are the same: a trial's days are not
paying days, a cancellation at the period's end ends the line at the period's end, a row without
a price is a problem, never a guess.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, fields

import pandas as pd

from cslab.importers.common import (
    LINE_COLUMNS,
    ImportOutcome,
    cell_moments,
    cell_numbers,
    last_paid_day,
    parse_interval,
    to_major,
    truthy,
)

__all__ = ["Columns", "Statuses", "rows_to_lines"]

_DAY = pd.Timedelta(days=1)


@dataclass
class Columns:
    """Which (normalised) column of an export holds each field; ``None`` when it has none."""

    subscription_id: str | None = None
    account_id: str | None = None
    plan: str | None = None
    product: str | None = None
    quantity: str | None = None
    currency: str | None = None
    interval: str | None = None
    interval_count: str | None = None
    unit_amount: str | None = None  # per unit and billing interval
    total_amount: str | None = None  # unit amount x quantity
    mrr: str | None = None  # the export's own monthly figure (a fallback only)
    status: str | None = None
    start: str | None = None
    trial_end: str | None = None
    period_end: str | None = None
    ended: str | None = None  # when the subscription ended (or will end, if scheduled)
    canceled_at: str | None = None
    cancel_at_period_end: str | None = None


@dataclass(frozen=True)
class Statuses:
    """The status words of an export, by what they mean for paying."""

    trial: frozenset = frozenset({"trialing", "in_trial"})
    never_paid: frozenset = frozenset({"incomplete", "incomplete_expired", "future"})
    ending: frozenset = frozenset({"non_renewing"})  # runs to its period's end, then stops
    ended: frozenset = frozenset({"canceled", "cancelled", "transferred"})
    paused: frozenset = frozenset({"paused"})


def _raw(frame: pd.DataFrame, column: str | None) -> str | None:
    return frame.attrs.get("raw_names", {}).get(column, column) if column else None


def rows_to_lines(
    frame: pd.DataFrame,
    cols: Columns,
    outcome: ImportOutcome,
    amounts: str = "major",
    currency: str | None = None,
    statuses: Statuses = Statuses(),
) -> pd.DataFrame | None:
    """One line per row of a subscription export; ``None`` (with the problems) when a row cannot be read.

    Parameters
    ----------
    frame : DataFrame
        The export, every cell as text, headers normalised (:func:`read_csv_text`).
    cols : Columns
        Where each field is.
    amounts : {"major", "minor"}
        Whether amounts are written in major units (``49.00``) or minor units (``4900`` cents).
    currency : str, optional
        The currency of every row when the export has no currency column.

    Examples
    --------
    >>> frame = pd.DataFrame({"id": ["sub_1"], "customer": ["cus_1"], "amount": ["120"], "interval": ["year"],
    ...     "currency": ["usd"], "start": ["2024-01-05"]})
    >>> cols = Columns("id", "customer", unit_amount="amount", interval="interval", currency="currency",
    ...     start="start")
    >>> rows_to_lines(frame, cols, ImportOutcome("x"))[["account_id", "amount", "interval"]].values.tolist()
    [['cus_1', 120.0, 'year']]
    """
    for f in fields(cols):  # a column named but absent is no column
        if getattr(cols, f.name) is not None and getattr(cols, f.name) not in frame.columns:
            setattr(cols, f.name, None)
    for need, name in ((cols.account_id, "customer id"), (cols.start, "start date")):
        if need is None:
            outcome.problem(f"no {name} column (looked for the export's documented names)")
    if cols.unit_amount is None and cols.total_amount is None and cols.mrr is None:
        outcome.problem("no price column (amount, unit price or mrr)")
    if cols.currency is None and currency is None:
        outcome.problem("no currency column: give --currency CODE")
    if not outcome.ok:
        return None

    n = len(frame)
    account = frame[cols.account_id].astype(str).str.strip()
    blank = account.eq("")
    if blank.any():
        outcome.problem(
            "empty customer id", column=_raw(frame, cols.account_id), lines=(blank[blank].index + 2).tolist()
        )
    start = cell_moments(frame, cols.start, outcome).dt.normalize()
    no_start = frame[cols.start].astype(str).str.strip().eq("") & ~blank  # unreadable ones are reported
    if no_start.any():
        outcome.problem(
            "empty start date", column=_raw(frame, cols.start), lines=(no_start[no_start].index + 2).tolist()
        )
    trial_end = cell_moments(frame, cols.trial_end, outcome)
    period_end = cell_moments(frame, cols.period_end, outcome)
    ended = cell_moments(frame, cols.ended, outcome)
    canceled_at = cell_moments(frame, cols.canceled_at, outcome)
    at_period_end = (
        truthy(frame[cols.cancel_at_period_end]) if cols.cancel_at_period_end else pd.Series(False, index=frame.index)
    )
    status = frame[cols.status].astype(str).str.strip().str.lower() if cols.status else pd.Series("", index=frame.index)
    codes = (
        frame[cols.currency].astype(str).str.strip().str.upper().replace("", currency.upper() if currency else "")
        if cols.currency
        else pd.Series(currency.upper(), index=frame.index)
    )
    quantity = (
        cell_numbers(frame, cols.quantity, outcome).fillna(1.0) if cols.quantity else pd.Series(1.0, index=frame.index)
    )
    unit = (
        cell_numbers(frame, cols.unit_amount, outcome)
        if cols.unit_amount
        else pd.Series(float("nan"), index=frame.index)
    )
    if cols.total_amount:
        total = cell_numbers(frame, cols.total_amount, outcome)
        unit = unit.fillna(total / quantity.where(quantity > 0))
    mrr = cell_numbers(frame, cols.mrr, outcome) if cols.mrr else pd.Series(float("nan"), index=frame.index)
    # rows already reported (an unreadable cell) are skipped below, so every problem shows at once
    reported = blank | start.isna() | unit.lt(0)
    if cols.unit_amount:
        reported |= unit.isna() & frame[cols.unit_amount].astype(str).str.strip().ne("")

    counts = Counter()
    rows, bad_interval, no_price, no_currency = [], [], [], []
    for i in range(n):
        if reported.iloc[i]:
            continue
        code, st = codes.iloc[i], status.iloc[i]
        if st in statuses.never_paid:
            counts["never_paid"] += 1
            continue
        if st in statuses.trial:
            counts["trialing"] += 1
            continue
        if not code:
            no_currency.append(i + 2)
            continue
        amount, interval = unit.iloc[i], None
        if pd.notna(amount):
            interval = parse_interval(
                frame[cols.interval].iloc[i] if cols.interval else None,
                frame[cols.interval_count].iloc[i] if cols.interval_count else None,
            )
            if interval is None:
                bad_interval.append(i + 2)
                continue
            amount = float(to_major(pd.Series([amount]), pd.Series([code]), amounts).iloc[0])
        elif pd.notna(mrr.iloc[i]) and st not in statuses.ended:
            # the export's own MRR, when no price is given (0 once a subscription is cancelled)
            amount = float(to_major(pd.Series([mrr.iloc[i]]), pd.Series([code]), amounts).iloc[0])
            interval, counts["mrr_used"] = ("month", 1), counts["mrr_used"] + 1
            quantity.iloc[i] = 1.0
        else:
            no_price.append(i + 2)
            continue
        first = start.iloc[i]
        if pd.notna(trial_end.iloc[i]) and trial_end.iloc[i].normalize() > first:
            counts["trial"] += 1
            first = trial_end.iloc[i].normalize()  # a trial's days are not paying days
        end = pd.NaT
        if pd.notna(ended.iloc[i]):
            end = last_paid_day(ended.iloc[i])
            if st in statuses.ended and pd.notna(period_end.iloc[i]) and ended.iloc[i] < period_end.iloc[i] - _DAY:
                counts["immediate"] += 1
            elif ended.iloc[i] > pd.Timestamp.now() or st in statuses.ending or at_period_end.iloc[i]:
                counts["at_period_end"] += 1
        elif (at_period_end.iloc[i] or st in statuses.ending) and pd.notna(period_end.iloc[i]):
            end = last_paid_day(period_end.iloc[i])
            counts["at_period_end"] += 1
        elif st in statuses.ended:
            end = last_paid_day(canceled_at.iloc[i] if pd.notna(canceled_at.iloc[i]) else period_end.iloc[i])
        elif st in statuses.paused:
            counts["paused"] += 1
            end = last_paid_day(period_end.iloc[i])
        rows.append(
            {
                "account_id": account.iloc[i],
                "subscription_id": frame[cols.subscription_id].iloc[i] if cols.subscription_id else f"row {i + 2}",
                "item": frame[cols.plan].iloc[i] if cols.plan else "",
                "start": first,
                "end": end,
                "amount": amount,
                "quantity": float(quantity.iloc[i]),
                "interval": interval[0],
                "interval_count": interval[1],
                "currency": code,
                "product": frame[cols.product].iloc[i] if cols.product else "",
                "plan": frame[cols.plan].iloc[i] if cols.plan else "",
                "src_line": i + 2,
            }
        )
    if bad_interval:
        outcome.problem(
            "billing interval not read (day, week, month or year)",
            column=_raw(frame, cols.interval),
            lines=bad_interval,
        )
    if no_price:
        outcome.problem(
            "no price (and no mrr for a running subscription)",
            column=_raw(frame, cols.unit_amount or cols.total_amount or cols.mrr),
            lines=no_price,
        )
    if no_currency:
        outcome.problem("empty currency", column=_raw(frame, cols.currency), lines=no_currency)
    if not outcome.ok:
        return None
    lines = pd.DataFrame(rows, columns=LINE_COLUMNS)
    _say(outcome, n, lines, counts, amounts, cols, currency)
    return lines


def _say(outcome, n_rows, lines, counts, amounts, cols, currency) -> None:
    several = lines.groupby("subscription_id").size().gt(1).sum() if len(lines) else 0
    outcome.note("mapped", f"rows -> {len(lines):,} subscription lines (one per row)", n_rows)
    outcome.note("mapped", "subscriptions with several rows (items or plan changes): one line each", int(several))
    outcome.note("dropped", "rows never paid (incomplete, or starting in the future)", counts["never_paid"])
    outcome.note("dropped", "rows still in trial (not paying yet)", counts["trialing"])
    outcome.note("mapped", "trials: the line starts at the trial's end (trial days are not paying)", counts["trial"])
    outcome.note("mapped", "cancellations at period end: the line ends at the period's end", counts["at_period_end"])
    outcome.note(
        "assumed",
        "rows cancelled before their paid period's end (the unused part taken as refunded or credited): "
        "the line ends the day before the cancellation",
        counts["immediate"],
    )
    outcome.note("assumed", "paused rows: unpaid after their current period", counts["paused"])
    outcome.note("assumed", "rows without a price read from the export's mrr (monthly)", counts["mrr_used"])
    unit = (
        "minor units (cents; zero-decimal currencies such as JPY as they are)"
        if amounts == "minor"
        else ("major units (49.00 is 49); --amounts minor if they are cents")
    )
    outcome.note("assumed", f"amounts in {unit}; dates in UTC; end_date = the last paid day")
    if cols.currency is None:
        outcome.note("assumed", f"every row in {currency.upper()} (--currency; the export has no currency column)")
