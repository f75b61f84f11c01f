"""Hostile inputs: every malformed folder of the corpus (tests/hostile.py) is refused or fixed.

For each invalid folder, ``cslab validate`` and ``cslab audit`` (the command's entry point, run in
two worker processes; a sample also as one new process per command) exit 2 with one line per
problem naming the file, the column, the count and example lines; print no traceback; write
nothing (no audit folder, no partial folder beside it); run no notebook; and leave every input
file byte-identical. For each odd but usable folder,
``cslab validate`` exits 0 and says what it fixed, and the loaded tables equal the untouched book's.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import cslab
from tests.hostile import AS_OF, BLANK_LINES, CASES, build, write_book

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "cslab.cli"]
WORKERS = 2
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
INVALID = [name for name, c in CASES.items() if c.outcome == "invalid"]
FIXED = [name for name, c in CASES.items() if c.outcome == "fixed"]

LINE = re.compile(
    r"^(?P<severity>error|warning|fixed): (?P<file>[^:]+): "
    r"(?:column (?P<column>[^:]+): )?(?P<message>.+)$"
)
COUNT = re.compile(r" in [\d,]+ rows? \(lines? \d+(?:, \d+)*(?:, \.\.\.)?\)$")
# Problems of a whole file or of its header: no rows to count.
WHOLE_FILE = (
    "is empty",
    "has a header but no data rows",
    "is not a text file",
    "is UTF-16 text",
    "is a zip archive",
    "a second file for table",
    "no subscriptions file",
    "required column missing",
    "times in the header",
)


@pytest.fixture(scope="session")
def book(tmp_path_factory) -> Path:
    """The untouched generated book every case starts from."""
    return write_book(tmp_path_factory.mktemp("hostile") / "book")


@pytest.fixture(scope="session")
def book_data(book):
    return cslab.load(book)


def checksums(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def problem_lines(output: str, folder: Path) -> list[str]:
    """The report's lines, each checked for its form; the closing summary line is left out."""
    files = {p.name for p in folder.iterdir()} | {str(folder)}
    lines = []
    for line in output.splitlines():
        if not line.strip() or line == f"{folder}: valid" or line.startswith(f"{folder}: valid ("):
            continue
        if re.fullmatch(rf"{re.escape(str(folder))}: \d+ problems?; no file was changed or written", line):
            continue
        match = LINE.match(line)
        assert match, f"not a one-line problem: {line!r}"
        assert match["file"] in files, f"names no input file: {line!r}"
        if match["severity"] == "error":
            counted = COUNT.search(line) or re.search(r" on line \d+", line)
            assert counted or any(k in line for k in WHOLE_FILE), f"no count and example lines: {line!r}"
        lines.append(line)
    return lines


def test_corpus_covers_the_issue(book_data):
    """At least 30 invalid cases, every kind of the hardening issue, from a book ending on AS_OF."""
    assert len(INVALID) >= 30 and len(FIXED) >= 5
    kinds = {
        "missing required column": "missing_",
        "wrong types": "text_in_",
        "unparseable dates": "unparseable_",
        "end before start": "end_before_start",
        "dates in 1900": "1900",
        "dates after as_of": "after_as_of",
        "negative MRR": "negative_mrr",
        "duplicate ids": "duplicate_account_ids",
        "orphan ids": "orphan_",
        "empty file": "empty_",
        "header-only file": "header_only_",
        "binary .csv": "xlsx_named_csv",
        "UTF-16": "utf16_",
        "Latin-1": "latin1_",
        "mixed date formats": "mixed_date_formats",
        "case": "in_case",
        "huge numbers": "huge_",
        "a million blank lines": "million_blank_lines",
        "padded ids": "padded_ids",
        "BOM": "byte_order_mark",
        "';' and decimal commas": "semicolons_and_decimal_commas",
    }
    for kind, marker in kinds.items():
        assert any(marker in name for name in CASES), f"no case for {kind}"
    for table in ("subscriptions", "accounts", "usage", "cs_activities", "tickets", "outcomes", "cs_costs"):
        assert f"missing_{table}_" in " ".join(CASES), table
    assert book_data.default_as_of() == pd.Timestamp(AS_OF)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory, book) -> dict[str, dict]:
    """Every case built, and the command line run on it: ``validate`` always, ``audit`` on the
    invalid ones. The commands go through ``cslab.cli.main`` in two worker processes (one per
    core), so that the kit is imported twice rather than twice per case."""
    root = tmp_path_factory.mktemp("corpus")
    cases, jobs = {}, []
    for name, case in CASES.items():
        folder = build(name, root / name / "data", base=book)
        reports = root / name / "reports"
        reports.mkdir()
        out = reports / "audit"
        cases[name] = {"folder": folder, "reports": reports, "out": out, "before": checksums(folder)}
        jobs.append(("validate", name, ["validate", str(folder)]))
        if case.outcome == "invalid":
            jobs.append(("audit", name, ["audit", str(folder), "--out", str(out)]))
    workers = []
    for k in range(WORKERS):
        part = jobs[k::WORKERS]
        (root / f"jobs{k}.json").write_text(json.dumps([argv for _, _, argv in part]))
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.hostile", str(root / f"jobs{k}.json"), str(root / f"results{k}.json")],
            cwd=ROOT,
            env=ENV,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        workers.append((proc, part, root / f"results{k}.json"))
    for proc, part, results in workers:
        stdout, stderr = proc.communicate(timeout=900)
        assert proc.returncode == 0 and "Traceback" not in stdout + stderr, stdout + stderr
        for (command, name, _), result in zip(part, json.loads(results.read_text())):
            cases[name][command] = result
    return cases


