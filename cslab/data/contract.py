"""The data contract: which tables exist, their columns, and their pandera schemas.

Files are read with every column as text, so the schemas check the raw cells: a date that does
not parse, a number that is not a number, a negative MRR. Each check names the problem in words
that go straight into the validation report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pa

__all__ = [
    "TableSpec",
    "TABLES",
    "TABLE_NAMES",
    "COMPANION_FILES",
    "EARLIEST_DATE",
    "MAX_ABS_NUMBER",
    "parse_dates",
    "parse_numbers",
    "other_date_format",
    "schema_for",
    "as_id",
    "typed",
    "late_message",
    "EARLY_MESSAGE",
    "HUGE_MESSAGE",
    "DATE_FORMAT_MESSAGE",
]

# No subscription-business record predates 1980: earlier dates are placeholders (1900-01-01 is
# Excel's day zero, 1970-01-01 Unix's) or typos, and would silently stretch every tenure.
EARLIEST_DATE = pd.Timestamp("1980-01-01")
EARLY_MESSAGE = f"impossible date before {EARLIEST_DATE:%Y-%m-%d} (a placeholder such as 1900-01-01?)"
# From 1e15 on, float64 no longer holds every integer (2**53 ~ 9e15): 99999999999999999999 would
# silently become 1e20. No MRR, seat count or usage figure is that large; such a cell is a unit or
# export error. Infinity ("inf", "1e309") is caught by the same check.
MAX_ABS_NUMBER = 1e15
HUGE_MESSAGE = "number too large (1e15 or more, or infinite)"
DATE_FORMAT_MESSAGE = "date not written as YYYY-MM-DD"
# Dates written in another format: 15/01/2024, 01.15.2024, 15-Jan-2024, Jan 15, 2024. Day and month
# order cannot be told apart in general, so they are reported, not guessed.
OTHER_DATE_FORMAT = (
    r"^(\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{1,2}[ -][A-Za-z]{3,9}\.?[ -]\d{2,4}"
    r"|[A-Za-z]{3,9}\.? \d{1,2},? \d{4})( .*)?$"
)


@dataclass(frozen=True)
class TableSpec:
    """Columns of one table of the contract and how to read them."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    non_negative: tuple[str, ...] = ()
    not_empty: tuple[str, ...] = ()
    ids: tuple[str, ...] = ("account_id",)
    unique: tuple[str, ...] = ()
    ordered_dates: tuple[tuple[str, str], ...] = ()  # (earlier, later) where both are given
    events: tuple[str, ...] = ()  # dates of things that happened: not after the data's as-of
    keep_extra: bool = False
    description: str = field(default="", compare=False)


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in [
        TableSpec(
            "subscriptions",
            required=("account_id", "start_date", "end_date", "mrr"),
            optional=("product", "plan", "seats", "billing_period_months", "currency"),
            dates=("start_date", "end_date"),
            numbers=("mrr", "seats", "billing_period_months"),
            non_negative=("mrr", "seats", "billing_period_months"),
            not_empty=("account_id", "start_date", "mrr"),
            ordered_dates=(("start_date", "end_date"),),
            description="one row per subscription line; end_date is the last paid day",
        ),
        TableSpec(
            "accounts",
            required=("account_id",),
            optional=("name", "signup_date", "segment", "industry", "region", "csm_id", "employees"),
            dates=("signup_date",),
            numbers=("employees",),
            non_negative=("employees",),
            not_empty=("account_id",),
            ids=("account_id", "csm_id"),
            unique=("account_id",),
            keep_extra=True,
            description="one row per account; extra columns are kept as attributes",
        ),
        TableSpec(
            "usage",
            required=("account_id", "date", "metric", "value"),
            dates=("date",),
            numbers=("value",),
            not_empty=("account_id", "date", "metric"),
            events=("date",),
            description="long format usage; read and aggregated by DuckDB",
        ),
        TableSpec(
            "cs_activities",
            required=("account_id", "date", "activity_type"),
            optional=("hours", "csm_id"),
            dates=("date",),
            numbers=("hours",),
            non_negative=("hours",),
            not_empty=("account_id", "date", "activity_type"),
            ids=("account_id", "csm_id"),
            events=("date",),
        ),
        TableSpec(
            "tickets",
            required=("account_id", "opened_at"),
            optional=("closed_at", "priority", "csat"),
            dates=("opened_at", "closed_at"),
            numbers=("csat",),
            non_negative=("csat",),
            not_empty=("account_id", "opened_at"),
            ordered_dates=(("opened_at", "closed_at"),),
            events=("opened_at", "closed_at"),
        ),
        TableSpec(
            "outcomes",
            required=("account_id", "outcome", "committed_date"),
            optional=("target_date", "achieved_date"),
            dates=("committed_date", "target_date", "achieved_date"),
            not_empty=("account_id", "outcome", "committed_date"),
            events=("committed_date", "achieved_date"),
        ),
        TableSpec(
            "cs_costs",
            required=("month", "cost"),
            optional=("csm_headcount",),
            dates=("month",),
            numbers=("cost", "csm_headcount"),
            non_negative=("cost", "csm_headcount"),
            not_empty=("month", "cost"),
            ids=(),
        ),
    ]
}
TABLE_NAMES = tuple(TABLES)

