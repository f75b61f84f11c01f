"""The audit runner on stand-in notebooks: layout, statuses, failures isolated, bad input stops all."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from cslab import audit, config
from cslab.audit import AuditError, NotebookSpec, run_audit
from cslab.errors import DataValidationError
from tests.conftest import write_folder

PARAMS = """
data_dir: str = ""  # data folder
as_of: str = ""  # analysis date
client_name: str = "x"  # client
tables_dir: str = ""  # tables
threshold: int = 3  # an int parameter
"""

GOOD = """
from cslab.notebook import check_parameters, record, save_table
from cslab.results import ResultKey, declare
import cslab, pandas as pd
params = check_parameters(globals(), "aa_good")
declare(*(ResultKey(name, "aa_good", "text", name, "a stand-in's figure") for name in ("as_of", "threshold", "client")))
data = cslab.load(data_dir)
p = cslab.panel(data, as_of=as_of)
save_table(p.groupby("month", as_index=False)["mrr"].sum(), "monthly_mrr", tables_dir)
print("<b>not html</b>")
record(n_accounts=int(p["account_id"].nunique()), as_of=as_of, threshold=threshold, client=client_name)
"""

BAD = """
from cslab.notebook import check_parameters
params = check_parameters(globals(), "bb_bad")
raise RuntimeError("planted failure")
"""


def notebook(source: str) -> nbformat.NotebookNode:
    params = new_code_cell(PARAMS.strip(), metadata={"tags": ["parameters"]})
    return new_notebook(
        cells=[new_markdown_cell("# Stand-in"), params, new_code_cell(source.strip())],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
    )


@pytest.fixture
def stand_ins(tmp_path, monkeypatch):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nbformat.write(notebook(GOOD), folder / "aa_good.ipynb")
    nbformat.write(notebook(BAD), folder / "bb_bad.ipynb")
    monkeypatch.setattr(config, "NOTEBOOKS_DIR", folder)
    monkeypatch.setattr(
        audit.spec,
        "NOTEBOOKS",
        {
            "aa_good": NotebookSpec("aa_good", "Good", "Does it run?", snapshot=False, headlines=("n_accounts",)),
            "bb_bad": NotebookSpec("bb_bad", "Bad", "Does failure stay contained?"),
        },
    )
    data = write_folder(
        tmp_path / "data",
        {
            "subscriptions": "account_id,start_date,end_date,mrr\nA,2024-01-01,,10\nB,2024-02-01,2024-03-31,5\n",
            "accounts": "account_id,name\nA,Acme <script>alert(1)</script>\nB,Bravo & Co\n",
        },
    )
    return data


def test_audit_layout_and_failure_isolated(stand_ins, tmp_path):
    out = tmp_path / "out"
    result = run_audit(
        stand_ins,
        out,
        client="Client & Co",
        as_of="2024-06-30",
        progress=False,
        params={"threshold": 7},
        echo=lambda _: None,
    )
    assert result.exit_code == 1
    assert sorted(p.name for p in out.iterdir()) == [
        "aa_good.html",
        "bb_bad.html",
        "executed",
        "index.html",
        "results.json",
        "tables",
    ]
    assert sorted(p.name for p in (out / "executed").iterdir()) == ["aa_good.ipynb", "bb_bad.ipynb"]
    assert (out / "tables" / "monthly_mrr.csv").read_text().splitlines()[0] == "month,mrr"

    results = json.loads((out / "results.json").read_text())
    good, bad = results["notebooks"]["aa_good"], results["notebooks"]["bb_bad"]
    assert good["status"] == "ok" and good["error"] is None and good["seconds"] > 0
    assert good["results"] == {"n_accounts": 2, "as_of": "2024-06-30", "threshold": 7, "client": "Client & Co"}
    assert bad["status"] == "failed" and bad["error"] == "RuntimeError: planted failure"
    assert bad["executed"] == "executed/bb_bad.ipynb"
    assert results["as_of"] == "2024-06-30" and set(results["inputs"]) == {"subscriptions.csv", "accounts.csv"}

    index = (out / "index.html").read_text()
    assert "Client &amp; Co" in index and "RuntimeError: planted failure" in index
    # the headline's label, kind and meaning come from the registry (cslab.results)
    assert re.search(r"<td>Accounts</td><td class=\"num\">2</td>\s*<td class=\"meaning\">accounts in the book", index)
    assert 'href="executed/bb_bad.ipynb"' in index and 'href="aa_good.html"' in index
    report = (out / "aa_good.html").read_text()
    assert "check_parameters" not in report  # code-free
    assert "&lt;b&gt;not html&lt;/b&gt;" in report
    failed_report = (out / "bb_bad.html").read_text()
    assert "Traceback" not in failed_report and "planted failure" in failed_report


WRITER = """
from pathlib import Path
from cslab.notebook import check_parameters
params = check_parameters(globals(), "cc_write")
Path(work_dir, "model.txt").write_text("fitted by cc_write")
"""

READER = """
from pathlib import Path
from cslab.notebook import check_parameters, record
from cslab.results import ResultKey, declare
params = check_parameters(globals(), "dd_read")
declare(ResultKey("shared_model", "dd_read", "text", "Shared model", "what the writer left"))
record(shared_model=Path(work_dir, "model.txt").read_text())
"""

UNDECLARED = """
from cslab.notebook import check_parameters, record
params = check_parameters(globals(), "ee_undeclared")
record(n_acounts=3)
"""


def test_working_folder_shared_only_with_notebooks_that_declare_it(stand_ins, tmp_path, monkeypatch):
    folder = config.NOTEBOOKS_DIR
    for name, source in (("cc_write", WRITER), ("dd_read", READER)):
        stand_in = notebook(source)
        stand_in.cells[1].source += '\nwork_dir: str = ""  # the working folder'
        nbformat.write(stand_in, folder / f"{name}.ipynb")
    monkeypatch.setitem(audit.spec.NOTEBOOKS, "cc_write", NotebookSpec("cc_write", "Writer", "Writes?"))
    monkeypatch.setitem(audit.spec.NOTEBOOKS, "dd_read", NotebookSpec("dd_read", "Reader", "Reads?"))
    out = tmp_path / "out"
    result = run_audit(
        stand_ins, out, only=["aa_good", "cc_write", "dd_read"], as_of="2024-06-30", progress=False, echo=lambda _: None
    )
    assert result.exit_code == 0, {n: r.error for n, r in result.runs.items()}
    assert result.runs["dd_read"].results == {"shared_model": "fitted by cc_write"}
    injected = json.dumps(nbformat.read(out / "executed" / "aa_good.ipynb", as_version=4).cells)
    assert "work_dir" not in injected  # aa_good does not declare it: not passed
    assert not (out / "work").exists()  # the fitted models are not part of the audit
    recorded = json.loads((out / "results.json").read_text())["notebooks"]
    assert "work_dir" not in recorded["dd_read"]["parameters"]  # a path of this run, like tables_dir


def test_an_undeclared_result_key_fails_its_notebook_in_words(stand_ins, tmp_path, monkeypatch):
    nbformat.write(notebook(UNDECLARED), config.NOTEBOOKS_DIR / "ee_undeclared.ipynb")
    monkeypatch.setitem(audit.spec.NOTEBOOKS, "ee_undeclared", NotebookSpec("ee_undeclared", "Typo", "Typo?"))
    result = run_audit(
        stand_ins, tmp_path / "out", only=["ee_undeclared"], as_of="2024-06-30", progress=False, echo=lambda _: None
    )
    run = result.runs["ee_undeclared"]
    assert run.status == "failed"
    assert "UndeclaredResultError" in run.error and "'n_acounts' is not declared" in run.error


def test_unknown_or_mistyped_parameter_stops_everything(stand_ins, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(AuditError, match="unknown parameter 'treshold'"):
        run_audit(stand_ins, out, params={"treshold": 3}, echo=lambda _: None)
    with pytest.raises(AuditError, match="'threshold' should be int"):
        run_audit(stand_ins, out, params={"threshold": "many"}, echo=lambda _: None)
    assert not out.exists()


def test_invalid_data_writes_nothing_and_changes_nothing(stand_ins, tmp_path):
    (stand_ins / "subscriptions.csv").write_text("account_id,start_date,end_date,mrr\nA,never,,-1\n")
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in stand_ins.iterdir()}
    out = tmp_path / "out"
    with pytest.raises(DataValidationError):
        run_audit(stand_ins, out, echo=lambda _: None)
    assert not out.exists()
    assert not list(tmp_path.glob(".out.partial-*"))
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in stand_ins.iterdir()} == before


def test_existing_output_needs_force(stand_ins, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    with pytest.raises(AuditError, match="--force"):
        run_audit(stand_ins, out, only=["aa_good"], echo=lambda _: None)
    assert (out / "keep.txt").read_text() == "precious"
    result = run_audit(
        stand_ins, out, only=["aa_good"], force=True, as_of="2024-06-30", progress=False, echo=lambda _: None
    )
    assert result.exit_code == 0 and not (out / "keep.txt").exists()
    assert list(json.loads((out / "results.json").read_text())["notebooks"]) == ["aa_good"]


def test_cli_exit_code_two_on_invalid_input(tmp_path):
    data = write_folder(tmp_path / "bad", {"subscriptions": "account_id,start_date,mrr\nA,x,1\n"})
    run = subprocess.run(
        [sys.executable, "-m", "cslab.cli", "audit", str(data), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and "required column missing" in run.stderr
    assert not (tmp_path / "out").exists()


def test_audit_and_run_share_their_options_and_help_texts():
    import typer.main

    from cslab.cli import app

    commands = typer.main.get_command(app).commands
    options = {
        name: {p.name: (p.opts, p.help, p.default) for p in commands[name].params if p.param_type_name == "option"}
        for name in ("audit", "run")
    }
    shared = set(options["audit"]) & set(options["run"])
    assert set(options["audit"]) - shared == {"only"}
    assert {
        "client",
        "as_of",
        "param",
        "force",
        "customers",
        "id_col",
        "event_col",
        "duration_col",
        "segment_col",
        "currency",
        "anonymize",
        "anonymize_key",
        "anonymize_key_file",
        "out",
    } <= shared
    for name in shared - {"out"}:  # out defaults to reports/audit and reports/run
        assert options["audit"][name] == options["run"][name], name
        assert options["run"][name][1], f"--{name} has no help text in cslab run"


def test_notebook_kernels_start_with_thread_caps(monkeypatch):
    """Half the usable cores per kernel unless the caller says otherwise: two notebooks, or a notebook
    and the tests, then never run more OpenMP/BLAS threads than there are cores."""
    import os

    from cslab.audit.running import THREAD_VARIABLES, kernel_threads

    for name in (*THREAD_VARIABLES, "CSLAB_THREADS"):
        monkeypatch.delenv(name, raising=False)
    cores = len(os.sched_getaffinity(0))
    assert set(kernel_threads().values()) == {str(max(1, cores // 2))}
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    monkeypatch.setenv("CSLAB_THREADS", "5")
    caps = kernel_threads()
    assert caps["OPENBLAS_NUM_THREADS"] == "3" and caps["OMP_NUM_THREADS"] == "5" and caps["MKL_NUM_THREADS"] == "5"