def check_refused(
    name: str, runs: dict[str, dict], folder: Path, reports: Path, out: Path, before: dict[str, str]
) -> None:
    """Exit 2 from validate and audit, one line per problem, no traceback, nothing written."""
    found = {}
    for command in ("validate", "audit"):
        run = runs[command]
        output = run["stdout"] + run["stderr"]
        assert "Traceback" not in output, f"{command}: {output}"
        assert run["code"] == 2, f"{command} exited {run['code']}: {output}"
        lines = problem_lines(output, folder)
        assert any(line.startswith("error: ") for line in lines), f"{command}: no error: {output}"
        for expected in CASES[name].expect:
            assert expected in output, f"{command}: {expected!r} not in {output}"
        found[command] = sorted(lines)
    assert found["audit"] == found["validate"]
    # audit stops at validation: no notebook started, nothing written, no partial folder beside
    assert "running" not in runs["audit"]["stderr"]
    assert not out.exists()
    assert list(reports.iterdir()) == []
    assert checksums(folder) == before


@pytest.mark.parametrize("name", INVALID)
def test_invalid_input_exits_2_writes_nothing(name, corpus):
    case = corpus[name]
    check_refused(name, case, case["folder"], case["reports"], case["out"], case["before"])


# One case per kind of reader (the folder itself, pandas with the blank-line mapping, DuckDB) also
# runs as the user runs it: a new Python process per command (about 5 s each, most of it imports).
SUBPROCESS_SAMPLE = ["missing_subscriptions_file", "blank_lines_then_negative_mrr", "orphan_usage"]


@pytest.mark.parametrize("name", SUBPROCESS_SAMPLE)
def test_invalid_input_in_a_real_process(name, book, tmp_path):
    folder = build(name, tmp_path / "data", base=book)
    before = checksums(folder)
    reports = tmp_path / "reports"
    reports.mkdir()
    out = reports / "audit"
    # The two commands run side by side: two cores, and each spends most of its time importing.
    commands = {"validate": CLI + ["validate", str(folder)], "audit": CLI + ["audit", str(folder), "--out", str(out)]}
    procs = {
        k: subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path)
        for k, c in commands.items()
    }
    runs = {}
    for command, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        runs[command] = {"code": proc.returncode, "stdout": stdout, "stderr": stderr}
    check_refused(name, runs, folder, reports, out, before)


@pytest.mark.parametrize("name", FIXED)
def test_odd_but_usable_input_is_fixed_and_said(name, corpus, book_data):
    case = corpus[name]
    folder, run = case["folder"], case["validate"]
    output = run["stdout"] + run["stderr"]
    assert "Traceback" not in output
    assert run["code"] == 0, output
    problem_lines(output, folder)
    for expected in CASES[name].expect:
        assert expected in output, f"{expected!r} not in {output}"
    assert f"{folder}: valid (" in run["stdout"]
    assert checksums(folder) == case["before"]
    # fixed means read as if it had been clean
    data = cslab.load(folder)
    for table in ("subscriptions", "cs_activities", "tickets", "outcomes", "cs_costs"):
        pd.testing.assert_frame_equal(getattr(data, table), getattr(book_data, table), obj=table)
    if name != "account_ids_differing_in_case":
        pd.testing.assert_frame_equal(data.accounts, book_data.accounts)
    pd.testing.assert_frame_equal(data.usage.monthly(), book_data.usage.monthly())


def test_million_blank_lines_are_quick(book, tmp_path, record_property):
    """A million blank lines cost about a second (measured, with a generous bound)."""
    folder = build("million_blank_lines", tmp_path / "data", base=book)
    start = time.perf_counter()
    report = cslab.validate(folder)
    seconds = time.perf_counter() - start
    record_property("million_blank_lines_seconds", round(seconds, 2))
    print(f"\nvalidate with {BLANK_LINES:,} blank lines: {seconds:.2f} s")
    assert report.ok
    assert seconds < 15


def test_optional_columns_may_be_absent(book, tmp_path):
    """An outcomes table without its optional achieved_date column still builds a panel."""
    folder = tmp_path / "data"
    shutil.copytree(book, folder)
    outcomes = pd.read_csv(folder / "outcomes.csv", dtype=str, keep_default_na=False)
    outcomes.drop(columns=["achieved_date"]).to_csv(folder / "outcomes.csv", index=False)
    monthly = cslab.panel(cslab.load(folder))
    assert monthly["outcomes_achieved"].eq(0).all()
