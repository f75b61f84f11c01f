"""Reading a data folder: files -> validated, typed tables.

Every problem of every file is collected into one :class:`ValidationReport`; nothing is raised
until the whole folder has been read. Files are opened read-only and never modified. The
``usage`` table, which may hold tens of millions of rows, stays on disk: DuckDB checks and
aggregates it straight from the file.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import pandera.pandas as pa

from cslab.data.contract import (COMPANION_FILES, TABLE_NAMES, TABLES, TableSpec, as_id, schema_for,
                                 typed)
from cslab.data.validation import ValidationReport
from cslab.errors import DataValidationError

__all__ = ["CSData", "UsageTable", "load", "validate", "SUFFIXES"]

SUFFIXES = (".csv", ".csv.gz", ".parquet")
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
        fn = {"mean": "avg", "sum": "sum", "max": "max"}[agg]
        where = "date IS NOT NULL AND value IS NOT NULL"
        if as_of is not None:
            where += f" AND date <= TIMESTAMP '{pd.Timestamp(as_of):%Y-%m-%d %H:%M:%S}'"
        sql = (f"SELECT account_id, date_trunc('month', date) AS month, metric, {fn}(value) AS value "
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

    @property
    def tables(self) -> tuple[str, ...]:
        """Names of the tables present."""
        return tuple(n for n in (*TABLE_NAMES, "customers") if getattr(self, n) is not None)

    @property
    def snapshot_mode(self) -> bool:
        """True when the data is one flat customers table (no subscriptions)."""
        return self.customers is not None and self.subscriptions is None

    def default_as_of(self) -> pd.Timestamp:
        """The latest date actually observed: starts, usage, tickets, activities (not scheduled ends).

        End dates are left out because an annual contract's end date lies in the future.
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


# --------------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------------
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


def _read_text(path: Path, report: ValidationReport, limit: int | None = None) -> str | None:
    """Read a (possibly gzipped) CSV as UTF-8 text; report binary, empty and non-UTF-8 files."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read() if limit is None else handle.read(limit)
    except (OSError, EOFError) as exc:
        report.add(path.name, f"cannot be read ({exc})")
        return None
    if not raw.strip():
        report.add(path.name, "is empty")
        return None
    if b"\x00" in raw[:_SNIFF_BYTES]:
        report.add(path.name, "is not a text file (binary content); export it as CSV")
        return None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
        report.add(path.name, "starts with a UTF-8 byte-order mark; removed", severity="fixed")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if limit is not None and exc.start > len(raw) - 4:
            return raw[: exc.start].decode("utf-8")  # a character cut by the sniff limit
        line = raw[: exc.start].count(b"\n") + 1
        report.add(path.name, f"is not valid UTF-8 (byte 0x{raw[exc.start]:02x} on line {line}); "
                   "save it as UTF-8")
        return None


def _sniff(header: str) -> tuple[str, bool]:
    """Separator of a CSV from its header line; a ';' file may use decimal commas."""
    counts = {sep: header.count(sep) for sep in (",", ";", "\t")}
    sep = max(counts, key=counts.get)
    return (sep if counts[sep] else ","), sep == ";"


def _read_table(path: Path, report: ValidationReport) -> tuple[pd.DataFrame | None, bool]:
    """Read a CSV or Parquet table with every column as text. Returns (frame, decimal_comma)."""
    if path.name.lower().endswith(".parquet"):
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - any reader failure is a problem to report
            report.add(path.name, f"is not a readable Parquet file ({type(exc).__name__})")
            return None, False
        return frame.astype(object).where(frame.notna(), None), False
    text = _read_text(path, report)
    if text is None:
        return None, False
    sep, decimal_comma = _sniff(text.split("\n", 1)[0])
    if sep == ";":
        report.add(path.name, "uses ';' as the separator (and decimal commas); read as such",
                   severity="fixed")
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                            skip_blank_lines=True)
    except (pd.errors.ParserError, ValueError) as exc:
        report.add(path.name, f"is not a well-formed CSV ({str(exc).strip().splitlines()[-1]})")
        return None, False
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame, decimal_comma


def _schema_problems(frame: pd.DataFrame, spec: TableSpec, file: str, decimal_comma: bool,
                     report: ValidationReport) -> None:
    """Validate the raw cells with the table's pandera schema; one line per column and check."""
    schema = schema_for(spec, set(frame.columns), decimal_comma)
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        for (context, column, check), group in cases.groupby(
            ["schema_context", "column", "check"], dropna=False, sort=False
        ):
            if check == "column_in_dataframe":
                for missing in group["failure_case"]:
                    report.add(file, "required column missing", column=str(missing))
                continue
            rows = pd.to_numeric(group["index"], errors="coerce").dropna().astype(int)
            if check == "field_uniqueness":
                message = "duplicate values"
            elif context == "DataFrameSchema":
                message, column = str(check), str(check).split(" ")[0]
            else:
                message = str(check)
            report.add(file, message, column=str(column), rows=rows.tolist())


