"""Reading a data folder: files -> validated, typed tables.

Every problem of every file is collected into one :class:`ValidationReport`; nothing is raised
until the whole folder has been read. Files are opened read-only and never modified. The
``usage`` table, which may hold tens of millions of rows, stays on disk: DuckDB checks and
aggregates it straight from the file.
"""

from __future__ import annotations

import bisect
import csv
import functools
import gzip
import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import pandera.pandas as pa

from cslab.data.contract import (COMPANION_FILES, DATE_FORMAT_MESSAGE, EARLIEST_DATE, EARLY_MESSAGE,
                                 HUGE_MESSAGE, MAX_ABS_NUMBER, OTHER_DATE_FORMAT, TABLE_NAMES, TABLES,
                                 TableSpec, as_id, late_message, parse_dates, schema_for, typed)
from cslab.data.roles import SETTINGS_FILE, MetricRoles, detect_roles, parse_roles, read_settings
from cslab.data.validation import MAX_EXAMPLES, ValidationReport, shown
from cslab.errors import DataValidationError

__all__ = ["CSData", "UsageTable", "load", "validate", "SUFFIXES"]

SUFFIXES = (".csv", ".csv.gz", ".parquet")
#: A month whose latest observed date falls in its last this-many days counts as complete.
COMPLETE_MONTH_DAYS = 7
_SNIFF_BYTES = 1 << 16


# --------------------------------------------------------------------------------------------
# The loaded data
# --------------------------------------------------------------------------------------------
@dataclass
class UsageTable:
    """The ``usage`` table, left on disk and queried with DuckDB.

    Parameters
    ----------
    path : Path
        The CSV or Parquet file.
    delimiter : str
        The CSV separator (ignored for Parquet).
    decimal_comma : bool
        Whether numbers are written with a decimal comma.
    """

    path: Path
    delimiter: str = ","
    decimal_comma: bool = False
    n_rows: int = 0
    metrics: tuple[str, ...] = ()

    def relation_sql(self) -> str:
        """SQL selecting the table with typed columns (account_id, date, metric, value)."""
        value = "replace(trim(value), ',', '.')" if self.decimal_comma else "trim(value)"
        return (
            "SELECT trim(account_id) AS account_id, "
            "TRY_CAST(replace(trim(date), '/', '-') AS TIMESTAMP) AS date, "
            f"trim(metric) AS metric, TRY_CAST({value} AS DOUBLE) AS value FROM {self.raw_sql()}"
        )

    def raw_sql(self) -> str:
        """SQL reading the file with every column as text."""
        path = str(self.path).replace("'", "''")
        if self.path.name.endswith(".parquet"):
            return (f"(SELECT CAST(account_id AS VARCHAR) AS account_id, CAST(date AS VARCHAR) AS date,"
                    f" CAST(metric AS VARCHAR) AS metric, CAST(value AS VARCHAR) AS value"
                    f" FROM read_parquet('{path}'))")
        delim = self.delimiter.replace("'", "''")
        return f"read_csv('{path}', delim='{delim}', header=true, all_varchar=true, quote='\"')"

    def monthly(self, as_of: str | pd.Timestamp | None = None, agg: str = "mean") -> pd.DataFrame:
        """Usage aggregated to account x month x metric, in DuckDB.

        Parameters
        ----------
        as_of : date, optional
            Rows dated after it are ignored (no peeking past the analysis date).
        agg : {"mean", "sum", "max"}
            How the rows of one month are combined. ``mean`` suits levels (active users) sampled
            at any frequency; ``sum`` suits counts logged per event or per day.

        Returns
        -------
        DataFrame with ``account_id``, ``month`` (first day), ``metric``, ``value``.

        Examples
        --------
        >>> data = load("data/demo")  # doctest: +SKIP
        >>> data.usage.monthly(as_of="2025-06-30").head()  # doctest: +SKIP
        """
        if agg not in {"mean", "sum", "max"}:
            raise ValueError(f"agg must be 'mean', 'sum' or 'max', not {agg!r}")
        # Exact decimal sums: DuckDB adds doubles in parallel in no fixed order, so avg/sum over
        # millions of rows can differ in the last bits between runs; decimals (values are below
        # 1e15, checked on loading) make the panel, and every figure after it, reproducible.
        fn = {"mean": "avg", "sum": "sum", "max": "max"}[agg]
        value = "value" if agg == "max" else "CAST(value AS DECIMAL(38, 9))"
        where = "date IS NOT NULL AND value IS NOT NULL"
        if as_of is not None:
            where += f" AND date <= TIMESTAMP '{pd.Timestamp(as_of):%Y-%m-%d %H:%M:%S}'"
        sql = (f"SELECT account_id, date_trunc('month', date) AS month, metric, "
               f"CAST({fn}({value}) AS DOUBLE) AS value "
               f"FROM ({self.relation_sql()}) WHERE {where} GROUP BY ALL ORDER BY ALL")
        with duckdb.connect() as con:
            out = con.sql(sql).df()
        out["month"] = pd.to_datetime(out["month"]).astype("datetime64[ns]")
        return out

    def query(self, sql: str) -> pd.DataFrame:
        """Run SQL against the typed table, available as ``usage``.

        Examples
        --------
        >>> data.usage.query("SELECT metric, count(*) AS n FROM usage GROUP BY metric")  # doctest: +SKIP
        """
        with duckdb.connect() as con:
            con.sql(f"CREATE VIEW usage AS {self.relation_sql()}")
            return con.sql(sql).df()


