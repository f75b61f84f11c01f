"""The data contract: loading, typing, and every problem reported at once."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pandas as pd
import pytest

import cslab
from cslab.errors import DataValidationError
from tests.conftest import write_folder

GOOD = {
    "subscriptions": "account_id,start_date,end_date,mrr,seats\n"
    "A,2024-01-15,2024-03-14,100,10\nA,2024-03-15,,150,15\n"
    "B,2024/01/01,2024-02-29,50,5\nB,2024-05-01 00:00:00,,60,6\n",
    "accounts": "account_id,segment,employees,health_flag\nA,SMB,10,1.5\nB,Enterprise,200,2\n",
    "tickets": "account_id,opened_at,csat\nA,2024-02-03,4\nA,2024-02-20,2\n",
    "usage": "account_id,date,metric,value\nA,2024-01-31,logins,10\nB,2024-02-29,logins,12\n",
}


def problems(report):
    return [p.format() for p in report.errors]


def test_load_types_every_table(tmp_path):
    data = cslab.load(write_folder(tmp_path / "d", GOOD))
    s = data.subscriptions
    assert s["start_date"].dtype.kind == "M" and s["end_date"].dtype.kind == "M"
    assert s.loc[1, "end_date"] is pd.NaT
    assert s["start_date"].tolist()[2:] == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-05-01")]
    assert s["mrr"].tolist() == [100, 150, 50, 60]
    # extra attribute columns of accounts are kept, typed as numbers when they are numbers
    assert data.accounts["health_flag"].tolist() == [1.5, 2.0]
    assert data.cs_activities is None and data.outcomes is None
    assert data.tables == ("subscriptions", "accounts", "usage", "tickets")
    assert data.usage.n_rows == 2 and data.usage.metrics == ("logins",)


def test_every_problem_in_every_file_at_once(tmp_path):
    folder = write_folder(
        tmp_path / "bad",
        {
            "subscriptions": "account_id,start_date,mrr\nA,2024-13-01,-5\nB,2024-01-01,abc\nC,2024-01-01,1\n",
            "accounts": "account_id\nA\nA\nB\n",
            "tickets": "",
            "outcomes": "account_id,outcome,committed_date\n",
            "notes.txt": "hello",
        },
    )
    (folder / "cs_activities.csv").write_bytes(b"account_id,date,activity_type\nA\xe9,2024-01-01,qbr\n")
    report = cslab.validate(folder)
    lines = problems(report)
    expected = [
        "error: subscriptions.csv: column end_date: required column missing",
        "error: subscriptions.csv: column start_date: unparseable date in 1 row (line 2)",
        "error: subscriptions.csv: column mrr: not a number in 1 row (line 3)",
        "error: subscriptions.csv: column mrr: negative in 1 row (line 2)",
        "error: accounts.csv: column account_id: duplicate values in 2 rows (lines 2, 3)",
        "error: tickets.csv: is empty",
        "error: outcomes.csv: has a header but no data rows",
        "error: cs_activities.csv: is not valid UTF-8 (byte 0xe9 on line 2); save it as UTF-8",
    ]
    assert sorted(lines) == sorted(expected)
    assert [p.format() for p in report.warnings] == ["warning: notes.txt: not a table of the data contract; ignored"]
    with pytest.raises(DataValidationError) as info:
        cslab.load(folder)
    assert "required column missing" in str(info.value)


def test_end_before_start_and_orphans(tmp_path):
    folder = write_folder(
        tmp_path / "d",
        {
            "subscriptions": "account_id,start_date,end_date,mrr\nA,2024-03-01,2024-02-01,10\n"
            "Z,2024-01-01,,10\nY,2024-01-01,,5\n",
            "accounts": "account_id\nA\n",
            "usage": "account_id,date,metric,value\nA,2024-01-31,x,1\nQ,2024-01-31,x,1\nA,soon,x,1\n",
        },
    )
    lines = problems(cslab.validate(folder))
    assert (
        "error: subscriptions.csv: column end_date: end_date before start_date by more than a day in 1 row (line 2)"
    ) in lines
    assert (
        "error: subscriptions.csv: column account_id: account ids not in accounts (e.g. Z, Y) in 2 rows (lines 3, 4)"
    ) in lines
    assert "error: usage.csv: column date: unparseable date in 1 row (line 4)" in lines
    assert "error: usage.csv: column account_id: account ids not in accounts (e.g. Q) in 1 row (line 3)" in lines


def test_spreadsheet_csv_bom_semicolon_decimal_comma(tmp_path):
    folder = tmp_path / "xl"
    folder.mkdir()
    (folder / "subscriptions.csv").write_bytes(
        "\ufeffaccount_id;start_date;end_date;mrr\n A ;2024/01/01;;99,5\n".encode("utf-8")
    )
    data = cslab.load(folder)
    assert data.subscriptions["mrr"].tolist() == [99.5]
    assert data.subscriptions["account_id"].tolist() == ["A"]
    notes = "\n".join(data.notes)
    assert "byte-order mark" in notes and "';'" in notes and "padded with spaces" in notes


def test_parquet_and_gzip(tmp_path):
    folder = tmp_path / "pq"
    folder.mkdir()
    pd.DataFrame(
        {"account_id": ["A"], "start_date": pd.to_datetime(["2024-01-01"]), "end_date": [pd.NaT], "mrr": [10.0]}
    ).to_parquet(folder / "subscriptions.parquet")
    import gzip

    (folder / "accounts.csv.gz").write_bytes(gzip.compress(b"account_id,segment\nA,SMB\n"))
    data = cslab.load(folder)
    assert data.subscriptions["mrr"].tolist() == [10.0]
    assert data.accounts["segment"].tolist() == ["SMB"]


def test_validate_cli_exit_codes_no_traceback_no_writes(tmp_path):
    folder = write_folder(tmp_path / "bad", {"subscriptions": "account_id,start_date,mrr\nA,x,-1\n"})
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    run = subprocess.run([sys.executable, "-m", "cslab.cli", "validate", str(folder)], capture_output=True, text=True)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr + run.stdout
    assert "subscriptions.csv: column mrr: negative in 1 row (line 2)" in run.stderr
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    assert after == before
    good = write_folder(tmp_path / "good", GOOD)
    ok = subprocess.run([sys.executable, "-m", "cslab.cli", "validate", str(good)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "cslab.cli", "validate", str(tmp_path / "nope")], capture_output=True, text=True
    )
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_snapshot_mode_pysurvival(pysurvival_path):
    data = cslab.load_customers(pysurvival_path, event_col="churned", duration_col="months_active")
    c = data.customers
    assert len(c) == 2000 and data.snapshot_mode
    assert c["account_id"].tolist()[:3] == ["1", "2", "3"]
    assert round(c["event"].mean(), 3) == 0.466
    assert c["duration"].between(0, 12).all()
    assert any("row numbers" in n for n in data.notes)
    assert c["csat_score"].dtype.kind == "f" and c["product_payroll"].dtype == object


def test_snapshot_mode_text_labels_and_numbers_with_blanks(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text(
        "customer,Churn,tenure,TotalCharges,plan\nc1,Yes,3,29.5,basic\n"
        "c2,No,10, ,pro\nc3,True,1,100,basic\nc4,false,7,12,pro\n"
    )
    data = cslab.load_customers(path, id_col="customer", event_col="Churn", duration_col="tenure")
    c = data.customers
    assert c["event"].tolist() == [1, 0, 1, 0]
    assert c["TotalCharges"].isna().tolist() == [False, True, False, False]
    assert any("numbers stored as text" in n for n in data.notes)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,Churn\n1,maybe\n2,yes\n")
    with pytest.raises(DataValidationError, match="not a churn flag"):
        cslab.load_customers(bad, id_col="id", event_col="Churn")