def _strip_ids(frame: pd.DataFrame, spec: TableSpec, file: str, report: ValidationReport) -> None:
    """Ids padded with spaces are fixed (stripped) and reported."""
    for column in spec.ids:
        if column in frame.columns and frame[column].dtype == object:
            text = frame[column].astype("string")
            padded = text.notna() & text.ne(text.str.strip()) & text.str.strip().ne("")
            if padded.any():
                report.add(file, "ids padded with spaces; spaces removed", column=column,
                           rows=padded[padded].index.tolist(), severity="fixed")


def _check_usage(usage: UsageTable, report: ValidationReport) -> bool:
    """Check the usage file in DuckDB: columns, dates, numbers, empty ids. True when usable."""
    file = usage.path.name
    with duckdb.connect() as con:
        try:
            columns = [c.strip() for c in con.sql(f"SELECT * FROM {usage.raw_sql()} LIMIT 0").columns]
        except duckdb.Error as exc:
            message = str(exc).splitlines()[0]
            if "unicode" in str(exc).lower() or "utf" in str(exc).lower():
                report.add(file, "is not valid UTF-8; save it as UTF-8")
            else:
                report.add(file, f"cannot be read ({message})")
            return False
        missing = [c for c in TABLES["usage"].required if c not in columns]
        for column in missing:
            report.add(file, "required column missing", column=column)
        if missing:
            return False
        value = "replace(trim(value), ',', '.')" if usage.decimal_comma else "trim(value)"
        checks = {
            ("account_id", "empty"): "coalesce(trim(account_id), '') = ''",
            ("metric", "empty"): "coalesce(trim(metric), '') = ''",
            ("date", "empty"): "coalesce(trim(date), '') = ''",
            ("date", "unparseable date"): "trim(date) <> '' AND "
                                          "TRY_CAST(replace(trim(date), '/', '-') AS TIMESTAMP) IS NULL",
            ("value", "not a number"): f"trim(value) <> '' AND TRY_CAST({value} AS DOUBLE) IS NULL",
        }
        # One scan of the file for every check; examples with min_by(row, row, 5) so that a
        # file with millions of bad rows still costs no memory.
        selects = ", ".join(
            f"count(*) FILTER (WHERE {cond}), min_by(row, row, 5) FILTER (WHERE {cond})"
            for cond in checks.values()
        )
        try:
            result = con.execute(
                f"WITH raw AS (SELECT row_number() OVER () - 1 AS row, * FROM {usage.raw_sql()}) "
                f"SELECT count(*), {selects} FROM raw").fetchone()
            usage.n_rows = result[0]
            for i, (column, message) in enumerate(checks):
                n, rows = result[1 + 2 * i], result[2 + 2 * i]
                if n:
                    report.add(file, message, column=column, rows=rows, n_rows=n)
            usage.metrics = tuple(r[0] for r in con.execute(
                f"SELECT DISTINCT trim(metric) FROM {usage.raw_sql()} "
                "WHERE coalesce(trim(metric), '') <> '' ORDER BY 1").fetchall())
        except duckdb.Error as exc:
            text = str(exc)
            if "unicode" in text.lower() or "utf" in text.lower():
                report.add(file, "is not valid UTF-8; save it as UTF-8")
            else:
                report.add(file, f"cannot be read ({text.splitlines()[0]})")
            return False
    if usage.n_rows == 0:
        report.add(file, "has a header but no data rows")
        return False
    return True