@dataclass
class CSData:
    """The tables of one data folder, validated and typed; absent optional tables are ``None``.

    Examples
    --------
    >>> data = load("data/demo")  # doctest: +SKIP
    >>> data.tables  # doctest: +SKIP
    ('subscriptions', 'accounts', 'usage', ...)
    """

    subscriptions: pd.DataFrame | None = None
    accounts: pd.DataFrame | None = None
    usage: UsageTable | None = None
    cs_activities: pd.DataFrame | None = None
    tickets: pd.DataFrame | None = None
    outcomes: pd.DataFrame | None = None
    cs_costs: pd.DataFrame | None = None
    customers: pd.DataFrame | None = None  # snapshot mode: one row per customer
    source: str = ""
    report: ValidationReport | None = None
    notes: list[str] = field(default_factory=list)
    #: which usage metric plays which role (:mod:`cslab.data.roles`)
    metric_roles: MetricRoles = field(default_factory=MetricRoles)
    #: the ``currency`` column's one value, when subscriptions carry it
    currency: str | None = None
    #: subscription lines ending the day before they start, dropped on loading
    zero_length_lines: int = 0
    #: the data folder's ``cslab.toml``, when it has one
    settings: dict = field(default_factory=dict)

    @property
    def tables(self) -> tuple[str, ...]:
        """Names of the tables present."""
        return tuple(n for n in (*TABLE_NAMES, "customers") if getattr(self, n) is not None)

    @property
    def snapshot_mode(self) -> bool:
        """True when the data is one flat customers table (no subscriptions)."""
        return self.customers is not None and self.subscriptions is None

    def last_date(self) -> pd.Timestamp:
        """The latest date actually observed: starts, usage, tickets, activities (not scheduled ends).

        End dates count only up to the latest start, because an annual contract's end date lies in
        the future.
        """
        dates = [self.subscriptions["start_date"].max()]
        ends = self.subscriptions["end_date"]
        dates.append(ends[ends <= dates[0]].max() if ends.notna().any() else pd.NaT)
        for table, column in (("tickets", "opened_at"), ("cs_activities", "date")):
            frame = getattr(self, table)
            if frame is not None and len(frame):
                dates.append(frame[column].max())
        if self.usage is not None:
            dates.append(self.usage.query("SELECT max(date) AS d FROM usage")["d"].iloc[0])
        latest = max(pd.Timestamp(d) for d in dates if pd.notna(d))
        return latest.normalize()

    def default_as_of(self) -> pd.Timestamp:
        """The end of the last complete month of the data.

        A month counts as complete when the latest observed date (:meth:`last_date`) falls in its
        last ``COMPLETE_MONTH_DAYS`` days (weekly data is dated up to six days before a month's
        end); a mid-month last date (an export taken on the 17th) moves the as-of back to the end of
        the month before, so that an unfinished month is not counted as a full month of exposure.
        :meth:`as_of_note` says when that happened.

        Examples
        --------
        >>> data.last_date(), data.default_as_of()  # doctest: +SKIP
        (Timestamp('2026-06-17'), Timestamp('2026-05-31'))
        """
        return self._as_of_after(self.last_date())

    def _as_of_after(self, latest: pd.Timestamp) -> pd.Timestamp:
        """:meth:`default_as_of` for a known latest date (each :meth:`last_date` asks DuckDB)."""
        month_end = latest + pd.offsets.MonthEnd(0)
        if (month_end - latest).days < COMPLETE_MONTH_DAYS or self._month_stamped(latest):
            return month_end
        before = latest - pd.offsets.MonthEnd(1)
        # a book whose only month is the unfinished one keeps it: nothing would be left otherwise
        return before if before >= self.subscriptions["start_date"].min() else latest

    def _month_stamped(self, latest: pd.Timestamp) -> bool:
        """Whether the dated rows are month stamps: nearly all on a month's first day.

        Monthly lines starting on the 1st with usage dated on the 1st describe whole months; their
        last date, a 1st, does not mean an unfinished month.
        """
        if latest.day != 1:
            return False
        days = [self.subscriptions["start_date"].dt.day.eq(1)]
        for table, column in (("tickets", "opened_at"), ("cs_activities", "date")):
            frame = getattr(self, table)
            if frame is not None and len(frame):
                days.append(frame[column].dt.day.eq(1))
        first = pd.concat(days)
        n, n_first = len(first), int(first.sum())
        if self.usage is not None:
            counts = self.usage.query("SELECT count(*) AS n, count(*) FILTER (WHERE day(date) = 1) AS f "
                                      "FROM usage WHERE date IS NOT NULL")
            n, n_first = n + int(counts["n"].iloc[0]), n_first + int(counts["f"].iloc[0])
        return n > 0 and n_first >= 0.9 * n

    def as_of_note(self) -> str | None:
        """A sentence when the default as-of lies before the latest date (a mid-month export)."""
        latest = self.last_date()
        as_of = self._as_of_after(latest)
        if as_of >= latest:
            return None
        return (f"the data's last date is {latest:%Y-%m-%d}, before the end of {latest:%B %Y}; that "
                f"month is not complete, so the analysis date is the end of the month before, "
                f"{as_of:%Y-%m-%d} (set --as-of to choose another)")


