"""Reading a data folder: files -> validated, typed tables.

Every problem of every file is collected into one :class:`ValidationReport`; nothing is raised
until the whole folder has been read. Files are opened read-only and never modified. The
``usage`` table, which may hold tens of millions of rows, stays on disk: DuckDB checks and
aggregates it straight from the file.

Its parts: :mod:`cslab.data.tables` (the loaded data), :mod:`cslab.data.reading` (files,
encodings, delimiters, schemas) and :mod:`cslab.data.usage` (the DuckDB checks); this module
reads a whole folder with them and checks the tables against each other.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from cslab import duck
from cslab.data.contract import EARLIEST_DATE, TABLE_NAMES, TABLES, as_id, parse_dates, typed
from cslab.data.reading import (
    _SNIFF_BYTES,
    SUFFIXES,
    _read_table,
    _read_text,
    _schema_problems,
    _sniff,
    _strip_ids,
    _table_files,
    cells,
    date_format_message,  # noqa: F401  (re-exported)
)
from cslab.data.roles import SETTINGS_FILE, detect_roles, parse_roles, read_settings
from cslab.data.tables import COMPLETE_MONTH_DAYS, CSData, UsageTable  # noqa: F401  (re-exported)
from cslab.data.usage import _check_usage, _file_rows, _late_usage, _today
from cslab.data.validation import ValidationReport, shown
from cslab.errors import DataValidationError

__all__ = ["CSData", "UsageTable", "load", "validate", "SUFFIXES"]


# A date separated from every other dated row by this many empty months, among at most this share
# of the dated rows, is a stray (a mistyped year, a test row): the data's as-of lies before it.
_GAP_MONTHS = 3
_STRAY_SHARE = 0.01
# The dates that tell how far the data goes: those CSData.default_as_of reads, and the outcomes' (a
# book without usage, tickets or activities still has them); usage is counted by DuckDB. A ticket's
# closing date is left out: the generator closes tickets a few days after its last day.
_AS_OF_DATES = {
    "subscriptions": ("start_date",),
    "tickets": ("opened_at",),
    "cs_activities": ("date",),
    "outcomes": ("committed_date", "achieved_date"),
}


def _data_as_of(
    frames: dict[str, pd.DataFrame], usage_months: pd.Series | None = None
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


def _orphans(
    data: CSData, ids: dict[str, pd.Series], usage_ok: bool, report: ValidationReport, files: dict[str, Path]
) -> None:
    """Ids in other tables that `accounts` does not hold (checked even in tables with other errors).

    Ids are case-sensitive (CRM keys such as Salesforce's 15-character ids differ only in case),
    so ``a00001`` is not ``A00001``; the message says when ids match but for case.
    """
    known = set(data.accounts["account_id"].dropna())
    folded = {k.lower() for k in known}

    def message(examples, n_case: int) -> str:
        hint = (
            f"; {n_case:,} match an account id but for upper/lower case, and ids are case-sensitive" if n_case else ""
        )
        return f"account ids not in accounts (e.g. {', '.join(shown(e) for e in examples)}){hint}"

    for name in ("subscriptions", "cs_activities", "tickets", "outcomes"):
        if name in ids:
            column = ids[name]
            orphan = column.notna() & ~column.isin(known)
            if orphan.any():
                values = column[orphan]
                n_case = int(values.map(lambda v: str(v).lower() in folded).sum())
                report.add(
                    files[name].name,
                    message(values.unique()[:3], n_case),
                    column="account_id",
                    rows=orphan[orphan].index.tolist(),
                )
    if data.usage is not None and usage_ok and data.usage.local:
        with duck.connect() as con:
            con.register("known", pd.DataFrame({"account_id": sorted(known)}, dtype=object))
            n, rows, examples, n_case = con.execute(
                f"WITH raw AS (SELECT row_number() OVER () - 1 AS row, trim(account_id) AS id "
                f"FROM {data.usage.raw_sql()}) SELECT count(*), list(row ORDER BY row)[1:5], "
                f"list(DISTINCT id)[1:3], count(*) FILTER (WHERE lower(id) IN "
                f"(SELECT lower(account_id) FROM known)) FROM raw WHERE id <> '' AND id NOT IN "
                f"(SELECT account_id FROM known)"
            ).fetchone()
        if n:
            report.add(
                files["usage"].name,
                message(list(dict.fromkeys(examples or [])), n_case),
                column="account_id",
                rows=_file_rows(data.usage, rows),
                n_rows=n,
            )


def _subscription_lines(data: CSData, subs: pd.DataFrame, file: str, report: ValidationReport) -> pd.DataFrame:
    """Drop zero-length lines (with a note) and read the one currency of the book.

    Billing exports write a plan replaced on its first day as a line ending the day before it
    starts; it never ran, so it is dropped and counted (``data.zero_length_lines``). A ``currency``
    column must hold one currency: amounts in several cannot be added (convert first).
    """
    zero = subs["end_date"].notna() & (subs["end_date"] < subs["start_date"])
    if zero.any():
        data.zero_length_lines = int(zero.sum())
        report.add(
            file,
            "zero-length lines (end_date the day before start_date: a plan replaced on its first day) dropped",
            column="end_date",
            rows=zero[zero].index.tolist(),
            severity="fixed",
        )
        subs = subs[~zero]
    if "currency" in subs:
        codes = subs["currency"].astype("string").str.strip().str.upper()
        counts = codes.value_counts()
        if len(counts) > 1:
            listed = ", ".join(f"{c} ({n:,} rows)" for c, n in counts.items())
            report.add(
                file,
                f"more than one currency: {listed}; MRR in several currencies cannot "
                "be added: convert every line to one currency first",
                column="currency",
            )
        elif len(counts) == 1:
            data.currency = str(counts.index[0])
        if codes.isna().any() and len(counts):
            blank = codes.isna()
            report.add(
                file,
                f"currency blank; read as {counts.index[0]}",
                column="currency",
                rows=blank[blank].index.tolist(),
                severity="warning",
            )
        subs = subs.drop(columns="currency")
    return subs


def _read(
    path: str | Path, metric_roles: str | dict | None = None, engine: Any = None
) -> tuple[CSData, ValidationReport]:
    with warnings.catch_warnings():
        # pandas' warnings about odd cells would print between the report's lines; every odd
        # cell is reported by the checks themselves.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", pd.errors.ParserWarning)
        warnings.simplefilter("ignore", pd.errors.DtypeWarning)
        data, report = _read_checked(path, engine)
        data.engine = engine
        if report.ok or Path(str(path)).is_dir():
            _roles(data, Path(str(path)), metric_roles, report)
        return data, report


#: Suffixes of a DuckDB database file holding the contract's tables
DATABASE_SUFFIXES = (".duckdb", ".ddb", ".db")


class _Named:
    """A table's label in problem reports when it is not a file of a folder (``book.duckdb:usage``)."""

    def __init__(self, name: str) -> None:
        self.name = name


def _is_location(path: str | Path) -> bool:
    """Whether ``path`` is a URL Spark reads (``s3a://``, ``hdfs://``, ``abfss://``, ``file:/``...)."""
    return isinstance(path, str) and "://" in path or str(path).startswith("file:")


def _sources(path: str | Path, engine: Any, report: ValidationReport):
    """The tables of a source that is not a plain folder: ``(frames, usage, labels)`` or ``None``.

    A DuckDB database file: its tables named as the contract's, read by DuckDB (usage stays in the
    file). A location Spark reads (or a local folder with the spark engine): ``<table>.parquet`` or a
    folder ``<table>/`` of Parquet parts, the small tables collected, usage left in Spark.
    """
    from cslab.data.engine import connect, engine_name

    if not _is_location(path) and Path(path).is_file() and Path(path).suffix.lower() in DATABASE_SUFFIXES:
        frames, usage, labels = {}, None, {}
        quoted = str(path).replace("'", "''")
        with duck.connect() as con:
            con.execute(f"ATTACH '{quoted}' AS book (READ_ONLY)")
            names = {
                r[0]
                for r in con.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE database_name = 'book' UNION "
                    "SELECT view_name FROM duckdb_views() WHERE database_name = 'book'"
                ).fetchall()
            }
            for name in (n for n in TABLE_NAMES if n in names):
                labels[name] = _Named(f"{Path(path).name}:{name}")
                if name == "usage":
                    usage = UsageTable(Path(path), table="usage")
                    continue
                frame = con.execute(f'SELECT * FROM book."{name}"').df()
                frames[name] = cells(frame)
        return frames, usage, labels
    if not _is_location(path) and engine_name(engine) != "spark":
        return None
    if not _is_location(path) and not Path(path).is_dir():
        return None
    spark = connect(engine).spark
    root = str(path).rstrip("/")
    frames, usage, labels = {}, None, {}
    for name in TABLE_NAMES:
        for location in (f"{root}/{name}.parquet", f"{root}/{name}"):
            try:
                frame = spark.read.parquet(location)
                if name != "usage":
                    frame = frame.toPandas()
            except Exception as exc:  # noqa: BLE001 - Spark's AnalysisException and py4j's errors
                if "PATH_NOT_FOUND" in str(exc) or "does not exist" in str(exc):
                    continue  # absent
                report.add(location, f"is not readable by Spark ({str(exc).strip().splitlines()[0][:300]})")
                break
            labels[name] = _Named(location.rsplit("/", 1)[-1])
            if name == "usage":
                usage = UsageTable(location, engine=engine if engine is not None else "spark")
            else:
                frames[name] = cells(frame)
            break
    if not _is_location(path) and not labels:
        return None  # a folder of CSV files: read as a folder, usage read by Spark from its file
    return frames, usage, labels