# Files the synthetic generator writes beside the tables: known, not tables, not worth a warning.
COMPANION_FILES = frozenset({"truth.json", "truth_panel.csv", "README.md", "anonymize.key", "cslab.toml"})


_FLOAT = r"[+-]?(?:\d+\.?\d*|\.\d+)[eE][+-]?\d+"
_TIME_ZONE = r"(\d:\d\d(?::\d\d(?:\.\d+)?)?)\s*(?:Z|UTC|[+-]\d\d(?::?\d\d)?)$"


def _blank(values: pd.Series) -> pd.Series:
    if values.dtype != object and not pd.api.types.is_string_dtype(values.dtype):
        return values.isna()  # a typed column (Parquet dates, numbers) has no blank text
    return values.isna() | values.astype("string").str.strip().eq("")


def _text(values: pd.Series) -> bool:
    """Whether a column holds text only (as read from CSV), the case the quick parsers handle."""
    return values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) == "string"


def parse_dates(values: pd.Series) -> pd.Series:
    """Parse a column of dates written as ``2024-03-01``, ``2024-03-01 00:00:00`` or ``2024/03/01``.

    Blank cells become ``NaT``; so do cells that do not parse (the schema reports those).

    Examples
    --------
    >>> parse_dates(pd.Series(["2024/03/01", "2024-03-02 00:00:00", "", "soon"])).dt.day.tolist()
    [1.0, 2.0, nan, nan]
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.tz_localize(None) if getattr(values.dt, "tz", None) else values
    if _text(values):
        # The contract's YYYY-MM-DD first, at C speed; the clean-up only for the cells it misses.
        quick = pd.to_datetime(values, format="%Y-%m-%d", errors="coerce")
        missed = quick.isna() & values.notna()
        if missed.any():
            quick[missed] = _parse_date_text(values[missed])
        return quick
    return _parse_date_text(values)


def _parse_date_text(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip().str.replace("/", "-", regex=False)
    # A time zone is dropped, keeping the local date and time: a column mixing offsets (or
    # offsets and none) would otherwise not parse into one datetime column.
    timed = text.str.len().gt(10).fillna(False)  # only cells with a time can have a zone
    if timed.any():
        text[timed] = text[timed].str.replace(_TIME_ZONE, r"\1", regex=True)
    return pd.to_datetime(text.where(text.ne("")), format="ISO8601", errors="coerce")


def parse_numbers(values: pd.Series, decimal_comma: bool = False) -> pd.Series:
    """Parse a column of numbers; blank or non-numeric cells become ``NaN``.

    Examples
    --------
    >>> parse_numbers(pd.Series(["1.5", "", "x", "2,5"]), decimal_comma=True).tolist()
    [1.5, nan, nan, 2.5]
    """
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype(float)
    if _text(values) and not decimal_comma:
        # Plain numbers first, at C speed; the clean-up only for the cells that are not.
        quick = pd.to_numeric(values, errors="coerce").astype(float)
        missed = quick.isna() & values.notna()
        if missed.any():
            quick[missed] = _parse_number_text(values[missed], decimal_comma)
        return quick
    return _parse_number_text(values, decimal_comma)


def _parse_number_text(values: pd.Series, decimal_comma: bool) -> pd.Series:
    text = values.astype("string").str.strip()
    if decimal_comma:
        text = text.str.replace(",", ".", regex=False)
    out = pd.to_numeric(text.where(text.ne("")), errors="coerce").astype(float)
    # pandas gives up on numbers beyond float range (1e309); Python reads them as infinity,
    # which the contract then reports as too large rather than as "not a number".
    beyond = out.isna() & text.str.fullmatch(_FLOAT).fillna(False).astype(bool)
    if beyond.any():
        out[beyond] = text[beyond].map(float)
    return out


def other_date_format(values: pd.Series) -> pd.Series:
    """True where a cell is a date written in another format than YYYY-MM-DD (``15/01/2024``).

    Examples
    --------
    >>> other_date_format(pd.Series(["15/01/2024", "2024-01-15", "Jan 5, 2024", "soon"])).tolist()
    [True, False, True, False]
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.Series(False, index=values.index)
    text = values.astype("string").str.strip()
    return text.str.match(OTHER_DATE_FORMAT).fillna(False).astype(bool)