# --------------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------------
_SURROGATE = re.compile("[\udc80-\udcff]")
# A date separated from every other dated row by this many empty months, among at most this share
# of the dated rows, is a stray (a mistyped year, a test row): the data's as-of lies before it.
_GAP_MONTHS = 3
_STRAY_SHARE = 0.01
# The dates that tell how far the data goes: those CSData.default_as_of reads, and the outcomes' (a
# book without usage, tickets or activities still has them); usage is counted by DuckDB. A ticket's
# closing date is left out: the generator closes tickets a few days after its last day.
_AS_OF_DATES = {"subscriptions": ("start_date",), "tickets": ("opened_at",), "cs_activities": ("date",),
                "outcomes": ("committed_date", "achieved_date")}


def _table_files(folder: Path, report: ValidationReport) -> dict[str, Path]:
    """Map each table name to its file; warn about files that are not tables."""
    files: dict[str, Path] = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        suffix = next((s for s in SUFFIXES if path.name.lower().endswith(s)), None)
        stem = path.name[: -len(suffix)] if suffix else None
        if stem in TABLES:
            if stem in files:
                report.add(path.name, f"a second file for table {stem} (also {files[stem].name}); "
                           "keep one")
            else:
                files[stem] = path
        elif path.name not in COMPANION_FILES:
            report.add(path.name, "not a table of the data contract; ignored", severity="warning")
    return files


def _what_binary(head: bytes) -> str | None:
    """What a file that is not UTF-8 text is, when its first bytes tell (else ``None``)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or _looks_utf16(head):
        return "is UTF-16 text (Excel's 'Unicode text'), not UTF-8; save it as CSV UTF-8"
    if head.startswith(b"PK\x03\x04"):
        return "is a zip archive or an Excel workbook (.xlsx), not a CSV; export it as CSV UTF-8"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "is an Excel 97-2003 workbook (.xls), not a CSV; export it as CSV UTF-8"
    if head.startswith(b"PAR1"):
        return "is a Parquet file; name it .parquet"
    if head.startswith(b"\x1f\x8b"):
        return "is gzip-compressed; name it .csv.gz"
    if b"\x00" in head:
        return "is not a text file (binary content); export it as CSV"
    return None


def _looks_utf16(head: bytes) -> bool:
    """UTF-16 without a byte-order mark: every other byte of ASCII text is zero."""
    sample = head[:4096]
    if len(sample) < 8:
        return False
    return max(sample[0::2].count(0), sample[1::2].count(0)) > 0.3 * (len(sample) // 2)


def _cells(line: str, sep: str) -> list[str]:
    """The cells of one CSV line (quotes understood; a stray carriage return tolerated)."""
    line = line.rstrip("\r")
    try:
        return next(csv.reader([line], delimiter=sep), [])
    except csv.Error:
        return line.split(sep)


def _not_utf8(raw: bytes, exc: UnicodeDecodeError, file: str, report: ValidationReport) -> None:
    """Report the lines (and columns) of a file's bytes that are not UTF-8, in one line."""
    lines = raw.decode("utf-8", errors="surrogateescape").split("\n")
    bad = [i + 1 for i, line in enumerate(lines) if _SURROGATE.search(line)]
    first = bad[0] if bad else raw[: exc.start].count(b"\n") + 1
    _report_not_utf8(file, report, raw[exc.start], first, len(bad), bad[:MAX_EXAMPLES],
                     lines[0], [lines[n - 1] for n in bad[:200] if n > 1])


