"""What every importer shares: the run's outcome, money and interval arithmetic, dates, writing.

An importer turns an export into *lines*: one row per priced line of a subscription, with its
account, first paying day, last paid day, amount per billing interval (major units, after
discounts), quantity, interval and currency. :func:`contract_lines` turns them into the contract's
``subscriptions`` table (MRR per month) and :func:`write_folder` writes a folder only when it
passes :func:`cslab.data.validate`.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cslab.data.contract import TABLES
from cslab.data.validation import MAX_EXAMPLES, Problem

__all__ = [
    "ImportOutcome",
    "ZERO_DECIMAL",
    "THREE_DECIMAL",
    "minor_divisor",
    "months_per_interval",
    "parse_interval",
    "to_moment",
    "first_day",
    "last_paid_day",
    "normalise_header",
    "pick",
    "read_csv_text",
    "contract_lines",
    "write_folder",
    "LINE_COLUMNS",
]

# Stripe's zero-decimal currencies (docs.stripe.com/currencies#zero-decimal): amounts are already in
# major units (JPY 5000 is 5,000 yen). Chargebee follows ISO 4217, which agrees on these.
ZERO_DECIMAL = frozenset("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split())
# ISO 4217 currencies with three minor digits (docs.stripe.com/currencies#three-decimal).
THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())

#: columns of the importers' intermediate lines
LINE_COLUMNS = [
    "account_id",
    "subscription_id",
    "item",
    "start",
    "end",
    "amount",
    "quantity",
    "interval",
    "interval_count",
    "currency",
    "product",
    "plan",
    "src_line",
]


def minor_divisor(currency: str) -> int:
    """How many minor units make one major unit of ``currency`` (100 for USD, 1 for JPY).

    Examples
    --------
    >>> minor_divisor("usd"), minor_divisor("JPY"), minor_divisor("kwd")
    (100, 1, 1000)
    """
    code = str(currency).strip().upper()
    return 1 if code in ZERO_DECIMAL else 1000 if code in THREE_DECIMAL else 100


_MONTHS = {"day": 12 / 365, "week": 12 / 52, "month": 1.0, "year": 12.0}


def months_per_interval(interval: str, count: float = 1) -> float:
    """Length of a billing interval in months: a year is 12, a week 12/52, a day 12/365.

    Examples
    --------
    >>> months_per_interval("year"), months_per_interval("month", 3), round(months_per_interval("week"), 4)
    (12.0, 3.0, 0.2308)
    """
    return _MONTHS[interval] * float(count)


_WORDS = {
    "daily": ("day", 1),
    "weekly": ("week", 1),
    "biweekly": ("week", 2),
    "fortnightly": ("week", 2),
    "monthly": ("month", 1),
    "quarterly": ("month", 3),
    "semiannual": ("month", 6),
    "semiannually": ("month", 6),
    "half_yearly": ("month", 6),
    "yearly": ("year", 1),
    "annual": ("year", 1),
    "annually": ("year", 1),
}


def parse_interval(text: object, count: object = None) -> tuple[str, int] | None:
    """Read a billing interval written as ``month``, ``3 months``, ``every 2 weeks``, ``yearly``.

    ``count`` is a separate interval-count cell when the export has one. ``None`` when the text is
    not an interval.

    Examples
    --------
    >>> parse_interval("year"), parse_interval("every 3 months"), parse_interval("quarterly")
    (('year', 1), ('month', 3), ('month', 3))
    >>> parse_interval("month", "6"), parse_interval("soon")
    (('month', 6), None)
    """
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return None
    words = re.sub(r"[\s-]+", "_", str(text).strip().lower()).removeprefix("every_")
    if words in _WORDS:
        unit, n = _WORDS[words]
    else:
        found = re.fullmatch(r"(?:(\d+)_?)?(day|week|month|year)s?", words)
        if not found:
            return None
        unit, n = found.group(2), int(found.group(1) or 1)
    if count is not None and str(count).strip() not in ("", "nan", "None"):
        try:
            n *= int(float(str(count)))
        except ValueError:
            return None
    return (unit, n) if n > 0 else None


def to_moment(value: object) -> pd.Timestamp:
    """A timestamp from Unix seconds (or milliseconds), or from text such as ``2024-03-01 10:15``.

    Time zones are converted to UTC and dropped; blank or unreadable values are ``NaT``.

    Examples
    --------
    >>> to_moment(1709251200), to_moment("2024-03-01T23:30:00-02:00"), to_moment("")
    (Timestamp('2024-03-01 00:00:00'), Timestamp('2024-03-02 01:30:00'), NaT)
    """
    if value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return pd.NaT
    if isinstance(value, bool):
        return pd.NaT
    text = str(value).strip()
    if not text or text.lower() in ("nan", "none", "null"):
        return pd.NaT
    if re.fullmatch(r"\d+(\.\d+)?", text):
        number = float(text)
        # seconds until the year 5138; larger values are milliseconds (JavaScript, event logs)
        return pd.Timestamp(number, unit="ms" if number > 1e11 else "s")
    try:
        moment = pd.Timestamp(text.replace("/", "-") if re.match(r"^\d{4}/", text) else text)
    except (ValueError, OverflowError):
        return pd.NaT
    if moment.tzinfo is not None:
        moment = moment.tz_convert("UTC").tz_localize(None)
    return moment


def first_day(value: object) -> pd.Timestamp:
    """The calendar day (UTC) of a moment: a line starting at 2024-03-01 10:15 starts on 2024-03-01."""
    moment = to_moment(value)
    return moment.normalize() if pd.notna(moment) else pd.NaT


def last_paid_day(value: object) -> pd.Timestamp:
    """The last paid day of a period that ends at ``value``.

    Billing systems end a period at the moment the next one would start (Stripe's
    ``current_period_end``, ``ended_at``): a period ending 2024-04-01 00:00 was paid up to 2024-03-31.
    A period ending in the last minute of a day (``23:59:59``) was paid up to that day.

    Examples
    --------
    >>> last_paid_day(1711929600), last_paid_day("2024-03-31 23:59:59")
    (Timestamp('2024-03-31 00:00:00'), Timestamp('2024-03-31 00:00:00'))
    """
    moment = to_moment(value)
    if pd.isna(moment):
        return pd.NaT
    if moment.hour == 23 and moment.minute == 59:
        return moment.normalize()
    return (moment - pd.Timedelta(microseconds=1)).normalize()


def normalise_header(name: str) -> str:
    """A column name in one spelling: ``Current Period End (UTC)`` and ``subscriptions[mrr]`` alike.

    Examples
    --------
    >>> normalise_header("Current Period End (UTC)"), normalise_header("subscriptions[plan_id]")
    ('current_period_end', 'subscriptions_plan_id')
    """
    text = re.sub(r"\((utc|gmt)\)", "", str(name).strip().lower())
    text = re.sub(r"[^0-9a-z]+", "_", text)
    return text.strip("_")


def pick(frame: pd.DataFrame, *names: str) -> str | None:
    """The first of ``names`` (normalised spellings) that ``frame`` has as a column."""
    return next((n for n in names if n in frame.columns), None)


# The nouns notes start with, for a count of one.
_SINGULAR = {
    "subscriptions": "subscription",
    "rows": "row",
    "customers": "customer",
    "trials": "trial",
    "lines": "line",
    "events": "event",
    "cancellations": "cancellation",
    "amounts": "amount",
}


def note_coupons(frame: pd.DataFrame, outcome: ImportOutcome, *names: str) -> None:
    """Say how many rows of a CSV export carry a coupon: such exports name it, not its terms, so
    prices are taken before discount."""
    coupon = pick(frame, *names)
    if coupon:
        n = int(frame[coupon].astype(str).str.strip().ne("").sum())
        outcome.note(
            "assumed", "rows with a coupon: the export names the coupon, not its terms: prices taken before discount", n
        )


def read_csv_text(path: Path) -> pd.DataFrame:
    """Read a CSV export with every cell as text and headers normalised (the raw names in ``attrs``).

    A UTF-8 byte-order mark is skipped; blank cells are empty strings.
    """
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", skipinitialspace=False)
    raw = list(frame.columns)
    frame.columns = [normalise_header(c) for c in raw]
    frame.attrs["raw_names"] = dict(zip(frame.columns, raw))
    return frame


# --------------------------------------------------------------------------------------------
# The outcome of a run: what was mapped, dropped and assumed; the problems
# --------------------------------------------------------------------------------------------
@dataclass
class ImportOutcome:
    """What an import did, line by line, and every problem that stopped it.

    Examples
    --------
    >>> outcome = ImportOutcome("subs.jsonl")
    >>> outcome.note("dropped", "subscriptions still in trial", 2)
    >>> outcome.lines()
    ['dropped: 2 subscriptions still in trial']
    """

    source: str
    notes: list[tuple[str, str]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def note(self, kind: str, text: str, count: int | None = None) -> None:
        """Record a ``mapped``, ``dropped`` or ``assumed`` line (nothing when ``count`` is 0)."""
        if count == 0:
            return
        if count == 1:  # "1 customer", not "1 customers"
            first, _, rest = text.partition(" ")
            word = first.rstrip(":,")
            text = f"{_SINGULAR.get(word, word)}{first[len(word) :]} {rest}".rstrip()
        self.notes.append((kind, f"{count:,} {text}" if count is not None else text))

    def problem(
        self,
        message: str,
        column: str | None = None,
        lines: list[int] | None = None,
        file: str | None = None,
        n_rows: int | None = None,
    ) -> None:
        """Record a problem; ``lines`` are 1-based line numbers of the source file (all of them, or
        the first few with their total in ``n_rows``)."""
        found = sorted(set(lines or []))
        n_rows = n_rows if n_rows is not None else (len(found) if lines is not None else None)
        self.problems.append(
            Problem(file or Path(self.source).name, message, column, n_rows, tuple(found[:MAX_EXAMPLES]))
        )

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    def lines(self) -> list[str]:
        """The notes as printed: ``kind: text``."""
        return [f"{kind}: {text}" for kind, text in self.notes]


# --------------------------------------------------------------------------------------------
# Lines -> the contract's subscriptions table
# --------------------------------------------------------------------------------------------
def _merge_runs(lines: pd.DataFrame) -> pd.DataFrame:
    """Join consecutive lines of one item that carry the same MRR (a repeated copy, not a change)."""
    lines = lines.sort_values(["subscription_id", "item", "start"], kind="stable").reset_index(drop=True)
    same = (
        lines["subscription_id"].eq(lines["subscription_id"].shift())
        & lines["item"].eq(lines["item"].shift())
        & np.isclose(lines["mrr"], lines["mrr"].shift().fillna(-1))
        & lines["start"].eq(lines["end"].shift() + pd.Timedelta(days=1))
    )
    run = (~same).cumsum()
    last = lines.index.to_series().groupby(run).max()  # groupby().last() would skip a running NaT
    first = lines[~same].copy()
    first["end"] = lines.loc[last.to_numpy(), "end"].to_numpy()
    return first.reset_index(drop=True)


def contract_lines(
    lines: pd.DataFrame,
    outcome: ImportOutcome,
    currency: str | None = None,
    rates: dict[str, float] | None = None,
    currency_column: str = "currency",
) -> pd.DataFrame | None:
    """Turn importer lines into the ``subscriptions`` table: MRR per month, one currency, no $0 line.

    MRR is the amount per interval x quantity / the interval in months (a yearly price / 12, a
    weekly price x 52 / 12). Lines in other currencies than ``currency`` (default: the most common
    one) are converted with ``rates`` (units of ``currency`` per unit of the other); without a
    rate they are a problem, since MRR in several currencies cannot be added.

    Examples
    --------
    >>> lines = pd.DataFrame([dict(account_id="a", subscription_id="s", item="p", src_line=1,
    ...     start=pd.Timestamp("2024-01-01"), end=pd.NaT, amount=1200.0, quantity=2, interval="year",
    ...     interval_count=1, currency="USD", product="", plan="pro")])
    >>> contract_lines(lines, ImportOutcome("x"))["mrr"].tolist()
    [200.0]
    """
    lines = lines.copy()
    lines["currency"] = lines["currency"].astype(str).str.strip().str.upper()
    months = [months_per_interval(u, c) for u, c in zip(lines["interval"], lines["interval_count"])]
    lines["billing_period_months"] = np.round(months, 4)
    lines["mrr"] = lines["amount"].astype(float) * lines["quantity"].astype(float) / np.array(months, dtype=float)
    counts = lines["currency"].value_counts()
    if len(counts) > 1 or (currency and len(counts) and counts.index[0] != currency.upper()):
        target = (currency or counts.index[0]).upper()
        rates = {k.upper(): v for k, v in (rates or {}).items()}
        missing = [c for c in counts.index if c != target and c not in rates]
        if missing:
            listed = ", ".join(f"{c} ({n:,} lines)" for c, n in counts.items())
            outcome.problem(
                f"subscriptions in {len(counts)} currencies: {listed}; MRR in several currencies cannot be "
                f"added: give --rate CODE=RATE ({target} per unit) for {', '.join(missing)}",
                column=currency_column,
                lines=lines.loc[lines["currency"].isin(missing), "src_line"].tolist(),
            )
            return None
        for code in counts.index:
            if code != target:
                rate = rates[code]
                chosen = lines["currency"].eq(code)
                lines.loc[chosen, "mrr"] *= rate
                lines.loc[chosen, "currency"] = target
                outcome.note("assumed", f"{code} converted to {target} at {rate:g} {target} per {code}")
    lines["mrr"] = lines["mrr"].round(4)
    free = lines["mrr"].le(0)
    outcome.note("dropped", "$0 lines (free prices or 100% discounts: not paying)", int(free.sum()))
    lines = lines[~free]
    never = lines["end"].notna() & (lines["end"] < lines["start"])
    outcome.note("dropped", "lines that ended before their first paying day (never paid)", int(never.sum()))
    lines = lines[~never]
    if lines.empty:
        return lines
    lines = _merge_runs(lines)
    return pd.DataFrame(
        {
            "account_id": lines["account_id"].astype(str),
            "start_date": lines["start"].dt.strftime("%Y-%m-%d"),
            "end_date": lines["end"].dt.strftime("%Y-%m-%d").fillna(""),
            "mrr": lines["mrr"],
            "product": lines["product"].fillna("").astype(str),
            "plan": lines["plan"].fillna("").astype(str),
            "seats": lines["quantity"].astype(float),
            "billing_period_months": lines["billing_period_months"],
            "currency": lines["currency"],
            "subscription_id": lines["subscription_id"].astype(str),
        }
    ).sort_values(["account_id", "start_date", "subscription_id"], kind="stable")


# --------------------------------------------------------------------------------------------
# Writing: into a staging folder, validated, then moved into place
# --------------------------------------------------------------------------------------------
def _table_file(folder: Path, table: str) -> Path | None:
    for suffix in (".csv", ".csv.gz", ".parquet"):
        if (folder / f"{table}{suffix}").exists():
            return folder / f"{table}{suffix}"
    return None


def write_folder(out: Path, tables: dict[str, pd.DataFrame], outcome: ImportOutcome, force: bool = False) -> bool:
    """Write ``tables`` into the data folder ``out`` only if the result passes ``cslab validate``.

    The files are written into a staging folder beside ``out`` together with links to the tables
    ``out`` already holds, validated there as one folder, and moved into ``out`` only when valid:
    a failed run writes nothing. An existing table is replaced only with ``force``.
    """
    from cslab.data import validate

    out = Path(out)
    if out.exists() and not out.is_dir():
        outcome.problem("exists and is not a folder", file=str(out))
        return False
    existing = {t: _table_file(out, t) for t in TABLES} if out.is_dir() else {}
    clashes = [str(p.name) for t, p in existing.items() if t in tables and p is not None]
    if clashes and not force:
        outcome.problem(f"already holds {', '.join(clashes)}; give --force to replace", file=str(out))
        return False
    parent = out if out.is_dir() else out.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".cslab-import-", dir=parent))
    try:
        for name, frame in tables.items():
            frame.to_csv(staging / f"{name}.csv", index=False, float_format="%.10g")
        for name, path in existing.items():
            if path is not None and name not in tables:
                try:
                    os.symlink(path.resolve(), staging / path.name)
                except OSError:  # no symlinks on this file system: validate a copy
                    shutil.copy2(path, staging / path.name)
        report = validate(staging)
        errors = report.errors
        if "subscriptions" not in tables and existing.get("subscriptions") is None:
            # an event log alone gives no subscriptions: check what was written, say what is missing
            errors = [p for p in errors if "no subscriptions file" not in p.message]
            outcome.note("assumed", f"{out} has no subscriptions table yet: import one before running the kit")
        if errors:
            # a problem of the folder itself names the staging folder: name the one asked for
            outcome.problems.extend(
                Problem(str(out), p.message, p.column, p.n_rows, p.lines) if p.file == str(staging) else p
                for p in errors
            )
            return False
        for problem in report.warnings:
            outcome.note("note", problem.format().split(": ", 1)[1])
        out.mkdir(parents=True, exist_ok=True)
        for name in tables:
            old = existing.get(name)
            if old is not None and old.name != f"{name}.csv":
                old.unlink()  # a replaced subscriptions.parquet would be a second file for the table
            os.replace(staging / f"{name}.csv", out / f"{name}.csv")
        return True
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Reading the cells of CSV exports, with a problem for every cell that cannot be read
# --------------------------------------------------------------------------------------------
def _file_lines(mask: pd.Series) -> list[int]:
    return (mask[mask].index + 2).tolist()  # the header is line 1


def cell_numbers(frame: pd.DataFrame, column: str, outcome: ImportOutcome, negative_ok: bool = False) -> pd.Series:
    """A column of numbers (blank is NaN); a problem for cells that are not numbers or are negative."""
    text = frame[column].astype(str).str.strip().str.replace(",", "", regex=False)
    text = text.str.replace(r"^[$€£¥]", "", regex=True)  # a currency sign is formatting, not data
    values = pd.to_numeric(text.where(text.ne("")), errors="coerce")
    raw = frame.attrs.get("raw_names", {}).get(column, column)
    bad = values.isna() & text.ne("")
    if bad.any():
        outcome.problem("not a number", column=raw, lines=_file_lines(bad))
    if not negative_ok and values.lt(0).any():
        outcome.problem(
            "negative amount (a credit or refund is not a subscription line)",
            column=raw,
            lines=_file_lines(values.lt(0)),
        )
    return values


def cell_moments(frame: pd.DataFrame, column: str | None, outcome: ImportOutcome) -> pd.Series:
    """A column of timestamps (Unix seconds or dates with times; blank is NaT); a problem for the rest."""
    if column is None:
        return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    text = frame[column].astype(str).str.strip()
    values = text.map(to_moment)
    bad = values.isna() & text.ne("")
    if bad.any():
        raw = frame.attrs.get("raw_names", {}).get(column, column)
        outcome.problem("not a date", column=raw, lines=_file_lines(bad))
    return pd.to_datetime(values)


def truthy(values: pd.Series) -> pd.Series:
    """``true``/``yes``/``1`` cells as True (an export's boolean column)."""
    return values.astype(str).str.strip().str.lower().isin(["true", "yes", "1", "t", "y"])


def to_major(amount: pd.Series, currency: pd.Series, amounts: str) -> pd.Series:
    """Amounts in major units: divided by the currency's minor units when ``amounts`` is ``minor``."""
    if amounts != "minor":
        return amount
    return amount / currency.map(minor_divisor).astype(float)