def late_message(limit: pd.Timestamp, as_of: pd.Timestamp | None) -> str:
    """The error for dates after ``limit``: the data's as-of (plus a month's grace) or today.

    Examples
    --------
    >>> late_message(pd.Timestamp("2024-07-31"), pd.Timestamp("2024-06-30"))
    "date after the data's as-of (2024-06-30; later than 2024-07-31)"
    """
    if as_of is None:
        return f"date in the future (after today, {limit:%Y-%m-%d})"
    return f"date after the data's as-of ({as_of:%Y-%m-%d}; later than {limit:%Y-%m-%d})"


def schema_for(
    spec: TableSpec,
    present: set[str],
    decimal_comma: bool = False,
    latest: pd.Timestamp | None = None,
    as_of: pd.Timestamp | None = None,
) -> pa.DataFrameSchema:
    """The pandera schema checking the raw (text) cells of one table.

    Required columns missing from the file are reported by pandera itself; optional columns are
    checked only when present. ``latest`` is the last date an event (``spec.events``) may have:
    the data's as-of ``as_of`` plus a month's grace, or today when that comes first (``as_of``
    then ``None``).
    """
    cache: dict[tuple[str, str], pd.Series] = {}

    def cached(s: pd.Series, kind: str, parse) -> pd.Series:
        # Each column is parsed once, whatever the checks (pandera hands nullable columns over
        # without their null cells, so the index must match too).
        key = (str(s.name), kind)
        if key not in cache or not cache[key].index.equals(s.index):
            cache[key] = parse(s)
        return cache[key]

    def dates(s: pd.Series) -> pd.Series:
        return cached(s, "dates", parse_dates)

    def numbers(s: pd.Series) -> pd.Series:
        return cached(s, "numbers", lambda v: parse_numbers(v, decimal_comma))

    def other_format(s: pd.Series) -> pd.Series:  # only cells that did not parse need a look
        def find(v: pd.Series) -> pd.Series:
            out = pd.Series(False, index=v.index)
            failed = dates(v).isna() & ~_blank(v)
            out[failed] = other_date_format(v[failed]).to_numpy(dtype=bool)
            return out

        return cached(s, "other", find)

    def parseable_date(s: pd.Series) -> pd.Series:
        return _blank(s) | dates(s).notna() | other_format(s)

    def iso_date(s: pd.Series) -> pd.Series:
        return ~other_format(s)

    def not_early(s: pd.Series) -> pd.Series:
        return ~(dates(s) < EARLIEST_DATE)

    def not_late(s: pd.Series) -> pd.Series:
        return ~(dates(s) > latest)

    def parseable_number(s: pd.Series) -> pd.Series:
        return _blank(s) | numbers(s).notna()

    def not_huge(s: pd.Series) -> pd.Series:
        return ~(numbers(s).abs() >= MAX_ABS_NUMBER)

    def not_negative(s: pd.Series) -> pd.Series:
        return ~(numbers(s) < 0)

    def filled(s: pd.Series) -> pd.Series:
        return ~_blank(s)

    columns: dict[str, pa.Column] = {}
    for name in spec.required + tuple(c for c in spec.optional if c in present):
        checks = []
        if name in spec.not_empty:
            checks.append(pa.Check(filled, error="empty"))
        if name in spec.dates:
            checks.append(pa.Check(parseable_date, error="unparseable date"))
            checks.append(pa.Check(iso_date, error=DATE_FORMAT_MESSAGE))
            checks.append(pa.Check(not_early, error=EARLY_MESSAGE))
            if name in spec.events and latest is not None:
                checks.append(pa.Check(not_late, error=late_message(latest, as_of)))
        if name in spec.numbers:
            checks.append(pa.Check(parseable_number, error="not a number"))
            checks.append(pa.Check(not_huge, error=HUGE_MESSAGE))
        if name in spec.non_negative:
            checks.append(pa.Check(not_negative, error="negative"))
        columns[name] = pa.Column(
            nullable=True,
            checks=checks,
            unique=name in spec.unique,
            required=name in spec.required,
            report_duplicates="all",
        )

    frame_checks = []
    for earlier, later in spec.ordered_dates:
        if earlier in present and later in present:
            # A subscription line ending the day before it starts is a zero-length line (a plan
            # replaced on its first day, as billing exports write it): dropped on loading, with a
            # note. An end earlier than that is an error.
            grace = pd.Timedelta(days=1 if spec.name == "subscriptions" else 0)

            def in_order(df: pd.DataFrame, a: str = earlier, b: str = later, grace: pd.Timedelta = grace) -> pd.Series:
                first, second = dates(df[a]), dates(df[b])
                return ~(second < first - grace)

            message = f"{later} before {earlier}" + (" by more than a day" if grace.days else "")
            frame_checks.append(pa.Check(in_order, error=message))
    return pa.DataFrameSchema(columns, checks=frame_checks, strict=False, coerce=False, name=spec.name)


