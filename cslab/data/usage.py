"""The ``usage`` table's checks, run by DuckDB straight from the file (it may hold tens of
millions of rows): columns, dates, numbers, empty ids, late rows, and the file's layout when
DuckDB cannot read it."""

from __future__ import annotations

import bisect
import csv
import functools
import gzip
import re

import duckdb
import pandas as pd

from cslab import duck
from cslab.data.contract import (
    DATE_FORMAT_MESSAGE,
    EARLIEST_DATE,
    EARLY_MESSAGE,
    HUGE_MESSAGE,
    MAX_ABS_NUMBER,
    OTHER_DATE_FORMAT,
    TABLES,
    late_message,
)
from cslab.data.reading import _not_utf8_stream, date_format_message
from cslab.data.tables import UsageTable
from cslab.data.validation import MAX_EXAMPLES, ValidationReport, shown


def _today() -> pd.Timestamp:
    return pd.Timestamp.today().normalize()


def _raw_with_types(usage: UsageTable) -> str:
    """SQL: the usage rows numbered from 0, with the date (``ts``) and value (``x``) parsed and
    ``other`` true for a date written in another format."""
    number = "replace(trim(value), ',', '.')" if usage.decimal_comma else "trim(value)"
    parsed = "TRY_CAST(replace(trim(date), '/', '-') AS TIMESTAMP)"
    other = OTHER_DATE_FORMAT.replace("'", "''")
    return (
        f"SELECT row_number() OVER () - 1 AS row, *, {parsed} AS ts, "
        f"TRY_CAST({number} AS DOUBLE) AS x, CASE WHEN {parsed} IS NULL "
        f"THEN coalesce(regexp_matches(trim(date), '{other}'), false) ELSE false END AS other "
        f"FROM {usage.raw_sql()}"
    )


def _check_usage(usage: UsageTable, report: ValidationReport) -> tuple[bool, pd.Series | None]:
    """Check the usage file in DuckDB: columns, dates, numbers, empty ids.

    Returns whether it is usable and its rows per month (for the data's as-of), from the same
    scan. Dates after the as-of are checked afterwards, by :func:`_late_usage`.
    """
    file = usage.name
    with duck.connect() as con:
        try:
            columns = [c.strip() for c in con.sql(f"SELECT * FROM {usage.raw_sql()} LIMIT 0").columns]
        except duckdb.Error as exc:
            _unreadable_usage(usage, exc, report)
            return False, None
        missing = [c for c in TABLES["usage"].required if c not in columns]
        for column in missing:
            report.add(file, "required column missing", column=column)
        if missing:
            return False, None
        checks = {
            ("account_id", "empty"): "coalesce(trim(account_id), '') = ''",
            ("metric", "empty"): "coalesce(trim(metric), '') = ''",
            ("date", "empty"): "coalesce(trim(date), '') = ''",
            ("date", "unparseable date"): "trim(date) <> '' AND ts IS NULL AND NOT other",
            ("date", DATE_FORMAT_MESSAGE): "other",
            ("date", EARLY_MESSAGE): f"ts < TIMESTAMP '{EARLIEST_DATE:%Y-%m-%d}'",
            ("value", "not a number"): "trim(value) <> '' AND (x IS NULL OR isnan(x))",
            ("value", HUGE_MESSAGE): f"NOT isnan(x) AND abs(x) >= {MAX_ABS_NUMBER!r}",
            ("account_id", "padded"): "account_id <> trim(account_id) AND trim(account_id) <> ''",
        }
        # One scan of the file for every check; examples with min_by(row, row, 5) so that a
        # file with millions of bad rows still costs no memory.
        selects = ", ".join(
            f"count(*) FILTER (WHERE {cond}), min_by(row, row, 5) FILTER (WHERE {cond})" for cond in checks.values()
        )
        try:
            month = "strftime(date_trunc('month', ts), '%Y-%m')"
            result = con.execute(
                f"WITH raw AS ({_raw_with_types(usage)}) "
                f"SELECT count(*), count(ts), arg_min(trim(date), row) FILTER (WHERE other), "
                f"histogram({month}) FILTER (WHERE ts >= TIMESTAMP '{EARLIEST_DATE:%Y-%m-%d}' "
                f"AND ts <= TIMESTAMP '{_today():%Y-%m-%d}'), {selects} FROM raw"
            ).fetchone()
            usage.n_rows, n_dates, example = result[0], result[1], result[2]
            months = pd.Series({pd.Period(m, "M"): n for m, n in dict(result[3] or {}).items()}, dtype=float)
            for i, (column, message) in enumerate(checks):
                n, rows = result[4 + 2 * i], result[5 + 2 * i]
                if not n:
                    continue
                rows = _file_rows(usage, rows)
                if message == "padded":
                    report.add(
                        file,
                        "ids padded with spaces; spaces removed",
                        column=column,
                        rows=rows,
                        n_rows=n,
                        severity="fixed",
                    )
                    continue
                if message == DATE_FORMAT_MESSAGE:
                    message = date_format_message(example, n_dates > 0)
                report.add(file, message, column=column, rows=rows, n_rows=n)
            usage.metrics = tuple(
                r[0]
                for r in con.execute(
                    f"SELECT DISTINCT trim(metric) FROM {usage.raw_sql()} "
                    "WHERE coalesce(trim(metric), '') <> '' ORDER BY 1"
                ).fetchall()
            )
        except duckdb.Error as exc:
            _unreadable_usage(usage, exc, report)
            return False, None
    if usage.n_rows == 0:
        report.add(file, "has a header but no data rows")
        return False, None
    return True, months