def _not_utf8_stream(path: Path, report: ValidationReport) -> bool:
    """The same for a file too large to hold (usage), read line by line. True when reported."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    header, examples, samples, n_bad, byte = "", [], [], 0, 0
    try:
        with opener(path, "rb") as handle:
            for number, raw in enumerate(handle, 1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    text = raw.decode("utf-8", errors="surrogateescape")
                    byte = byte or raw[exc.start]
                    n_bad += 1
                    if len(examples) < MAX_EXAMPLES:
                        examples.append(number)
                    if len(samples) < 200 and number > 1:
                        samples.append(text)
                if number == 1:
                    header = text.removeprefix("\ufeff")
    except (OSError, EOFError):
        return False
    if n_bad:
        _report_not_utf8(path.name, report, byte, examples[0], n_bad, examples, header, samples)
    return bool(n_bad)


def _report_not_utf8(file: str, report: ValidationReport, byte: int, first: int, n_bad: int,
                     examples: list[int], header: str, samples: list[str]) -> None:
    """One line: the first bad byte and its line; with more lines, how many, where, which column."""
    if n_bad <= 1:
        report.add(file, f"is not valid UTF-8 (byte 0x{byte:02x} on line {first}); save it as UTF-8")
        return
    sep = _sniff(header)[0]
    names = [h.strip() for h in _cells(header, sep)]
    columns: list[str] = []
    for line in samples:
        for i, value in enumerate(_cells(line, sep)):
            if i < len(names) and _SURROGATE.search(value) and names[i] not in columns:
                columns.append(names[i])
    shown_lines = ", ".join(map(str, examples)) + (", ..." if n_bad > len(examples) else "")
    where = f"; column {', '.join(shown(c) for c in columns[:3])}" if columns else ""
    try:
        "".join(samples).encode("utf-8", errors="surrogateescape").decode("cp1252")
        guess = " (it reads as Latin-1 / Windows-1252)"
    except UnicodeDecodeError:
        guess = ""
    report.add(file, f"is not valid UTF-8 (byte 0x{byte:02x} on line {first}; {n_bad:,} lines in "
               f"all: {shown_lines}{where}); save it as UTF-8{guess}")


def _read_text(path: Path, report: ValidationReport, limit: int | None = None) -> str | None:
    """Read a (possibly gzipped) CSV as UTF-8 text; report binary, empty and non-UTF-8 files."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read() if limit is None else handle.read(limit)
    except (OSError, EOFError) as exc:
        report.add(path.name, f"cannot be read ({type(exc).__name__}: {exc.strerror or exc})"
                   if isinstance(exc, OSError) else f"cannot be read ({exc})")
        return None
    if not raw.strip():
        report.add(path.name, "is empty")
        return None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
        report.add(path.name, "starts with a UTF-8 byte-order mark; removed", severity="fixed")
    binary = _what_binary(raw[:_SNIFF_BYTES])
    if binary:
        report.add(path.name, binary)
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if limit is not None and exc.start > len(raw) - 4:
            return raw[: exc.start].decode("utf-8")  # a character cut by the sniff limit
        if limit is None:
            _not_utf8(raw, exc, path.name, report)
        elif not _not_utf8_stream(path, report):
            report.add(path.name, "is not valid UTF-8; save it as UTF-8")
        return None


def _sniff(header: str) -> tuple[str, bool]:
    """Separator of a CSV from its header line; a ';' file may use decimal commas."""
    counts = {sep: header.count(sep) for sep in (",", ";", "\t")}
    sep = max(counts, key=counts.get)
    return (sep if counts[sep] else ","), sep == ";"


def _layout(text: str, sep: str) -> tuple[list[int], list[int], list[int]]:
    """Where the records of a CSV are: first line and number of cells of each, the blank lines.

    A record may span lines (a quoted cell holding a line break), so a record's line is the line
    a spreadsheet shows it on, not its position among the records.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    starts: list[int] = []
    widths: list[int] = []
    blank: list[int] = []
    line = 1
    for record in reader:
        if not record or (len(record) == 1 and not record[0].strip()):
            blank.append(line)
        else:
            starts.append(line)
            widths.append(len(record))
        line = reader.line_num + 1
    return starts, widths, blank


def _read_table(path: Path, report: ValidationReport,
                keep_lines: bool = False) -> tuple[pd.DataFrame | None, bool]:
    """Read a CSV or Parquet table with every column as text. Returns (frame, decimal_comma).

    Blank lines and rows of empty cells are skipped (and reported as fixed). With ``keep_lines``
    the frame's index is the file line of each row minus 2 (the header is line 1), so that row
    positions in a report are the lines a spreadsheet shows even after blank lines; otherwise
    the index is 0, 1, 2, ...
    """
    file = path.name
    if path.name.lower().endswith(".parquet"):
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - any reader failure is a problem to report
            report.add(file, f"is not a readable Parquet file ({type(exc).__name__})")
            return None, False
        return frame.astype(object).where(frame.notna(), None), False
    text = _read_text(path, report)
    if text is None:
        return None, False
    header = text.lstrip("\r\n\t ").split("\n", 1)[0].rstrip("\r")
    sep, decimal_comma = _sniff(header)
    if sep == ";":
        report.add(file, "uses ';' as the separator (and decimal commas); read as such",
                   severity="fixed")
    names = [n.strip() for n in _cells(header, sep)]
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    for name in repeated:
        report.add(file, f"appears {names.count(name)} times in the header; keep one", column=name)
    if repeated:
        return None, False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                                skip_blank_lines=True, index_col=False)
            error = ""
        except (pd.errors.ParserError, ValueError) as exc:
            frame, error = None, (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
    try:  # where each record starts and how many cells it has (pandas pads short rows silently)
        starts, widths, blank = _layout(text, sep)
    except csv.Error:  # a cell longer than the csv module's limit: an unclosed quote, surely
        starts, widths, blank = [], [], []
    width = widths[0] if widths else 0
    wide = [s - 2 for s, w in zip(starts[1:], widths[1:]) if w > width]
    if "EOF inside string" in error:
        row = re.search(r"row (\d+)", error)
        line = starts[-1] if starts else (int(row.group(1)) + 1 if row else None)
        report.add(file, "quote never closed (the rest of the file reads as one cell)",
                   rows=[line - 2] if line else None)
        return None, False
    if wide:
        report.add(file, f"more cells than the header's {width} (a separator inside an unquoted "
                   "value?)", rows=wide)
        return None, False
    if frame is None or any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        why = shown(error or "rows do not match the header", 120)
        report.add(file, f"is not a well-formed CSV ({why})")
        return None, False
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = frame.fillna("")
    if len(starts) == len(frame) + 1:
        frame.index = pd.Index([s - 2 for s in starts[1:]])
        short = [s - 2 for s, w in zip(starts[1:], widths[1:]) if w < width]
        if short:
            report.add(file, f"rows with fewer cells than the header's {width}; the missing cells "
                       "are read as empty", rows=short, severity="fixed")
    empty = frame.eq("").all(axis=1) if frame.shape[1] else pd.Series(False, index=frame.index)
    skipped = list(empty[empty].index)
    if len(frame):
        last = frame.index[-1] + 2
        skipped += [b - 2 for b in blank if starts and starts[0] < b < last]
    if skipped:
        report.add(file, "blank lines skipped", rows=skipped, severity="fixed")
        frame = frame[~empty]
    if not keep_lines:
        frame = frame.reset_index(drop=True)
    return frame, decimal_comma


def date_format_message(example: object, mixed: bool) -> str:
    """The error for dates written as 15/01/2024: mixed with ISO dates, or all of them."""
    return (f"{'mixed date formats: ' if mixed else ''}dates written like {shown(example)}, not "
            "YYYY-MM-DD (day and month order cannot be told apart)")


def _schema_problems(frame: pd.DataFrame, spec: TableSpec, file: str, decimal_comma: bool,
                     report: ValidationReport, latest: pd.Timestamp | None = None,
                     as_of: pd.Timestamp | None = None) -> None:
    """Validate the raw cells with the table's pandera schema; one line per column and check."""
    schema = schema_for(spec, set(frame.columns), decimal_comma, latest, as_of)
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        # A check on the whole frame (end_date before start_date) lists each failing row once per
        # column: one line per check, not per column.
        frame_level = cases["schema_context"].eq("DataFrameSchema") & ~cases["check"].isin(
            ["column_in_dataframe", "field_uniqueness"])
        cases = cases.assign(column=cases["column"].where(~frame_level, cases["check"]))
        for (context, column, check), group in cases.groupby(
            ["schema_context", "column", "check"], dropna=False, sort=False
        ):
            if check == "column_in_dataframe":
                for missing in group["failure_case"]:
                    report.add(file, "required column missing", column=str(missing))
                continue
            rows = pd.to_numeric(group["index"], errors="coerce").dropna().astype(int).drop_duplicates()
            if check == "field_uniqueness":
                message = "duplicate values"
            elif context == "DataFrameSchema":
                message, column = str(check), str(check).split(" ")[0]
            else:
                message = str(check)
            if not len(rows):  # the check itself failed on these cells: say so, do not guess
                report.add(file, f"{message}: could not be checked "
                           f"({shown(group['failure_case'].iloc[0], 80)})", column=str(column))
                continue
            if message == DATE_FORMAT_MESSAGE:
                example = frame.loc[rows.iloc[0], column]
                message = date_format_message(example, bool(parse_dates(frame[column]).notna().any()))
            report.add(file, message, column=str(column), rows=rows.tolist())


