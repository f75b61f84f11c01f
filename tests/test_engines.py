"""One pipeline, three sources, two engines: the panel on PySpark (local mode) equals the DuckDB panel
row for row, and a DuckDB database file or a Parquet location gives the same panel as the folder.

Spark needs Java 17+: without it these tests fail with a message saying so (they are never skipped;
`.ci/run` installs a JRE).
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

import cslab
from cslab.data import engine as engines
from cslab.data.contract import TABLE_NAMES
from cslab.data.synth import write_synthetic
from tests.foreign import write_foreign_book

TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """A generated book of 300 accounts over 24 months (CSV files)."""
    return write_synthetic(tmp_path_factory.mktemp("engines") / "book", n_accounts=300, n_months=24, seed=7)


@pytest.fixture(scope="module")
def spark():
    """A local SparkSession, one core, small shuffles. No Java is a failure with the engine's message."""
    try:
        session = engines.spark_session(master="local[1]")
    except engines.EngineError as exc:
        pytest.fail(f"Spark cannot start for the engine tests: {exc}", pytrace=False)
    session.conf.set("spark.sql.shuffle.partitions", "2")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def duckdb_panel(book):
    return cslab.panel(cslab.load(book))


def assert_same_panel(left: pd.DataFrame, right: pd.DataFrame) -> None:
    """Same columns, same account-month keys in the same order, values equal (numbers within 1e-9)."""
    assert list(left.columns) == list(right.columns)
    assert len(left) == len(right)
    keys = ["account_id", "month"]
    pd.testing.assert_frame_equal(left[keys], right[keys])
    for column in left.columns:
        a, b = left[column], right[column]
        if pd.api.types.is_float_dtype(a) and pd.api.types.is_float_dtype(b):
            both_missing = a.isna() & b.isna()
            assert (a.isna() == b.isna()).all(), column
            diff = (a - b).abs()[~both_missing]
            assert diff.max() <= TOLERANCE if len(diff) else True, (column, diff.max())
        else:
            pd.testing.assert_series_equal(a, b, check_names=True, obj=column)


def test_spark_panel_equals_duckdb_panel(book, spark, duckdb_panel):
    data = cslab.load(book, engine=spark)
    on_spark = cslab.panel(data)
    assert on_spark.attrs["engine"] == "spark" and duckdb_panel.attrs["engine"] == "duckdb"
    assert len(duckdb_panel) > 3000 and any(c.startswith("usage_") for c in duckdb_panel)
    assert_same_panel(duckdb_panel, on_spark)


@pytest.mark.parametrize("agg", ["sum", "max"])
def test_spark_usage_aggregates_equal_duckdb(book, spark, agg):
    data = cslab.load(book)
    on_duckdb = data.usage.monthly(as_of="2024-06-30", agg=agg)
    on_spark = data.usage.monthly(as_of="2024-06-30", agg=agg, engine=spark)
    pd.testing.assert_frame_equal(on_duckdb, on_spark, check_exact=False, rtol=0, atol=TOLERANCE)


def test_parquet_location_read_by_spark(book, spark, duckdb_panel, tmp_path):
    """Parquet parts in folders ``<table>/`` (as Spark writes them), given as a URL Spark reads."""
    root = tmp_path / "lake"
    for name in TABLE_NAMES:
        source = book / f"{name}.csv"
        if source.exists():
            frame = pd.read_csv(source, dtype=str, keep_default_na=False).replace("", None)
            if name == "usage":  # typed, as a warehouse export would be
                frame = frame.assign(date=pd.to_datetime(frame["date"]), value=frame["value"].astype(float))
            (root / name).mkdir(parents=True)
            half = len(frame) // 2
            for part, rows in enumerate((frame.iloc[:half], frame.iloc[half:])):
                # microseconds: Spark reads no nanosecond timestamps
                rows.to_parquet(root / name / f"part-0000{part}.parquet", index=False, coerce_timestamps="us")
    data = cslab.load(f"file://{root}", engine=spark)
    assert data.usage is not None and not data.usage.local
    assert data.usage.n_rows > 0 and data.usage.metrics
    panel = cslab.panel(data)
    # roles come from the metric names, whatever the source
    assert panel.attrs["metric_roles"] == duckdb_panel.attrs["metric_roles"]
    assert_same_panel(duckdb_panel, panel)
    # the same local folder of parts, read by DuckDB
    assert_same_panel(duckdb_panel, cslab.panel(cslab.load(root)))


def test_duckdb_file_source_gives_the_folder_panel(book, duckdb_panel, tmp_path):
    database = tmp_path / "book.duckdb"
    with duckdb.connect(str(database)) as con:
        for name in TABLE_NAMES:
            path = book / f"{name}.csv"
            if path.exists():
                con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_csv('{path}', all_varchar = true)")
    data = cslab.load(database)
    assert data.usage is not None and data.usage.table == "usage"
    assert_same_panel(duckdb_panel, cslab.panel(data))


