"""Engines: where the heavy, row-level part of the pipeline runs (DuckDB, Apache Spark, a warehouse).

Two steps touch every row and are written once, as `Ibis <https://ibis-project.org>`_ expressions,
so that each engine runs the same code:

* :func:`usage_monthly`: usage rows -> account x month x metric (``mean``, ``sum`` or ``max``; the
  sums and means over exact decimals, as :meth:`UsageTable.monthly` always did, then doubles);
* :func:`line_months`: subscription lines -> account x month MRR, seats, billing period and plan,
  by a join with a month calendar (the panel's month-end snapshot rule, censoring at ``as_of``).

What comes out of them is one row per account and month (or per account, month and metric): the
per-account steps after them (the month grid, the movement classification, tickets and activities
counted per month) are cheap and stay in pandas / numpy (:mod:`cslab.data.panel`).

An engine is chosen by name or given as an object:

``"duckdb"`` (the default)
    an in-process DuckDB (``ibis.duckdb.connect()``); usage is read from the file where it lies.
``"spark"``
    the active SparkSession, else a new one (``local[*]``, or ``$CSLAB_SPARK_MASTER``); needs
    ``pyspark`` and Java 17+.
a ``SparkSession``
    your session (a cluster's, Databricks'); usage is read by Spark from its path.
an Ibis backend
    any backend Ibis connects to (a warehouse: Snowflake, BigQuery, Postgres, Trino, ...); the
    tables of the data contract are read from it by name.

``$CSLAB_ENGINE`` sets the default engine name (the audit sets it for the notebooks it runs).

Examples
--------
>>> engine = connect("duckdb")  # doctest: +SKIP
>>> engine.name
'duckdb'
>>> from pyspark.sql import SparkSession  # doctest: +SKIP
>>> data = cslab.load("s3a://bucket/book", engine=SparkSession.builder.getOrCreate())  # doctest: +SKIP
>>> monthly = cslab.panel(data)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import os
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from cslab.errors import CSLabError

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

__all__ = [
    "ENGINES",
    "ENGINE_VARIABLE",
    "Engine",
    "EngineError",
    "connect",
    "engine_name",
    "spark_session",
    "raw_usage",
    "typed_usage",
    "usage_monthly",
    "line_months",
]

#: The engines known by name
ENGINES = ("duckdb", "spark")
#: The environment variable naming the default engine
ENGINE_VARIABLE = "CSLAB_ENGINE"
#: The environment variable naming the master of a SparkSession the kit creates
MASTER_VARIABLE = "CSLAB_SPARK_MASTER"

#: The names of the unbound tables the expressions read (bound by :meth:`Engine.run`)
RAW_USAGE, LINES, CALENDAR = "cslab_usage_raw", "cslab_lines", "cslab_calendar"
#: The columns of :data:`LINES` and their types
LINE_COLUMNS = {
    "account_id": "string",
    "start_date": "timestamp",
    "end_date": "timestamp",
    "mrr": "float64",
    "line": "int64",
    "seats": "float64",
    "billing_period_months": "float64",
    "plan": "string",
}

#: Exact decimals for sums and means: DuckDB and Spark add doubles in parallel in no fixed order,
#: so a double sum over millions of rows differs in its last bits between runs (and engines).
_DECIMAL = (38, 9)


class EngineError(CSLabError):
    """An engine cannot be used: unknown name, pyspark or Java missing, a source it cannot read."""


@dataclass
class Engine:
    """An engine: its name and the connection the expressions run on.

    The expressions of this module are built over unbound Ibis tables (:data:`RAW_USAGE`,
    :data:`LINES`, :data:`CALENDAR`); :meth:`run` binds each name to what the engine holds (a file
    DuckDB reads, a Spark DataFrame, a pandas frame uploaded) and runs the SQL Ibis compiles for
    the engine's dialect. DuckDB and Spark run through their own drivers; any other Ibis backend
    runs the expression itself.

    Parameters
    ----------
    name : str
        ``"duckdb"``, ``"spark"`` or the Ibis backend's name (``"snowflake"``, ...).
    session : SparkSession, Ibis backend or None
        Spark's session; the Ibis backend; ``None`` for DuckDB (a new in-memory database per run).
    """

    name: str
    session: Any = None

    @property
    def spark(self):
        """The SparkSession of a Spark engine (``None`` for the others)."""
        return self.session if self.name == "spark" else None

    def run(self, expr: ir.Table, tables: dict[str, Any]) -> pd.DataFrame:
        """Run ``expr`` with each unbound table name bound to ``tables[name]``; a pandas DataFrame.

        ``tables`` values: a pandas DataFrame (uploaded); for DuckDB, SQL text of a relation
        (``read_csv(...)``); for Spark, a Spark DataFrame; for an Ibis backend, a table name there.
        """
        import ibis

        if self.name == "duckdb" and self.session is None:
            from cslab import duck

            with duck.connect() as con:
                for name, table in tables.items():
                    if isinstance(table, pd.DataFrame):
                        con.register(name, table)
                    else:
                        con.execute(f"CREATE TEMP VIEW {name} AS SELECT * FROM {table}")
                return con.sql(ibis.to_sql(expr, dialect="duckdb")).df()
        if self.name == "spark":
            spark = self.session
            for name, table in tables.items():
                if isinstance(table, pd.DataFrame):
                    # NaN and NaT are missing values (null), as DuckDB reads them from pandas
                    rows = table.astype(object).where(table.notna(), None)
                    table = spark.createDataFrame(rows, schema=_spark_schema(table), verifySchema=False)
                table.createOrReplaceTempView(name)
            return spark.sql(spark_sql(expr)).toPandas()
        backend = self.session
        for name, table in tables.items():
            if isinstance(table, pd.DataFrame):
                backend.create_table(name, table, temp=True, overwrite=True)
            elif table != name:
                backend.create_view(name, backend.table(table), overwrite=True)
        return backend.execute(expr)


def spark_sql(expr: ir.Table) -> str:
    """The Spark SQL of an expression (Ibis' PySpark compiler)."""
    import ibis
    import ibis.backends.pyspark

    if ibis.options.pyspark is None:  # the backend's options, which its compiler reads
        ibis.backends.pyspark.Backend.register_options()
    return ibis.to_sql(expr, dialect="pyspark")


def _spark_schema(frame: pd.DataFrame) -> str:
    """A Spark DDL schema for a pandas frame of the kit (text, timestamps, doubles, integers)."""
    types = []
    for column, dtype in frame.dtypes.items():
        if pd.api.types.is_datetime64_any_dtype(dtype):
            kind = "timestamp"
        elif pd.api.types.is_integer_dtype(dtype):
            kind = "bigint"
        elif pd.api.types.is_float_dtype(dtype):
            kind = "double"
        else:
            kind = "string"
        types.append(f"`{column}` {kind}")
    return ", ".join(types)


def engine_name(engine: Any = None) -> str:
    """The name of an engine given as :func:`connect` takes it (``None``: ``$CSLAB_ENGINE`` or duckdb).

    Examples
    --------
    >>> engine_name("Spark")
    'spark'
    """
    if engine is None:
        engine = os.environ.get(ENGINE_VARIABLE) or "duckdb"
    if isinstance(engine, Engine):
        return engine.name
    if isinstance(engine, str):
        name = engine.strip().lower()
        if name not in ENGINES:
            raise EngineError(f"unknown engine {engine!r}; known: {', '.join(ENGINES)} (or pass an Ibis backend)")
        return name
    if type(engine).__name__ == "SparkSession":
        return "spark"
    return str(getattr(engine, "name", type(engine).__name__))


def connect(engine: Any = None) -> Engine:
    """The :class:`Engine` for a name, a SparkSession or an Ibis backend.

    Parameters
    ----------
    engine : str, SparkSession, Ibis backend or Engine, optional
        ``"duckdb"`` (default, or ``$CSLAB_ENGINE``), ``"spark"`` (the active SparkSession, else a
        new local one), a SparkSession, or any Ibis backend (a warehouse).

    Raises
    ------
    EngineError
        Unknown name; ``pyspark`` not installed; no Java for Spark.

    Examples
    --------
    >>> connect().name
    'duckdb'
    """
    if isinstance(engine, Engine):
        return engine
    name = engine_name(engine)
    if name == "duckdb" and (engine is None or isinstance(engine, str)):
        return Engine("duckdb")
    if name == "spark":
        session = spark_session() if engine is None or isinstance(engine, str) else engine
        # Spark reads naive timestamps in the session's time zone: UTC, as Ibis' own backend does
        session.conf.set("spark.sql.session.timeZone", "UTC")
        return Engine("spark", session)
    # an Ibis backend given as it is (a warehouse, or a DuckDB connection of the caller's)
    if not hasattr(engine, "execute") or not hasattr(engine, "table"):
        raise EngineError(f"engine must be 'duckdb', 'spark', a SparkSession or an Ibis backend, not {engine!r}")
    return Engine(name, engine)


def spark_session(master: str | None = None):
    """The active SparkSession, else a new one (``master``, ``$CSLAB_SPARK_MASTER`` or ``local[*]``).

    A new session gets few shuffle partitions (the kit's aggregates are small) and no UI.

    Raises
    ------
    EngineError
        ``pyspark`` is not installed, or Java is missing (Spark needs Java 17 or later).
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise EngineError(
            "the spark engine needs pyspark: pip install 'cslab[spark]' (or pyspark>=3.5 and ibis-framework[pyspark])"
        ) from exc
    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    java_home = os.environ.get("JAVA_HOME")
    if not shutil.which("java") and not (java_home and os.path.exists(os.path.join(java_home, "bin", "java"))):
        raise EngineError(
            "the spark engine needs Java 17 or later, and no java was found (neither on PATH nor in $JAVA_HOME): "
            "install a JRE (Debian/Ubuntu: apt-get install default-jre-headless) or set JAVA_HOME"
        )
    master = master or os.environ.get(MASTER_VARIABLE) or "local[*]"
    builder = (
        SparkSession.builder.master(master)
        .appName("cslab")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
    )
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - py4j's gateway error says little; say what to check
        raise EngineError(
            f"Spark could not start ({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}); "
            "check that Java 17 or later is installed (java -version) and JAVA_HOME points to it"
        ) from exc
    session.sparkContext.setLogLevel("ERROR")
    return session


# --------------------------------------------------------------------------------------------
# The row-level expressions, written once
# --------------------------------------------------------------------------------------------
def _month(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Month index (year * 12 + month - 1), as :func:`cslab.data.months.month_index`."""
    return (ts.year() * 12 + ts.month() - 1).cast("int64")


@functools.cache
def _trim():
    """SQL's ``trim(text)``: leading and trailing spaces, the same in DuckDB and Spark (Ibis'
    ``strip()`` removes every whitespace character, at twice the cost in DuckDB)."""
    import ibis

    @ibis.udf.scalar.builtin(name="trim")
    def trim(value: str) -> str:  # pragma: no cover - compiled to SQL, never called
        ...

    return trim


def raw_usage() -> ir.Table:
    """The usage table as read, every column text (``cslab_usage_raw``: bound by :meth:`Engine.run`)."""
    import ibis

    return ibis.table(dict.fromkeys(("account_id", "date", "metric", "value"), "string"), name=RAW_USAGE)


def typed_usage(raw: ir.Table | None = None, *, decimal_comma: bool = False, keep_text: bool = False) -> ir.Table:
    """Usage with typed columns (``account_id``, ``date``, ``metric``, ``value``) from its text.

    Cells are trimmed of spaces; dates parse as timestamps (``2024/03/01`` as ``2024-03-01``), values
    as doubles (a decimal comma when ``decimal_comma``); what does not parse is null. With
    ``keep_text`` the cells as read are kept beside them (``date_text``, ``value_text``).
    """
    raw = raw_usage() if raw is None else raw
    trim = _trim()
    value = trim(raw.value)
    value = value.replace(",", ".") if decimal_comma else value
    columns = {
        "account_id": trim(raw.account_id),
        "date": trim(raw.date).replace("/", "-").try_cast("timestamp"),
        "metric": trim(raw.metric),
        "value": value.try_cast("float64"),
    }
    if keep_text:
        columns.update(date_text=trim(raw.date), value_text=trim(raw.value))
    return raw.select(**columns)


def usage_monthly(usage: ir.Table, as_of: pd.Timestamp | None = None, agg: str = "mean") -> ir.Table:
    """Usage (typed, :func:`typed_usage`) aggregated to account x month x metric.

    Returns a table of ``account_id``, ``m`` (month index), ``metric``, ``value`` (double), ordered
    by the first three. ``mean`` and ``sum`` run over exact decimals (values are below 1e15,
    checked on loading): the same result on every run and every engine.
    """
    import ibis

    if agg not in {"mean", "sum", "max"}:
        raise ValueError(f"agg must be 'mean', 'sum' or 'max', not {agg!r}")
    rows = usage.filter(usage.date.notnull(), usage.value.notnull())
    if as_of is not None:
        rows = rows.filter(rows.date <= ibis.literal(pd.Timestamp(as_of).to_pydatetime(), type="timestamp"))
    if agg == "max":
        value = rows.value.max()
    else:
        exact = rows.value.cast(ibis.dtype(f"decimal{_DECIMAL}"))
        value = exact.mean() if agg == "mean" else exact.sum()
    out = rows.group_by(account_id=rows.account_id, m=_month(rows.date), metric=rows.metric).aggregate(
        value=value.cast("float64")
    )
    return out.order_by(["account_id", "m", "metric"])


def line_months(lines: ir.Table, as_of: pd.Timestamp, as_of_m: int) -> ir.Table:
    """Account x month MRR and seats from subscription lines (the panel's month-end snapshot rule).

    A line counts in a month when it runs on the month's last day (on ``as_of`` in the month of
    ``as_of``); ``end_date`` is its last paid day; a line still running at ``as_of`` (no end, or an
    end after it) is right-censored there.

    Parameters
    ----------
    lines : Table
        ``account_id``, ``start_date``, ``end_date``, ``mrr``, ``line`` (its position, breaking ties
        of the largest line), optionally ``seats``, ``billing_period_months``, ``plan``.
    as_of : Timestamp
        The analysis date.
    as_of_m : int
        Its month index.

    The month calendar is the table :data:`CALENDAR` (``m``: every month index from the earliest
    start to ``as_of_m``), bound by :meth:`Engine.run`.

    Returns
    -------
    Table of ``account_id``, ``m``, ``mrr`` (sum of the lines), ``seats`` (sum; null when no line
    has seats), ``billing_period_months`` (max) and ``plan`` (the plan of the largest line), when the
    lines have those columns.
    """
    import ibis

    columns = set(lines.columns)
    as_of_lit = ibis.literal(pd.Timestamp(as_of).to_pydatetime(), type="timestamp")
    lines = lines.filter(lines.start_date <= as_of_lit)
    end = lines.end_date
    censored = end.isnull() | (end >= as_of_lit)
    end_m = _month(end)
    # a line ending on its month's last day runs at that month's snapshot; one ending earlier does not
    month_end = _month(end + ibis.interval(days=1)) != end_m
    last = ibis.cases((censored, as_of_m), (month_end, end_m), else_=end_m - 1)
    spans = lines.mutate(first_m=_month(lines.start_date), last_m=last)
    spans = spans.filter(spans.last_m >= spans.first_m)
    calendar = ibis.table({"m": "int64"}, name=CALENDAR)
    rows = spans.join(calendar, (calendar.m >= spans.first_m) & (calendar.m <= spans.last_m))
    keys = [rows.account_id, rows.m]
    metrics = {"mrr": rows.mrr.sum()}
    if "seats" in columns:
        metrics["seats"] = rows.seats.sum()  # null when no line has seats, as pandas' min_count=1
    if "billing_period_months" in columns:
        metrics["billing_period_months"] = rows.billing_period_months.max()
    out = rows.group_by(keys).aggregate(**metrics)
    if "plan" in columns:
        order = ibis.window(group_by=keys, order_by=[rows.mrr.desc(), rows.line])
        largest = rows.mutate(rank=ibis.row_number().over(order))
        largest = largest.filter(largest["rank"] == 0).select("account_id", "m", "plan")
        out = out.left_join(largest, ["account_id", "m"]).select(*out.columns, "plan")
    return out
