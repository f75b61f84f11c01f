"""The data contract: which tables exist, their columns, and their pandera schemas.

Files are read with every column as text, so the schemas check the raw cells: a date that does
not parse, a number that is not a number, a negative MRR. Each check names the problem in words
that go straight into the validation report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import pandera.pandas as pa

__all__ = ["TableSpec", "TABLES", "TABLE_NAMES", "COMPANION_FILES", "parse_dates", "parse_numbers",
           "schema_for", "as_id", "typed"]


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
    keep_extra: bool = False
    description: str = field(default="", compare=False)


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in [
        TableSpec(
            "subscriptions",
            required=("account_id", "start_date", "end_date", "mrr"),
            optional=("product", "plan", "seats", "billing_period_months"),
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
        ),
        TableSpec(
            "outcomes",
            required=("account_id", "outcome", "committed_date"),
            optional=("target_date", "achieved_date"),
            dates=("committed_date", "target_date", "achieved_date"),
            not_empty=("account_id", "outcome", "committed_date"),
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
COMPANION_FILES = frozenset({"truth.json", "truth_panel.csv", "README.md", "anonymize.key"})


def _blank(values: pd.Series) -> pd.Series:
    return values.isna() | values.astype("string").str.strip().eq("")


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
    text = values.astype("string").str.strip().str.replace("/", "-", regex=False)
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
    text = values.astype("string").str.strip()
    if decimal_comma:
        text = text.str.replace(",", ".", regex=False)
    return pd.to_numeric(text.where(text.ne("")), errors="coerce").astype(float)


def schema_for(spec: TableSpec, present: set[str], decimal_comma: bool = False) -> pa.DataFrameSchema:
    """The pandera schema checking the raw (text) cells of one table.

    Required columns missing from the file are reported by pandera itself; optional columns are
    checked only when present.
    """

    def parseable_date(s: pd.Series) -> pd.Series:
        return _blank(s) | parse_dates(s).notna()

    def parseable_number(s: pd.Series) -> pd.Series:
        return _blank(s) | parse_numbers(s, decimal_comma).notna()

    def not_negative(s: pd.Series) -> pd.Series:
        return ~(parse_numbers(s, decimal_comma) < 0)

    def filled(s: pd.Series) -> pd.Series:
        return ~_blank(s)

    columns: dict[str, pa.Column] = {}
    for name in spec.required + tuple(c for c in spec.optional if c in present):
        checks = []
        if name in spec.not_empty:
            checks.append(pa.Check(filled, error="empty"))
        if name in spec.dates:
            checks.append(pa.Check(parseable_date, error="unparseable date"))
        if name in spec.numbers:
            checks.append(pa.Check(parseable_number, error="not a number"))
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

            def in_order(df: pd.DataFrame, a: str = earlier, b: str = later) -> pd.Series:
                first, second = parse_dates(df[a]), parse_dates(df[b])
                return ~(second < first)

            frame_checks.append(pa.Check(in_order, error=f"{later} before {earlier}"))
    return pa.DataFrameSchema(columns, checks=frame_checks, strict=False, coerce=False,
                              name=spec.name)


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
        elif out[column].dtype == object:
            text = out[column].astype("string").str.strip()
            text = text.where(text.ne(""))
            numbers = parse_numbers(text, decimal_comma)
            # An extra attribute that is entirely numeric becomes a number (a usable feature).
            if text.notna().any() and numbers.notna().sum() == text.notna().sum():
                out[column] = numbers
            else:
                out[column] = text.astype(object)
    return out