def _late_usage(
    usage: UsageTable, months: pd.Series, latest: pd.Timestamp, as_of: pd.Timestamp | None, report: ValidationReport
) -> None:
    """Usage dated after ``latest``; the file is scanned again only when the month counts say
    some rows may be."""
    if not (months.index >= latest.to_period("M")).any():
        return
    with duck.connect() as con:
        n, rows = con.execute(
            f"WITH raw AS ({_raw_with_types(usage)}) SELECT count(*), min_by(row, row, 5) "
            f"FROM raw WHERE ts > TIMESTAMP '{latest:%Y-%m-%d %H:%M:%S}'"
        ).fetchone()
    if n:
        report.add(usage.name, late_message(latest, as_of), column="date", rows=_file_rows(usage, rows), n_rows=n)


@functools.lru_cache(maxsize=4)
def _empty_lines(path: str, mtime_ns: int, size: int) -> tuple[int, ...]:
    """Line numbers of the empty lines of a CSV, which DuckDB skips without counting them."""
    opener = gzip.open if path.lower().endswith(".gz") else open
    with opener(path, "rb") as handle:
        return tuple(n for n, raw in enumerate(handle, 1) if raw in (b"\n", b"\r\n"))


def _file_rows(usage: UsageTable, rows: list[int] | None) -> list[int]:
    """DuckDB's row positions (0 = first data row, empty lines not counted) as file positions
    (line - 2), so that a report names the lines an editor shows. Read only when there is
    something to report."""
    if not rows or not usage.text_file:  # Parquet, a folder of parts, a DuckDB table: positions are rows
        return list(rows or [])
    stat = usage.path.stat()
    blanks = _empty_lines(str(usage.path), stat.st_mtime_ns, stat.st_size)
    if not blanks:
        return list(rows)
    out = []
    for row in rows:
        skipped = 0
        while True:  # the row's line, counting the empty lines before it
            line = row + 2 + skipped
            before = bisect.bisect_right(blanks, line)
            if before == skipped:
                break
            skipped = before
        out.append(line - 2)
    return out


def _usage_layout(usage: UsageTable, report: ValidationReport) -> bool:
    """What DuckDB could not read in a usage CSV, found by streaming it once: rows with more or
    fewer cells than the header, a quote never closed, lines of spaces. True when reported."""
    if not usage.text_file:
        return False
    file = usage.name
    opener = gzip.open if usage.path.name.lower().endswith(".gz") else open
    found: dict[str, list[int]] = {"wide": [], "short": [], "spaces": []}
    counts = dict.fromkeys(found, 0)
    width, line = None, 1
    try:
        with opener(usage.path, "rt", encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, delimiter=usage.delimiter, strict=True)
            for record in reader:
                start, line = line, reader.line_num + 1
                if not record:
                    continue
                kind = None
                if len(record) == 1 and not record[0].strip():
                    kind = "spaces"
                elif width is None:
                    width = len(record)
                elif len(record) != width:
                    kind = "wide" if len(record) > width else "short"
                if kind:
                    counts[kind] += 1
                    if len(found[kind]) < MAX_EXAMPLES:
                        found[kind].append(start - 2)
    except csv.Error as exc:
        unclosed = "end of data" in str(exc) or "field larger" in str(exc)
        report.add(
            file,
            "quote never closed (the rest of the file reads as one cell)"
            if unclosed
            else f"malformed quoting ({shown(exc, 60)})",
            rows=[line - 2],
        )
        return True
    except (OSError, EOFError, UnicodeDecodeError):
        return False
    messages = {
        "wide": f"more cells than the header's {width} (a separator inside an unquoted value?)",
        "short": f"fewer cells than the header's {width}",
        "spaces": "lines holding only spaces; remove them",
    }
    for kind, message in messages.items():
        if counts[kind]:
            report.add(file, message, rows=found[kind], n_rows=counts[kind])
    return any(counts.values())


def _unreadable_usage(usage: UsageTable, exc: Exception, report: ValidationReport) -> None:
    """Say why DuckDB could not read the usage file: bytes that are not UTF-8, rows of another
    width, a quote never closed, or else DuckDB's own first line."""
    text = str(exc).lower()
    if ("unicode" in text or "utf" in text) and usage.text_file and _not_utf8_stream(usage.path, report):
        return
    if not _usage_layout(usage, report):
        _duckdb_problem(usage.name, exc, report)


def _duckdb_problem(file: str, exc: Exception, report: ValidationReport) -> None:
    """One line for a file DuckDB cannot read (encoding, layout), with the line when it says."""
    text = str(exc)
    line = re.search(r"\b[Ll]ine:? (\d+)", text)
    at = f" near line {line.group(1)}" if line else ""
    if "unicode" in text.lower() or "utf" in text.lower():
        report.add(file, f"is not valid UTF-8{at}; save it as UTF-8")
    elif "column" in text.lower() and "expected" in text.lower():
        report.add(file, f"rows with another number of cells than the header{at}")
    else:
        report.add(file, f"cannot be read ({shown(text.splitlines()[0], 120)})")