def _strip_ids(frame: pd.DataFrame, spec: TableSpec, file: str, report: ValidationReport) -> None:
    """Ids padded with spaces are fixed (stripped) and reported; ids differing only in case noted."""
    for column in spec.ids:
        if column in frame.columns and frame[column].dtype == object:
            text = frame[column].astype("string")
            padded = text.notna() & text.ne(text.str.strip()) & text.str.strip().ne("")
            if padded.any():
                report.add(file, "ids padded with spaces; spaces removed", column=column,
                           rows=padded[padded].index.tolist(), severity="fixed")
    for column in spec.unique:
        ids = as_id(frame[column]).astype("string")
        lower = ids.str.lower()
        clash = ids.notna() & ids.groupby(lower).transform("nunique").gt(1)
        if clash.any():
            examples = ", ".join(shown(v) for v in ids[clash].unique()[:2])
            report.add(file, f"ids that differ only in case (e.g. {examples}); ids are case-"
                       "sensitive, so they are read as different accounts", column=column,
                       rows=clash[clash].index.tolist(), severity="warning")


def _data_as_of(frames: dict[str, pd.DataFrame], usage_months: pd.Series | None = None
                ) -> tuple[pd.Timestamp | None, pd.Timestamp]:
    """The data's as-of and the last date an event may have: ``(as_of, latest)``.

    The as-of is the end of the last month with dated rows (starts, usage, tickets opened,
    activities, outcomes committed and achieved), leaving out strays: rows beyond a gap of
    ``_GAP_MONTHS`` empty months that make up at most ``_STRAY_SHARE`` of the dated rows. Events
    may lie up to a month after it (a ticket closed a few days later), never after today.
    ``as_of`` is ``None`` when today is the limit. ``usage_months`` are the rows of usage per
    month, counted by DuckDB.
    """
    today = _today()
    counts = []
    for name, frame in frames.items():
        for column in _AS_OF_DATES.get(name, ()):
            if column in frame.columns:
                d = parse_dates(frame[column])
                d = d[(d >= EARLIEST_DATE) & (d <= today)]
                counts.append(d.dt.to_period("M").value_counts().astype(float))
    if usage_months is not None:
        counts.append(usage_months)
    counts = [c for c in counts if len(c)]
    if not counts:
        return None, today
    per_month = pd.concat(counts).groupby(level=0).sum().sort_index()
    months, total = list(per_month.index), per_month.sum()
    from_here = per_month[::-1].cumsum()[::-1]
    end = months[-1]
    for before, month in zip(months[:-1], months[1:]):
        if (month - before).n - 1 >= _GAP_MONTHS and from_here[month] <= _STRAY_SHARE * total:
            end = before
            break
    as_of = end.to_timestamp(how="end").normalize()
    latest = as_of + pd.offsets.MonthEnd(1)
    return (None, today) if latest >= today else (as_of, latest)