_PROBE_CELLS = 50
_ISO_START = r"^\d{4}-\d{2}-\d{2}"


def as_id(values: pd.Series) -> pd.Series:
    """Ids as stripped text (``NaN`` where blank)."""
    text = values.astype("string").str.strip()
    return text.where(text.ne("")).astype(object)


def typed(frame: pd.DataFrame, spec: TableSpec, decimal_comma: bool = False) -> pd.DataFrame:
    """Convert a validated raw table to its types: ids as text, dates, numbers."""
    out = frame.copy()
    for column in out.columns:
        if column in spec.ids:
            out[column] = as_id(out[column])
        elif column in spec.dates:
            out[column] = parse_dates(out[column])
        elif column in spec.numbers:
            out[column] = parse_numbers(out[column], decimal_comma)
        elif pd.api.types.is_numeric_dtype(out[column]) and not pd.api.types.is_bool_dtype(out[column]):
            out[column] = out[column].astype(float)  # a typed extra number, as one read from text
        elif out[column].dtype == object:
            text = out[column].astype("string").str.strip()
            text = text.where(text.ne(""))
            filled = text.dropna()
            # An extra attribute that is entirely numeric becomes a number (a usable feature), one
            # entirely of ISO dates (created_date) a date. Its first cells rule out most text columns
            # (names, segments) before the whole column is parsed.
            head = filled.head(_PROBE_CELLS)
            numeric = len(filled) > 0 and parse_numbers(head, decimal_comma).notna().all()
            dated = len(filled) > 0 and not numeric and head.str.match(_ISO_START).all()
            numbers = parse_numbers(text, decimal_comma) if numeric else None
            dates = parse_dates(text) if dated and filled.str.match(_ISO_START).all() else None
            if numbers is not None and numbers.notna().sum() == len(filled):
                out[column] = numbers
            elif dates is not None and dates.notna().sum() == len(filled):
                out[column] = dates
            else:
                # np.nan, not pd.NA, for blanks: scikit-learn's imputers cannot compare pd.NA
                out[column] = text.astype(object).where(text.notna(), np.nan)
    return out