def _orphans(data: CSData, ids: dict[str, pd.Series], usage_ok: bool, report: ValidationReport,
             files: dict[str, Path]) -> None:
    """Ids in other tables that `accounts` does not hold (checked even in tables with other errors)."""
    known = set(data.accounts["account_id"].dropna())
    for name in ("subscriptions", "cs_activities", "tickets", "outcomes"):
        if name in ids:
            column = ids[name]
            orphan = column.notna() & ~column.isin(known)
            if orphan.any():
                examples = ", ".join(map(str, column[orphan].unique()[:3]))
                report.add(files[name].name, f"account ids not in accounts (e.g. {examples})",
                           column="account_id", rows=orphan[orphan].index.tolist())
    if data.usage is not None and usage_ok:
        with duckdb.connect() as con:
            con.register("known", pd.DataFrame({"account_id": sorted(known)}, dtype=object))
            n, rows, ids = con.execute(
                f"WITH raw AS (SELECT row_number() OVER () - 1 AS row, trim(account_id) AS id "
                f"FROM {data.usage.raw_sql()}) SELECT count(*), list(row ORDER BY row)[1:5], "
                f"list(DISTINCT id)[1:3] FROM raw WHERE id <> '' AND id NOT IN "
                f"(SELECT account_id FROM known)").fetchone()
        ids = list(dict.fromkeys(ids or []))
        if n:
            report.add(files["usage"].name, f"account ids not in accounts (e.g. {', '.join(ids)})",
                       column="account_id", rows=rows, n_rows=n)


def _read(path: str | Path) -> tuple[CSData, ValidationReport]:
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
    usage_ok = False
    ids: dict[str, pd.Series] = {}
    for name, file in files.items():
        spec = TABLES[name]
        if name == "usage":
            decimal_comma, delimiter = False, ","
            if not file.name.lower().endswith(".parquet"):
                head = _read_text(file, report, limit=_SNIFF_BYTES)
                if head is None:
                    continue
                delimiter, decimal_comma = _sniff(head.split("\n", 1)[0])
            data.usage = UsageTable(file, delimiter, decimal_comma)
            usage_ok = _check_usage(data.usage, report)
            continue
        frame, decimal_comma = _read_table(file, report)
        if frame is None:
            continue
        if frame.empty:
            report.add(file.name, "has a header but no data rows")
            continue
        if "account_id" in frame.columns:
            ids[name] = as_id(frame["account_id"])
        n_before = len(report.errors)
        _schema_problems(frame, spec, file.name, decimal_comma, report)
        if len(report.errors) > n_before:
            continue
        _strip_ids(frame, spec, file.name, report)
        keep = [c for c in frame.columns if spec.keep_extra or c in spec.required + spec.optional]
        setattr(data, name, typed(frame[keep], spec, decimal_comma))
    if data.accounts is not None:
        _orphans(data, ids, usage_ok, report, files)
    return data, report


def validate(path: str | Path) -> ValidationReport:
    """Check a data folder against the contract; return every problem found (nothing raised).

    Examples
    --------
    >>> report = validate("data/demo")  # doctest: +SKIP
    >>> report.ok, report.format()  # doctest: +SKIP
    (True, '')
    """
    return _read(path)[1]


def load(path: str | Path) -> CSData:
    """Read a data folder into validated, typed tables.

    Parameters
    ----------
    path : str or Path
        A folder holding one file per table (``subscriptions.csv``, ``accounts.parquet``, ...).

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
    data, report = _read(path)
    if not report.ok:
        raise DataValidationError(report)
    data.notes = [p.format() for p in report.warnings]
    return data