def test_engine_names_and_errors(monkeypatch):
    assert engines.engine_name() == "duckdb"
    monkeypatch.setenv(engines.ENGINE_VARIABLE, "Spark")
    assert engines.engine_name() == "spark"
    with pytest.raises(engines.EngineError, match="unknown engine 'flink'"):
        engines.connect("flink")


def test_missing_java_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(engines.EngineError, match="needs Java 17 or later"):
        engines.spark_session(master="local[1]")


def test_the_expressions_compile_for_both_engines():
    """Written once: the same expressions compile to DuckDB's and Spark's SQL."""
    import ibis

    lines = ibis.table(engines.LINE_COLUMNS, name=engines.LINES)
    for expr in (
        engines.usage_monthly(engines.typed_usage(), pd.Timestamp("2024-06-30"), "mean"),
        engines.line_months(lines, pd.Timestamp("2024-06-30"), 2024 * 12 + 5),
    ):
        assert "cslab_" in ibis.to_sql(expr, dialect="duckdb")
        assert "cslab_" in engines.spark_sql(expr)


def test_audit_option_engine():
    from typer.testing import CliRunner

    from cslab.cli import app

    result = CliRunner().invoke(app, ["audit", "--help"], terminal_width=200)
    assert "--engine" in result.output
    bad = CliRunner().invoke(app, ["audit", "data/nowhere", "--engine", "flink"])
    assert bad.exit_code == 2 and "unknown engine" in bad.output


@pytest.fixture(scope="module")
def foreign_book(tmp_path_factory):
    """A book the kit's generator did not write: billing-style lines, weekly usage with other metric
    names, CRM ids, a second product, zero-length lines, data ending mid-month (tests/foreign.py)."""
    folder = tmp_path_factory.mktemp("foreign") / "book"
    write_foreign_book(folder, n_accounts=250, n_months=18, seed=5)
    return folder


def test_foreign_book_spark_panel_equals_duckdb_panel(foreign_book, spark):
    data = cslab.load(foreign_book)
    on_duckdb = cslab.panel(data)
    on_spark = cslab.panel(cslab.load(foreign_book, engine=spark))
    assert on_spark.attrs["engine"] == "spark"
    lines = data.subscriptions
    started = lines.loc[lines["start_date"] <= on_duckdb.attrs["as_of"], "account_id"].nunique()
    assert on_duckdb["account_id"].nunique() == started > 200
    assert {"usage_wau", "usage_sessions"} <= set(on_duckdb.columns)
    assert_same_panel(on_duckdb, on_spark)


def test_typed_duckdb_tables_of_a_foreign_book(foreign_book, tmp_path):
    """Tables stored with their types (DATE, DOUBLE: a warehouse extract) give the panel of the CSV
    folder; a usage row that is not a number is reported by its row, the rest of the book loads."""
    database = tmp_path / "book.duckdb"
    with duckdb.connect(str(database)) as con:
        for name in TABLE_NAMES:
            path = foreign_book / f"{name}.csv"
            if path.exists():  # DuckDB's own type detection: dates become DATE or TIMESTAMP, amounts DOUBLE
                con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_csv('{path}')")
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'subscriptions'"
            ).fetchall()
        )
    assert types["start_date"] == "DATE" and types["mrr"] == "DOUBLE"
    data = cslab.load(database)
    assert pd.api.types.is_datetime64_any_dtype(data.subscriptions["start_date"])
    assert_same_panel(cslab.panel(cslab.load(foreign_book)), cslab.panel(data))

    broken = tmp_path / "broken.duckdb"
    with duckdb.connect(str(broken)) as con:
        con.execute(f"ATTACH '{database}' AS good (READ_ONLY)")
        for name in TABLE_NAMES:
            if name != "usage" and (foreign_book / f"{name}.csv").exists():
                con.execute(f"CREATE TABLE {name} AS SELECT * FROM good.{name}")
        con.execute(
            "CREATE TABLE usage AS SELECT account_id, date, metric, "
            "CASE WHEN row_number() OVER () IN (4, 9) THEN 'n/a' ELSE CAST(value AS VARCHAR) END AS value "
            "FROM good.usage"
        )
    report = cslab.validate(broken)
    assert not report.ok
    lines = [p.format() for p in report.errors]
    assert len(lines) == 1 and "broken.duckdb:usage" in lines[0] and "not a number" in lines[0], lines
    # rows 4 and 9 of the table, as lines with the header as line 1 (the convention of every table)
    assert "column value: not a number in 2 rows (lines 5, 10)" in lines[0], lines
