"""The loaded data: :class:`CSData` (the typed tables of one source) and :class:`UsageTable`
(the usage table, left where it lies: a file or a DuckDB database read by DuckDB, or a location
Spark reads, or a table of an Ibis backend)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cslab import duck
from cslab.data.contract import TABLE_NAMES
from cslab.data.months import month_start
from cslab.data.roles import MetricRoles
from cslab.data.validation import ValidationReport

__all__ = ["CSData", "UsageTable", "COMPLETE_MONTH_DAYS"]

#: A month whose latest observed date falls in its last this-many days counts as complete.
COMPLETE_MONTH_DAYS = 7


# --------------------------------------------------------------------------------------------
# The loaded data
# --------------------------------------------------------------------------------------------
@dataclass
class UsageTable:
    """The ``usage`` table, left where it lies and aggregated by an engine (:mod:`cslab.data.engine`).

    Parameters
    ----------
    path : Path or str
        The CSV or Parquet file (or folder of Parquet parts), the DuckDB database file holding
        the table (``table`` names it), or a location Spark reads (``engine`` is Spark).
    delimiter : str
        The CSV separator (ignored for Parquet).
    decimal_comma : bool
        Whether numbers are written with a decimal comma.
    table : str, optional
        The table's name in a DuckDB database file or an Ibis backend.
    engine : optional
        Where the table lives when DuckDB does not read it: ``"spark"`` or a SparkSession (``path``
        is a location Spark reads), or an Ibis backend (``table`` is its name there).
    """

    path: Path | str
    delimiter: str = ","
    decimal_comma: bool = False
    n_rows: int = 0
    metrics: tuple[str, ...] = ()
    table: str | None = None
    engine: Any = None

    @property
    def local(self) -> bool:
        """Whether DuckDB reads it here (a local file or DuckDB database), so its checks can run."""
        return self.engine is None

    @property
    def text_file(self) -> bool:
        """Whether it is a CSV file read here: line numbers and the text-level checks apply (not to
        Parquet, a folder of parts or a database table)."""
        path = Path(str(self.path))
        return self.local and self.table is None and path.is_file() and not path.name.lower().endswith(".parquet")

    @property
    def name(self) -> str:
        """The name shown in problem reports."""
        if self.table is not None and self.engine is None:
            return f"{Path(self.path).name}:{self.table}"
        return Path(str(self.path)).name if self.engine is None else str(self.path)

    def relation_sql(self) -> str:
        """DuckDB SQL selecting the table with typed columns (account_id, date, metric, value)."""
        value = "replace(trim(value), ',', '.')" if self.decimal_comma else "trim(value)"
        return (
            "SELECT trim(account_id) AS account_id, "
            "TRY_CAST(replace(trim(date), '/', '-') AS TIMESTAMP) AS date, "
            f"trim(metric) AS metric, TRY_CAST({value} AS DOUBLE) AS value FROM {self.raw_sql()}"
        )

    def raw_sql(self) -> str:
        """DuckDB SQL reading the table with every column as text."""
        if not self.local:
            from cslab.data.engine import EngineError

            raise EngineError(f"the usage table {self.path} is read by {self.engine!r}, not DuckDB")
        path = str(self.path).replace("'", "''")
        as_text = (
            "(SELECT CAST(account_id AS VARCHAR) AS account_id, CAST(date AS VARCHAR) AS date,"
            " CAST(metric AS VARCHAR) AS metric, CAST(value AS VARCHAR) AS value FROM {})"
        )
        if self.table is not None:
            table = self.table.replace("'", "''")
            return as_text.format(f"read_duckdb('{path}', table_name='{table}')")
        if Path(self.path).is_dir():  # a folder of Parquet parts
            return as_text.format(f"read_parquet('{path}/**/*.parquet')")
        if Path(self.path).name.endswith(".parquet"):
            return as_text.format(f"read_parquet('{path}')")
        delim = self.delimiter.replace("'", "''")
        return f"read_csv('{path}', delim='{delim}', header=true, all_varchar=true, quote='\"')"

    def bind(self, engine: Any = None) -> Any:
        """The raw table (every column text) as ``engine`` reads it, for :meth:`Engine.run`.

        DuckDB: the SQL of :meth:`raw_sql`; Spark: a Spark DataFrame of the file or location; an
        Ibis backend: the table's name there.
        """
        from cslab.data.engine import EngineError, connect

        eng = connect(self.engine if engine is None else engine)
        if eng.name == "duckdb" and eng.session is None:
            return self.raw_sql()
        if eng.name == "spark":
            if self.table is not None and self.local:
                raise EngineError(
                    f"the usage table lies in the DuckDB file {self.path}, which Spark cannot read: use the duckdb "
                    "engine, or export the tables as Parquet for Spark"
                )
            location = str(self.path)
            if self.local and not Path(location).is_dir() and not location.endswith(".parquet"):
                frame = eng.spark.read.csv(location, header=True, sep=self.delimiter, quote='"', inferSchema=False)
            else:
                frame = eng.spark.read.parquet(location)
            frame = frame.toDF(*[c.strip() for c in frame.columns])
            columns = ("account_id", "date", "metric", "value")
            return frame.selectExpr(*(f"CAST(`{c}` AS STRING) AS {c}" for c in columns))
        if self.table is None:
            raise EngineError(f"the {eng.name} engine reads usage from a table: name it (UsageTable.table)")
        return self.table

    def monthly(
        self, as_of: str | pd.Timestamp | None = None, agg: str = "mean", *, engine: Any = None
    ) -> pd.DataFrame:
        """Usage aggregated to account x month x metric, by the engine (DuckDB by default).

        Parameters
        ----------
        as_of : date, optional
            Rows dated after it are ignored (no peeking past the analysis date).
        agg : {"mean", "sum", "max"}
            How the rows of one month are combined. ``mean`` suits levels (active users) sampled
            at any frequency; ``sum`` suits counts logged per event or per day.
        engine : optional
            ``"duckdb"``, ``"spark"``, a SparkSession or an Ibis backend (:mod:`cslab.data.engine`);
            default: where the table lives, else DuckDB.

        Returns
        -------
        DataFrame with ``account_id``, ``month`` (first day), ``metric``, ``value``.

        Examples
        --------
        >>> data = load("data/demo")  # doctest: +SKIP
        >>> data.usage.monthly(as_of="2025-06-30").head()  # doctest: +SKIP
        """
        out = self._monthly(as_of, agg, engine)
        out.insert(1, "month", month_start(out.pop("m").to_numpy()).astype("datetime64[ns]"))
        return out[["account_id", "month", "metric", "value"]]

    def _monthly(self, as_of, agg: str, engine: Any) -> pd.DataFrame:
        """:meth:`monthly` with the month index ``m`` instead of ``month`` (what the panel joins on)."""
        from cslab.data.engine import RAW_USAGE, connect, typed_usage, usage_monthly

        if agg not in {"mean", "sum", "max"}:
            raise ValueError(f"agg must be 'mean', 'sum' or 'max', not {agg!r}")
        eng = connect(self.engine if engine is None else engine)
        # Exact decimal sums (cslab.data.engine.usage_monthly): the panel, and every figure after it,
        # is the same on every run and every engine.
        expr = usage_monthly(
            typed_usage(decimal_comma=self.decimal_comma), None if as_of is None else pd.Timestamp(as_of), agg
        )
        out = eng.run(expr, {RAW_USAGE: self.bind(eng)})
        out["m"] = out["m"].astype("int64")
        out["value"] = out["value"].astype("float64")
        return out.reset_index(drop=True)

    def query(self, sql: str) -> pd.DataFrame:
        """Run SQL against the typed table, available as ``usage`` (DuckDB's dialect; Spark SQL on Spark).

        Examples
        --------
        >>> data.usage.query("SELECT metric, count(*) AS n FROM usage GROUP BY metric")  # doctest: +SKIP
        """
        if self.local:
            with duck.connect() as con:
                con.sql(f"CREATE VIEW usage AS {self.relation_sql()}")
                return con.sql(sql).df()
        from cslab.data.engine import RAW_USAGE, EngineError, connect, spark_sql, typed_usage

        eng = connect(self.engine)
        if eng.spark is None:
            raise EngineError(f"SQL on a usage table in {eng.name} runs there: query it with {eng.name}'s client")
        self.bind(eng).createOrReplaceTempView(RAW_USAGE)
        eng.spark.sql(spark_sql(typed_usage(decimal_comma=self.decimal_comma))).createOrReplaceTempView("usage")
        return eng.spark.sql(sql).toPandas()


@dataclass
class CSData:
    """The tables of one source, validated and typed; absent optional tables are ``None``.

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
    #: the engine the panel runs on (:mod:`cslab.data.engine`): a name, a SparkSession or an Ibis
    #: backend; ``None`` is ``$CSLAB_ENGINE``, else DuckDB
    engine: Any = None

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
            counts = self.usage.query(
                "SELECT count(*) AS n, count(*) FILTER (WHERE day(date) = 1) AS f FROM usage WHERE date IS NOT NULL"
            )
            n, n_first = n + int(counts["n"].iloc[0]), n_first + int(counts["f"].iloc[0])
        return n > 0 and n_first >= 0.9 * n

    def as_of_note(self) -> str | None:
        """A sentence when the default as-of lies before the latest date (a mid-month export)."""
        latest = self.last_date()
        as_of = self._as_of_after(latest)
        if as_of >= latest:
            return None
        return (
            f"the data's last date is {latest:%Y-%m-%d}, before the end of {latest:%B %Y}; that "
            f"month is not complete, so the analysis date is the end of the month before, "
            f"{as_of:%Y-%m-%d} (set --as-of to choose another)"
        )