def _today() -> pd.Timestamp:
    return pd.Timestamp.today().normalize()


def _raw_with_types(usage: UsageTable) -> str:
    """SQL: the usage rows numbered from 0, with the date (``ts``) and value (``x``) parsed and
    ``other`` true for a date written in another format."""
    number = "replace(trim(value), ',', '.')" if usage.decimal_comma else "trim(value)"
    parsed = "TRY_CAST(replace(trim(date), '/', '-') AS TIMESTAMP)"
    other = OTHER_DATE_FORMAT.replace("'", "''")
    return (f"SELECT row_number() OVER () - 1 AS row, *, {parsed} AS ts, "
            f"TRY_CAST({number} AS DOUBLE) AS x, CASE WHEN {parsed} IS NULL "
            f"THEN coalesce(regexp_matches(trim(date), '{other}'), false) ELSE false END AS other "
            f"FROM {usage.raw_sql()}")


def _check_usage(usage: UsageTable, report: ValidationReport) -> tuple[bool, pd.Series | None]:
    """Check the usage file in DuckDB: columns, dates, numbers, empty ids.

    Returns whether it is usable and its rows per month (for the data's as-of), from the same
    scan. Dates after the as-of are checked afterwards, by :func:`_late_usage`.
    """
    file = usage.path.name
    with duckdb.connect() as con:
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
            f"count(*) FILTER (WHERE {cond}), min_by(row, row, 5) FILTER (WHERE {cond})"
            for cond in checks.values()
        )
        try:
            month = "strftime(date_trunc('month', ts), '%Y-%m')"
            result = con.execute(
                f"WITH raw AS ({_raw_with_types(usage)}) "
                f"SELECT count(*), count(ts), arg_min(trim(date), row) FILTER (WHERE other), "
                f"histogram({month}) FILTER (WHERE ts >= TIMESTAMP '{EARLIEST_DATE:%Y-%m-%d}' "
                f"AND ts <= TIMESTAMP '{_today():%Y-%m-%d}'), {selects} FROM raw").fetchone()
            usage.n_rows, n_dates, example = result[0], result[1], result[2]
            months = pd.Series({pd.Period(m, "M"): n for m, n in dict(result[3] or {}).items()},
                               dtype=float)
            for i, (column, message) in enumerate(checks):
                n, rows = result[4 + 2 * i], result[5 + 2 * i]
                if not n:
                    continue
                rows = _file_rows(usage, rows)
                if message == "padded":
                    report.add(file, "ids padded with spaces; spaces removed", column=column,
                               rows=rows, n_rows=n, severity="fixed")
                    continue
                if message == DATE_FORMAT_MESSAGE:
                    message = date_format_message(example, n_dates > 0)
                report.add(file, message, column=column, rows=rows, n_rows=n)
            usage.metrics = tuple(r[0] for r in con.execute(
                f"SELECT DISTINCT trim(metric) FROM {usage.raw_sql()} "
                "WHERE coalesce(trim(metric), '') <> '' ORDER BY 1").fetchall())
        except duckdb.Error as exc:
            _unreadable_usage(usage, exc, report)
            return False, None
    if usage.n_rows == 0:
        report.add(file, "has a header but no data rows")
        return False, None
    return True, months


def _late_usage(usage: UsageTable, months: pd.Series, latest: pd.Timestamp,
                as_of: pd.Timestamp | None, report: ValidationReport) -> None:
    """Usage dated after ``latest``; the file is scanned again only when the month counts say
    some rows may be."""
    if not (months.index >= latest.to_period("M")).any():
        return
    with duckdb.connect() as con:
        n, rows = con.execute(
            f"WITH raw AS ({_raw_with_types(usage)}) SELECT count(*), min_by(row, row, 5) "
            f"FROM raw WHERE ts > TIMESTAMP '{latest:%Y-%m-%d %H:%M:%S}'").fetchone()
    if n:
        report.add(usage.path.name, late_message(latest, as_of), column="date",
                   rows=_file_rows(usage, rows), n_rows=n)


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
    if not rows or usage.path.name.lower().endswith(".parquet"):
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
    if usage.path.name.lower().endswith(".parquet"):
        return False
    file = usage.path.name
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
        report.add(file, "quote never closed (the rest of the file reads as one cell)" if unclosed
                   else f"malformed quoting ({shown(exc, 60)})", rows=[line - 2])
        return True
    except (OSError, EOFError, UnicodeDecodeError):
        return False
    messages = {"wide": f"more cells than the header's {width} (a separator inside an unquoted "
                        "value?)",
                "short": f"fewer cells than the header's {width}",
                "spaces": "lines holding only spaces; remove them"}
    for kind, message in messages.items():
        if counts[kind]:
            report.add(file, message, rows=found[kind], n_rows=counts[kind])
    return any(counts.values())


