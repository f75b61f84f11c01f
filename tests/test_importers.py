"""cslab import: Stripe (API objects and dashboard CSV), Chargebee and event logs into data folders.

The fixtures in tests/data/importers/ are written by hand from the documented columns; the
expected MRR per month is worked out in the comments of each test.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import cslab
from cslab.cli import app
from cslab.importers.common import last_paid_day, minor_divisor, months_per_interval, parse_interval

DATA = Path(__file__).parent / "data" / "importers"


def run(*args: str):
    return CliRunner().invoke(app, ["import", *map(str, args)])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def monthly(folder: Path, as_of: str = "2024-12-31") -> pd.DataFrame:
    """MRR per account (rows) and month number (columns) from cslab.load + cslab.panel."""
    data = cslab.load(folder)
    frame = cslab.panel(data, as_of=as_of)
    return frame.pivot_table(
        index="account_id", columns=frame["month"].dt.month, values="mrr", aggfunc="sum", fill_value=0.0
    ).round(2)


@pytest.fixture(scope="module")
def stripe_folder(tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("stripe") / "book"
    result = run(
        "stripe", DATA / "stripe_subscriptions.jsonl", "--out", out, "--currency", "USD", "--rate", "JPY=0.0067"
    )
    return out, result


def test_helpers():
    assert minor_divisor("jpy") == 1 and minor_divisor("usd") == 100 and minor_divisor("KWD") == 1000
    assert months_per_interval("year") == 12 and months_per_interval("month", 3) == 3
    assert months_per_interval("week") * 52 == pytest.approx(12)
    assert parse_interval("every 2 weeks") == ("week", 2) and parse_interval("fortnight") is None
    assert last_paid_day("2024-04-01 00:00:00") == pd.Timestamp("2024-03-31")
    assert last_paid_day("2024-03-31 23:59:59") == pd.Timestamp("2024-03-31")


def test_stripe_api_objects(stripe_folder):
    out, result = stripe_folder
    assert result.exit_code == 0, result.output
    assert cslab.validate(out).ok
    text = result.output
    for expected in (
        "dropped: 1 subscription still in trial",
        "dropped: 1 subscription never paid",
        "dropped: 1 $0 lines",
        "dropped: 1 metered prices",
        "dropped: 1 invoice objects",
        "assumed: JPY converted to USD at 0.0067",
        "mapped: 2 discounts applied",
        "assumed: 1 subscription ended before their paid period's end",
    ):
        assert expected in text
    subs = pd.read_csv(out / "subscriptions.csv")
    assert set(subs["currency"]) == {"USD"}
    assert pd.read_csv(out / "accounts.csv").set_index("account_id").loc["cus_A", "name"] == "Acme Ltd"
    mrr = monthly(out)
    # cus_A: 3 x 50.00 monthly, 20% off forever = 120; from June a second subscription with two items:
    # 5 seats x 10.00 monthly + a 600.00 yearly add-on (50 a month) = 100
    assert mrr.loc["cus_A", 1] == 120 and mrr.loc["cus_A", 6] == 220
    # cus_B: 1,200 a year after a trial to 2024-03-01 (February is a trial: not paying), 120 off each
    # yearly invoice until 2024-06-01: (1200 - 120) / 12 = 90, then 100
    assert mrr.loc["cus_B", 2] == 0 and mrr.loc["cus_B", 3] == 90 and mrr.loc["cus_B", 6] == 100
    # cus_C: 10,000 JPY (zero-decimal, not divided by 100) x 0.0067 = 67; cancelled at period end
    # 2024-06-05: last paid day 2024-06-04, so not running at the end of June
    assert mrr.loc["cus_C", 5] == 67 and mrr.loc["cus_C", 6] == 0
    # cus_D: 25.00 a week = 25 x 52 / 12 = 108.33; cancelled at once on 2024-07-15 (refunded rest)
    assert mrr.loc["cus_D", 4] == 108.33 and mrr.loc["cus_D", 7] == 0
    assert subs.set_index("subscription_id").loc["sub_D", "end_date"] == "2024-07-15"
    # cus_E: a plan change seen through two events: Basic 100 to Pro 300 on 2024-05-01, two lines
    assert mrr.loc["cus_E", 4] == 100 and mrr.loc["cus_E", 5] == 300
    assert subs[subs["subscription_id"].eq("sub_E")]["end_date"].fillna("").tolist() == ["2024-04-30", ""]
    # cus_J: 300.00 every 3 months = 100; ended at its period end 2024-09-15
    assert mrr.loc["cus_J", 8] == 100 and mrr.loc["cus_J", 9] == 0
    assert {"cus_F", "cus_G", "cus_H", "cus_K"}.isdisjoint(mrr.index)
    assert mrr[12].sum() == pytest.approx(220 + 100 + 300)


def test_stripe_currencies_need_a_rate(tmp_path):
    src = DATA / "stripe_subscriptions.jsonl"
    before = digest(src)
    result = run("stripe", src, "--out", tmp_path / "book")
    assert result.exit_code == 2
    problems = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(problems) == 1 and "column currency" in problems[0] and "JPY" in problems[0]
    assert "--rate" in problems[0] and "(line 3)" in problems[0]
    assert not (tmp_path / "book").exists() and list(tmp_path.iterdir()) == []
    assert digest(src) == before


def test_stripe_dashboard_csv(tmp_path):
    out = tmp_path / "book"
    result = run("stripe", DATA / "stripe_dashboard.csv", "--out", out)
    assert result.exit_code == 0, result.output
    assert "assumed: amounts in major units" in result.output
    assert "dropped: 1 row still in trial" in result.output
    assert cslab.validate(out).ok
    accounts = pd.read_csv(out / "accounts.csv")
    assert "ops@globex.example" not in (out / "accounts.csv").read_text()  # e-mails are not copied
    assert set(accounts["account_id"]) == {"cus_1", "cus_2", "cus_3"}
    mrr = monthly(out)
    # cus_1: 2 x 49.00 monthly = 98; from May a weekly 12.00 = 52 more
    assert mrr.loc["cus_1", 4] == 98 and mrr.loc["cus_1", 5] == 150
    # cus_2: "2,400.00" a year = 200 from the trial's end 2024-02-24
    assert mrr.loc["cus_2", 2] == 200
    # cus_3: cancelled at period end 2024-09-01 00:00: paid through 2024-08-31
    assert mrr.loc["cus_3", 8] == 49 and mrr.loc["cus_3", 9] == 0


def test_stripe_dashboard_minor_units(tmp_path):
    result = run("stripe", DATA / "stripe_dashboard.csv", "--out", tmp_path / "b", "--amounts", "minor")
    assert result.exit_code == 0, result.output
    subs = pd.read_csv(tmp_path / "b" / "subscriptions.csv").set_index("subscription_id")
    assert subs.loc["sub_1", "mrr"] == pytest.approx(0.98)


def test_chargebee(tmp_path):
    out = tmp_path / "book"
    result = run("chargebee", DATA / "chargebee_subscriptions.csv", "--out", out, "--rate", "EUR=1.1")
    assert result.exit_code == 0, result.output
    assert "assumed: EUR converted to USD at 1.1" in result.output
    assert "assumed: 1 row cancelled before their paid period's end" in result.output
    assert cslab.validate(out).ok
    assert pd.read_csv(out / "accounts.csv").set_index("account_id").loc["c_2", "name"] == "Wayne Enterprises"
    mrr = monthly(out)
    # c_1: 10 seats x 15.00 = 150; from June an add-on of 300.00 every 3 months = 100 more
    assert mrr.loc["c_1", 5] == 150 and mrr.loc["c_1", 6] == 250
    # c_2: 6,000 a year = 500, non_renewing: runs to its term end 2025-02-01
    assert mrr.loc["c_2", 12] == 500
    # c_3: 250 EUR x 1.1 = 275 after the trial (to 2024-03-24)
    assert mrr.loc["c_3", 3] == 275
    # c_4: 4 x 15.00 = 60, cancelled 2024-07-20 before the term's end (the export's mrr, 0, is not used)
    assert mrr.loc["c_4", 6] == 60 and mrr.loc["c_4", 7] == 0
    # c_6: 30.00 every 2 weeks = 30 x 52 / 24 = 65
    assert mrr.loc["c_6", 9] == 65
    assert "c_5" not in mrr.index  # still in trial


def test_error_path(tmp_path):
    src = DATA / "chargebee_bad.csv"
    copy = tmp_path / "source.csv"
    shutil.copy(src, copy)
    before = digest(copy)
    out = tmp_path / "book"
    result = run("chargebee", copy, "--out", out)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    problems = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(problems) == 4, result.output
    expected = [
        ("subscriptions[customer_id]", "empty customer id", "(line 5)"),
        ("subscriptions[started_at]", "not a date", "(line 6)"),
        ("subscriptions[plan_unit_price]", "negative amount", "(line 3)"),
        ("subscriptions[billing_period_unit]", "billing interval not read", "(line 4)"),
    ]
    for column, message, line in expected:
        assert any(f"source.csv: column {column}: {message}" in p and line in p for p in problems), problems
    assert "nothing was written" in result.output
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["source.csv"]
    assert digest(copy) == before


def test_existing_folder_needs_force(stripe_folder, tmp_path):
    out = tmp_path / "book"
    assert run("stripe", DATA / "stripe_dashboard.csv", "--out", out).exit_code == 0
    before = digest(out / "subscriptions.csv")
    again = run("stripe", DATA / "stripe_dashboard.csv", "--out", out)
    assert again.exit_code == 2 and "--force" in again.output
    assert digest(out / "subscriptions.csv") == before
    assert run("stripe", DATA / "stripe_dashboard.csv", "--out", out, "--force").exit_code == 0


def test_unknown_format_and_missing_source(tmp_path):
    assert run("paddle", DATA / "events.csv", "--out", tmp_path / "x").exit_code == 2
    result = run("stripe", tmp_path / "nope.jsonl", "--out", tmp_path / "x")
    assert result.exit_code == 2 and "does not exist" in result.output
    assert not (tmp_path / "x").exists()


def test_events_by_day_and_week(stripe_folder, tmp_path):
    book, _ = stripe_folder
    out = tmp_path / "book"
    shutil.copytree(book, out)
    day = run("events", DATA / "events.csv", "--out", out)
    assert day.exit_code == 0, day.output
    usage = pd.read_csv(out / "usage.csv")
    # 17:40 at +02:00 is 15:40 UTC, the same day; 1733306400000 ms is 2024-12-04 10:00 UTC;
    # 23:30 at -05:00 on the 9th is 04:30 UTC on the 10th
    assert usage.values.tolist() == [
        ["cus_A", "2024-12-02", "login", 2],
        ["cus_A", "2024-12-03", "report_export", 1],
        ["cus_B", "2024-12-04", "login", 1],
        ["cus_B", "2024-12-10", "login", 1],
        ["cus_E", "2024-12-10", "login", 1],
    ]
    week = run("events", DATA / "events.csv", "--out", out, "--grain", "week", "--force")
    assert week.exit_code == 0, week.output
    usage = pd.read_csv(out / "usage.csv")
    assert usage.values.tolist() == [
        ["cus_A", "2024-12-02", "login", 2],
        ["cus_A", "2024-12-02", "report_export", 1],
        ["cus_B", "2024-12-02", "login", 1],
        ["cus_B", "2024-12-09", "login", 1],
        ["cus_E", "2024-12-09", "login", 1],
    ]
    data = cslab.load(out)
    assert set(data.usage.metrics) == {"login", "report_export"}
    frame = cslab.panel(data, as_of="2024-12-31", usage_agg="sum")
    assert len(frame) and cslab.validate(out).ok


def test_events_columns_by_option(tmp_path):
    src = tmp_path / "log.csv"
    src.write_text("when,org,what\n2024-03-01T10:00:00Z,o1,view\n2024-03-01T11:00:00Z,o1,view\n")
    missing = run("events", src, "--out", tmp_path / "a")
    assert missing.exit_code == 2 and "--account-col" in missing.output and "--event-col" in missing.output
    ok = run(
        "events", src, "--out", tmp_path / "a", "--account-col", "org", "--time-col", "when", "--event-col", "what"
    )
    assert ok.exit_code == 0, ok.output
    assert "no subscriptions table yet" in ok.output
    assert pd.read_csv(tmp_path / "a" / "usage.csv").values.tolist() == [["o1", "2024-03-01", "view", 2]]


def test_events_unknown_accounts_fail(stripe_folder, tmp_path):
    book, _ = stripe_folder
    out = tmp_path / "book"
    shutil.copytree(book, out)
    src = tmp_path / "log.csv"
    src.write_text("timestamp,account_id,event_type\n2024-12-01T10:00:00Z,cus_ZZ,login\n")
    result = run("events", src, "--out", out)
    assert result.exit_code == 2 and "usage.csv: column account_id" in result.output
    assert not (out / "usage.csv").exists()


def test_event_logs_in_parquet_and_json_count_as_the_csv(tmp_path):
    """The same log as CSV (counted by DuckDB), Parquet (DuckDB) and JSON lines (pandas): one usage table."""
    log = pd.read_csv(DATA / "events.csv", dtype=str)
    log.to_parquet(tmp_path / "events.parquet", index=False)
    (tmp_path / "events.jsonl").write_text("\n".join(log.to_json(orient="records", lines=True).splitlines()))
    tables = []
    for name in ("events.parquet", "events.jsonl"):
        result = run("events", tmp_path / name, "--out", tmp_path / name.replace(".", "_"), "--grain", "week")
        assert result.exit_code == 0, result.output
        assert "6 events -> 5 usage rows" in result.output
        tables.append(pd.read_csv(tmp_path / name.replace(".", "_") / "usage.csv"))
    reference = run("events", DATA / "events.csv", "--out", tmp_path / "csv", "--grain", "week")
    assert reference.exit_code == 0, reference.output
    expected = pd.read_csv(tmp_path / "csv" / "usage.csv")
    for table in tables:
        pd.testing.assert_frame_equal(table, expected)


def test_event_log_problems_name_their_lines(tmp_path):
    """Every problem at once, one line each, with the file's line numbers and how many rows."""
    src = tmp_path / "log.csv"
    rows = ["timestamp,account_id,event_type"] + ["2024-03-01T10:00:00Z,o1,view"] * 3
    rows += ["yesterday,o1,view", "2024-03-02T10:00:00Z,,view", "2024-03-02T10:00:00Z,o2,", "tomorrow,o2,view"]
    src.write_text("\n".join(rows) + "\n")
    before = src.read_bytes()
    result = run("events", src, "--out", tmp_path / "out")
    assert result.exit_code == 2
    problems = [line for line in result.output.splitlines() if line.startswith("error: log.csv")]
    assert len(problems) == 3, result.output
    assert "error: log.csv: column timestamp: not a timestamp in 2 rows (lines 5, 8)" in problems
    assert "error: log.csv: column account_id: empty account id in 1 row (line 6)" in problems
    assert "error: log.csv: column event_type: empty event type in 1 row (line 7)" in problems
    assert src.read_bytes() == before and not (tmp_path / "out").exists()


def test_notes_agree_with_their_counts():
    from cslab.importers.common import ImportOutcome

    outcome = ImportOutcome("export.csv")
    outcome.note("mapped", "customers (id, Customer ID) -> accounts.csv", 1)
    outcome.note("mapped", "trials: the line starts at the trial's end", 1)
    outcome.note("dropped", "rows without a customer", 2)
    outcome.note("dropped", "events of an unknown type", 0)  # nothing to say
    assert outcome.notes == [
        ("mapped", "1 customer (id, Customer ID) -> accounts.csv"),
        ("mapped", "1 trial: the line starts at the trial's end"),
        ("dropped", "2 rows without a customer"),
    ]