def _check_usage_engine(usage: UsageTable, report: ValidationReport) -> tuple[bool, pd.Series | None]:
    """The usage checks a table in Spark or a warehouse allows: counts (no row numbers), by the engine.

    Required columns, empty ids and metrics, dates and values that do not parse; returns whether
    it is usable and its rows per month, as :func:`cslab.data.usage._check_usage` does for a file.
    """
    from cslab.data.engine import RAW_USAGE, _month, connect, raw_usage, typed_usage

    eng = connect(usage.engine)
    try:
        bound = usage.bind(eng)
    except Exception as exc:  # noqa: BLE001 - a missing column or an unreadable location
        report.add(usage.name, f"cannot be read by {eng.name} ({type(exc).__name__}: {str(exc).splitlines()[0]})")
        return False, None
    both = typed_usage(raw_usage(), decimal_comma=usage.decimal_comma, keep_text=True)
    counts = both.aggregate(
        n=both.count(),
        empty_id=(both.account_id.isnull() | (both.account_id == "")).sum(),
        empty_metric=(both.metric.isnull() | (both.metric == "")).sum(),
        bad_date=(both.date_text.notnull() & (both.date_text != "") & both.date.isnull()).sum(),
        bad_value=(both.value_text.notnull() & (both.value_text != "") & both.value.isnull()).sum(),
    )
    tables = {RAW_USAGE: bound}
    found = eng.run(counts, tables).iloc[0]
    usage.n_rows = int(found["n"])
    for column, key, message in (
        ("account_id", "empty_id", "empty"),
        ("metric", "empty_metric", "empty"),
        ("date", "bad_date", "unparseable date"),
        ("value", "bad_value", "not a number"),
    ):
        if int(found[key] or 0):
            report.add(usage.name, message, column=column, n_rows=int(found[key]))
    if usage.n_rows == 0:
        report.add(usage.name, "has no data rows")
        return False, None
    dated = both.filter(both.date.notnull())
    per_month = eng.run(dated.group_by(m=_month(dated.date)).aggregate(n=dated.count()), tables)
    names = both.filter(both.metric.notnull() & (both.metric != "")).select("metric").distinct().order_by("metric")
    usage.metrics = tuple(eng.run(names, tables)["metric"])
    months = pd.Series(
        per_month["n"].astype(float).to_numpy(),
        index=pd.PeriodIndex([pd.Period(year=m // 12, month=m % 12 + 1, freq="M") for m in per_month["m"]]),
    ).sort_index()
    return True, months


def _roles(data: CSData, folder: Path, given: str | dict | None, report: ValidationReport) -> None:
    """Metric roles: ``given`` (a parameter) over ``cslab.toml`` over detection from the names."""
    try:
        data.settings = read_settings(folder)
    except ValueError as exc:
        report.add(SETTINGS_FILE, str(exc).split(": ", 1)[1])
        return
    in_file = data.settings.get("metric_roles", {})
    if not isinstance(in_file, dict) or not all(isinstance(v, str) for v in in_file.values()):
        report.add(SETTINGS_FILE, '[metric_roles] should map roles to metric names, e.g. active_users = "wau"')
        return
    metrics = data.usage.metrics if data.usage is not None else ()
    where = "metric_roles"
    try:
        explicit = parse_roles(given) if isinstance(given, str) else dict(given or {})
        # `where` outlives the loop: the except clause names the source that failed
        for settings, origin, where in (  # noqa: B007 (`where` is read by the except clause)
            (in_file, f"set in {SETTINGS_FILE}", SETTINGS_FILE),
            (explicit, "set by the metric_roles parameter", "metric_roles"),
        ):
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


def _read_checked(path: str | Path, engine: Any = None) -> tuple[CSData, ValidationReport]:
    report = ValidationReport(str(path))
    data = CSData(source=str(path), report=report)
    other = _sources(path, engine, report)
    if other is not None:
        frames_in, usage, files = other
        if "subscriptions" not in files:
            report.add(str(path), "no subscriptions table: it is the one required table")
        frames = {}
        for name, frame in frames_in.items():
            if frame.empty:
                report.add(files[name].name, "has a header but no data rows")
                continue
            frames[name] = (frame, False)
        return _check_tables(data, report, frames, usage, files)
    folder = Path(path)
    if not folder.is_dir():
        report.add(str(folder), "is not a folder" if folder.exists() else "does not exist")
        return data, report
    files = _table_files(folder, report)
    for part in sorted(p for p in folder.iterdir() if p.is_dir()):
        # a folder of Parquet parts (Spark's and Hive's layout): usage/part-0000.parquet ...
        name = part.name.removesuffix(".parquet")
        if name in TABLES and name not in files and any(part.glob("**/*.parquet")):
            files[name] = part
    if "subscriptions" not in files:
        report.add(
            str(folder), "no subscriptions file (subscriptions.csv, .csv.gz or .parquet): it is the one required table"
        )
    # Read every file first: the data's as-of, which bounds the dates of events, needs them all.
    frames: dict[str, tuple[pd.DataFrame, bool]] = {}
    usage: UsageTable | None = None
    for name in (n for n in TABLE_NAMES if n in files):
        file = files[name]
        if name == "usage":
            decimal_comma, delimiter = False, ","
            if not file.is_dir() and not file.name.lower().endswith(".parquet"):
                head = _read_text(file, report, limit=_SNIFF_BYTES)
                if head is None:
                    continue
                delimiter, decimal_comma = _sniff(head.lstrip("\r\n\t ").split("\n", 1)[0])
                if delimiter == ";":
                    report.add(
                        file.name, "uses ';' as the separator (and decimal commas); read as such", severity="fixed"
                    )
            usage = UsageTable(file, delimiter, decimal_comma)
            continue
        if file.is_dir():
            frame, decimal_comma = pd.read_parquet(file), False
            frame = cells(frame)
        else:
            frame, decimal_comma = _read_table(file, report, keep_lines=True)
        if frame is None:
            continue
        if frame.empty:
            report.add(file.name, "has a header but no data rows")
            continue
        frames[name] = (frame, decimal_comma)
    return _check_tables(data, report, frames, usage, files)


def _check_tables(
    data: CSData,
    report: ValidationReport,
    frames: dict[str, tuple[pd.DataFrame, bool]],
    usage: UsageTable | None,
    files: dict[str, Any],
) -> tuple[CSData, ValidationReport]:
    """Check the tables read (each as text, as from a file) against the contract and each other."""
    usage_ok, usage_months = False, None
    if usage is not None:
        data.usage = usage
        if usage.local:
            usage_ok, usage_months = _check_usage(usage, report)
        else:
            usage_ok, usage_months = _check_usage_engine(usage, report)
    as_of, latest = _data_as_of({n: f for n, (f, _) in frames.items()}, usage_months)
    if usage_ok and usage.local:
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


def validate(path: str | Path, metric_roles: str | dict | None = None, *, engine: Any = None) -> ValidationReport:
    """Check a data source against the contract; return every problem found (nothing raised).

    ``path`` and ``engine`` as for :func:`load`.

    Examples
    --------
    >>> report = validate("data/demo")  # doctest: +SKIP
    >>> report.ok, report.format()  # doctest: +SKIP
    (True, '')
    """
    return _read(path, metric_roles, engine)[1]


def load(path: str | Path, metric_roles: str | dict | None = None, *, engine: Any = None) -> CSData:
    """Read a data source into validated, typed tables.

    Parameters
    ----------
    path : str or Path
        A folder holding one file per table (``subscriptions.csv``, ``accounts.parquet``, a folder
        ``usage/`` of Parquet parts, ...); a DuckDB database file (``.duckdb``) holding the tables
        by name; or a location Spark reads (``s3a://bucket/book``, ``hdfs://...``, ``file:///...``)
        holding ``<table>.parquet`` or ``<table>/`` Parquet parts (with the spark engine).
    metric_roles : str or dict, optional
        Roles of usage metrics set explicitly (``"active_users=wau,logins=sessions"``); they win
        over the folder's ``cslab.toml``, which wins over detection from the metric names
        (:mod:`cslab.data.roles`). Naming a metric the usage table lacks is a validation error.
    engine : str, SparkSession or Ibis backend, optional
        Where the row-level work runs (:mod:`cslab.data.engine`): ``"duckdb"`` (default, or
        ``$CSLAB_ENGINE``), ``"spark"`` or your SparkSession. With Spark the small tables are
        collected and checked here; usage stays in Spark (counted checks, no row numbers).

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
    data, report = _read(path, metric_roles, engine)
    if not report.ok:
        raise DataValidationError(report)
    data.notes = [p.format() for p in report.warnings]
    return data