def _unreadable_usage(usage: UsageTable, exc: Exception, report: ValidationReport) -> None:
    """Say why DuckDB could not read the usage file: bytes that are not UTF-8, rows of another
    width, a quote never closed, or else DuckDB's own first line."""
    text = str(exc).lower()
    if ("unicode" in text or "utf" in text) and _not_utf8_stream(usage.path, report):
        return
    if not _usage_layout(usage, report):
        _duckdb_problem(usage.path.name, exc, report)


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


def _orphans(data: CSData, ids: dict[str, pd.Series], usage_ok: bool, report: ValidationReport,
             files: dict[str, Path]) -> None:
    """Ids in other tables that `accounts` does not hold (checked even in tables with other errors).

    Ids are case-sensitive (CRM keys such as Salesforce's 15-character ids differ only in case),
    so ``a00001`` is not ``A00001``; the message says when ids match but for case.
    """
    known = set(data.accounts["account_id"].dropna())
    folded = {k.lower() for k in known}

    def message(examples, n_case: int) -> str:
        hint = (f"; {n_case:,} match an account id but for upper/lower case, and ids are "
                "case-sensitive" if n_case else "")
        return f"account ids not in accounts (e.g. {', '.join(shown(e) for e in examples)}){hint}"

    for name in ("subscriptions", "cs_activities", "tickets", "outcomes"):
        if name in ids:
            column = ids[name]
            orphan = column.notna() & ~column.isin(known)
            if orphan.any():
                values = column[orphan]
                n_case = int(values.map(lambda v: str(v).lower() in folded).sum())
                report.add(files[name].name, message(values.unique()[:3], n_case),
                           column="account_id", rows=orphan[orphan].index.tolist())
    if data.usage is not None and usage_ok:
        with duckdb.connect() as con:
            con.register("known", pd.DataFrame({"account_id": sorted(known)}, dtype=object))
            n, rows, examples, n_case = con.execute(
                f"WITH raw AS (SELECT row_number() OVER () - 1 AS row, trim(account_id) AS id "
                f"FROM {data.usage.raw_sql()}) SELECT count(*), list(row ORDER BY row)[1:5], "
                f"list(DISTINCT id)[1:3], count(*) FILTER (WHERE lower(id) IN "
                f"(SELECT lower(account_id) FROM known)) FROM raw WHERE id <> '' AND id NOT IN "
                f"(SELECT account_id FROM known)").fetchone()
        if n:
            report.add(files["usage"].name, message(list(dict.fromkeys(examples or [])), n_case),
                       column="account_id", rows=_file_rows(data.usage, rows), n_rows=n)


def _subscription_lines(data: CSData, subs: pd.DataFrame, file: str, report: ValidationReport
                        ) -> pd.DataFrame:
    """Drop zero-length lines (with a note) and read the one currency of the book.

    Billing exports write a plan replaced on its first day as a line ending the day before it
    starts; it never ran, so it is dropped and counted (``data.zero_length_lines``). A ``currency``
    column must hold one currency: amounts in several cannot be added (convert first).
    """
    zero = subs["end_date"].notna() & (subs["end_date"] < subs["start_date"])
    if zero.any():
        data.zero_length_lines = int(zero.sum())
        report.add(file, "zero-length lines (end_date the day before start_date: a plan replaced on "
                   "its first day) dropped", column="end_date", rows=zero[zero].index.tolist(),
                   severity="fixed")
        subs = subs[~zero]
    if "currency" in subs:
        codes = subs["currency"].astype("string").str.strip().str.upper()
        counts = codes.value_counts()
        if len(counts) > 1:
            listed = ", ".join(f"{c} ({n:,} rows)" for c, n in counts.items())
            report.add(file, f"more than one currency: {listed}; MRR in several currencies cannot "
                       "be added: convert every line to one currency first", column="currency")
        elif len(counts) == 1:
            data.currency = str(counts.index[0])
        if codes.isna().any() and len(counts):
            blank = codes.isna()
            report.add(file, f"currency blank; read as {counts.index[0]}", column="currency",
                       rows=blank[blank].index.tolist(), severity="warning")
        subs = subs.drop(columns="currency")
    return subs


def _read(path: str | Path, metric_roles: str | dict | None = None) -> tuple[CSData, ValidationReport]:
    with warnings.catch_warnings():
        # pandas' warnings about odd cells would print between the report's lines; every odd
        # cell is reported by the checks themselves.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", pd.errors.ParserWarning)
        warnings.simplefilter("ignore", pd.errors.DtypeWarning)
        data, report = _read_checked(path)
        if Path(path).is_dir():
            _roles(data, Path(path), metric_roles, report)
        return data, report


def _roles(data: CSData, folder: Path, given: str | dict | None, report: ValidationReport) -> None:
    """Metric roles: ``given`` (a parameter) over ``cslab.toml`` over detection from the names."""
    try:
        data.settings = read_settings(folder)
    except ValueError as exc:
        report.add(SETTINGS_FILE, str(exc).split(": ", 1)[1])
        return
    in_file = data.settings.get("metric_roles", {})
    if not isinstance(in_file, dict) or not all(isinstance(v, str) for v in in_file.values()):
        report.add(SETTINGS_FILE, "[metric_roles] should map roles to metric names, e.g. "
                   'active_users = "wau"')
        return
    metrics = data.usage.metrics if data.usage is not None else ()
    where = "metric_roles"
    try:
        explicit = parse_roles(given) if isinstance(given, str) else dict(given or {})
        for settings, origin, where in ((in_file, f"set in {SETTINGS_FILE}", SETTINGS_FILE),
                                        (explicit, "set by the metric_roles parameter", "metric_roles")):
            detect_roles(metrics, settings, origin)  # each source checked on its own, named
        roles = detect_roles(metrics, {**in_file, **explicit})
    except ValueError as exc:
        report.add(where, str(exc).removeprefix("metric_roles: "))
        return
    for role in roles.roles:  # say where each explicit setting came from
        if role in explicit:
            roles.reasons[role] = "set by the metric_roles parameter"
        elif role in in_file:
            roles.reasons[role] = f"set in {SETTINGS_FILE}"
    data.metric_roles = roles


def _read_checked(path: str | Path) -> tuple[CSData, ValidationReport]:
    folder = Path(path)
    report = ValidationReport(str(folder))
    data = CSData(source=str(folder), report=report)
    if not folder.is_dir():
        report.add(str(folder), "is not a folder" if folder.exists() else "does not exist")
        return data, report
    files = _table_files(folder, report)
    if "subscriptions" not in files:
        report.add(str(folder), "no subscriptions file (subscriptions.csv, .csv.gz or .parquet): "
                   "it is the one required table")
    # Read every file first: the data's as-of, which bounds the dates of events, needs them all.
    frames: dict[str, tuple[pd.DataFrame, bool]] = {}
    usage: UsageTable | None = None
    for name in (n for n in TABLE_NAMES if n in files):
        file = files[name]
        if name == "usage":
            decimal_comma, delimiter = False, ","
            if not file.name.lower().endswith(".parquet"):
                head = _read_text(file, report, limit=_SNIFF_BYTES)
                if head is None:
                    continue
                delimiter, decimal_comma = _sniff(head.lstrip("\r\n\t ").split("\n", 1)[0])
                if delimiter == ";":
                    report.add(file.name, "uses ';' as the separator (and decimal commas); read "
                               "as such", severity="fixed")
            usage = UsageTable(file, delimiter, decimal_comma)
            continue
        frame, decimal_comma = _read_table(file, report, keep_lines=True)
        if frame is None:
            continue
        if frame.empty:
            report.add(file.name, "has a header but no data rows")
            continue
        frames[name] = (frame, decimal_comma)
    usage_ok, usage_months = False, None
    if usage is not None:
        data.usage = usage
        usage_ok, usage_months = _check_usage(usage, report)
    as_of, latest = _data_as_of({n: f for n, (f, _) in frames.items()}, usage_months)
    if usage_ok:
        _late_usage(usage, usage_months, latest, as_of, report)
    ids: dict[str, pd.Series] = {}
    for name, (frame, decimal_comma) in frames.items():
        spec, file = TABLES[name], files[name]
        if "account_id" in frame.columns:
            ids[name] = as_id(frame["account_id"])
        n_before = len(report.errors)
        _schema_problems(frame, spec, file.name, decimal_comma, report, latest, as_of)
        if len(report.errors) > n_before:
            continue
        _strip_ids(frame, spec, file.name, report)
        keep = [c for c in frame.columns if spec.keep_extra or c in spec.required + spec.optional]
        table = typed(frame[keep], spec, decimal_comma)
        if name == "subscriptions":
            table = _subscription_lines(data, table, file.name, report)
        setattr(data, name, table.reset_index(drop=True))
    if data.accounts is not None:
        _orphans(data, ids, usage_ok, report, files)
    return data, report


def validate(path: str | Path, metric_roles: str | dict | None = None) -> ValidationReport:
    """Check a data folder against the contract; return every problem found (nothing raised).

    Examples
    --------
    >>> report = validate("data/demo")  # doctest: +SKIP
    >>> report.ok, report.format()  # doctest: +SKIP
    (True, '')
    """
    return _read(path, metric_roles)[1]


def load(path: str | Path, metric_roles: str | dict | None = None) -> CSData:
    """Read a data folder into validated, typed tables.

    Parameters
    ----------
    path : str or Path
        A folder holding one file per table (``subscriptions.csv``, ``accounts.parquet``, ...).
    metric_roles : str or dict, optional
        Roles of usage metrics set explicitly (``"active_users=wau,logins=sessions"``); they win
        over the folder's ``cslab.toml``, which wins over detection from the metric names
        (:mod:`cslab.data.roles`). Naming a metric the usage table lacks is a validation error.

    Returns
    -------
    CSData
        Absent optional tables are ``None``; ``usage`` stays on disk as a :class:`UsageTable`.

    Raises
    ------
    DataValidationError
        When any file breaks the contract; its ``report`` lists every problem at once.

    Examples
    --------
    >>> data = load("data/demo")  # doctest: +SKIP
    >>> data.subscriptions.columns.tolist()[:4]  # doctest: +SKIP
    ['account_id', 'start_date', 'end_date', 'mrr']
    """
    data, report = _read(path, metric_roles)
    if not report.ok:
        raise DataValidationError(report)
    data.notes = [p.format() for p in report.warnings]
    return data
