"""Degenerate books: every notebook completes with a plain sentence or is skipped with its reason.

Each case is a generated book bent into an edge (tests/degenerate.py): no churn, no expansion, one
signup cohort, one segment, ten accounts, all accounts active, one account with all the revenue, a
year without activity data. The audit must exit 0 (nothing failed), never show a stack trace or a raw
Python warning in a client report, and say why whatever it skips was skipped.
"""

from __future__ import annotations

import json
import re

import pytest

from cslab.audit import run_audit
from tests.degenerate import CASES, write_case
from tests.foreign import write_recent_signups_book, write_short_book, write_whale_book

PARAMS = {"n_bootstrap": 2, "shap_sample": 200, "min_cohort_size": 5}


@pytest.fixture(scope="module", params=sorted(CASES))
def audited(request, tmp_path_factory):
    base = tmp_path_factory.mktemp(request.param)
    folder = write_case(request.param, base / "data", n_accounts=700, n_months=30)
    out = base / "out"
    result = run_audit(folder, out, client="Edge Co", params=PARAMS, progress=False, echo=lambda _: None)
    return request.param, result, out


def test_every_notebook_completes_or_says_why_not(audited):
    name, result, out = audited
    statuses = {n: (r.status, r.error) for n, r in result.runs.items()}
    assert result.exit_code == 0, statuses
    for notebook, (status, reason) in statuses.items():
        assert status in {"ok", "skipped"}, (notebook, status, reason)
        if status == "skipped":
            # a reason in words with its number or the table it needs: "3 churned accounts: too few ..."
            assert re.search(r"\d|needs", reason), (notebook, reason)
            assert reason in (out / "index.html").read_text().replace("&#39;", "'")
    recorded = json.loads((out / "results.json").read_text())["notebooks"]
    assert {n: r["status"] for n, r in recorded.items()} == {n: s for n, (s, _) in statuses.items()}


def test_no_stack_trace_or_raw_warning_in_any_report(audited):
    _, _, out = audited
    for page in out.glob("*.html"):
        text = page.read_text()
        assert "Traceback" not in text, page.name
        assert "This step failed" not in text, page.name
        assert not re.search(r"\w+Warning:", text), (page.name, re.findall(r".{80}\w+Warning:.{80}", text)[:2])


def test_what_each_edge_case_must_say(audited):
    name, result, out = audited
    runs = result.runs
    cohort = (out / "01_cohort_retention.html").read_text()
    if name in {"no_churn", "all_active"}:
        assert runs["01_cohort_retention"].status == "ok"
        assert "No projection:" in cohort and "0 customers churned" in cohort
        assert runs["02_churn_drivers"].error.startswith("0 churned accounts in the training period")
        assert runs["03_cs_roi"].error.startswith("0 churned accounts")
    if name == "ten_accounts":
        churn = runs["02_churn_drivers"]
        assert churn.status == "skipped" and "at least 30 are needed" in churn.error
        assert "Caution:" in cohort or "Small sample:" in cohort  # StatisticalWarnings, in words
    if name == "no_expansion":
        assert runs["04_expansion_opportunity"].error.startswith("0 accounts expanded")
        recorded = json.loads((out / "results.json").read_text())["notebooks"]["01_cohort_retention"]["results"]
        assert recorded["tailwind_12m"] == 0
    if name in {"single_segment", "one_account_all_revenue", "a_year_without_activity_data"}:
        assert runs["02_churn_drivers"].status == "ok"  # enough churn: the edge must not stop the model


# -- books written by other hands (tests/foreign.py): short and uneven histories ------------------

FOREIGN_CASES = {
    "1_month": lambda folder: write_short_book(folder, 1, n_accounts=300),
    "3_months": lambda folder: write_short_book(folder, 3, n_accounts=400),
    "6_months": lambda folder: write_short_book(folder, 6, n_accounts=400),
    "9_months": lambda folder: write_short_book(folder, 9, n_accounts=500),
    "recent_signups": lambda folder: write_recent_signups_book(folder),
    "whale": lambda folder: write_whale_book(folder),
}


@pytest.fixture(scope="module", params=sorted(FOREIGN_CASES))
def foreign_edge(request, tmp_path_factory):
    base = tmp_path_factory.mktemp(f"foreign_{request.param}")
    truth = FOREIGN_CASES[request.param](base / "data")
    out = base / "out"
    result = run_audit(base / "data", out, client="Edge GmbH", params=PARAMS, progress=False, echo=lambda _: None)
    return request.param, truth, result, out, json.loads((out / "results.json").read_text())


def test_short_and_uneven_books_complete_or_say_why(foreign_edge):
    name, truth, result, out, results = foreign_edge
    statuses = {n: (r.status, r.error) for n, r in result.runs.items()}
    assert result.exit_code == 0, statuses
    assert statuses["01_cohort_retention"][0] == "ok", statuses  # logo churn, bridge, cohorts, KM
    for notebook, (status, reason) in statuses.items():
        if status == "skipped":
            assert re.search(r"\d|needs", reason), (notebook, reason)
    for page in out.glob("*.html"):
        assert "Traceback" not in page.read_text(), page.name
    codes = {w["code"] for w in results["data_warnings"]}
    cohort = results["notebooks"]["01_cohort_retention"]["results"]
    months = {"1_month": 1, "3_months": 3, "6_months": 6, "9_months": 9}.get(name)
    if months is not None:
        assert "short_history" in codes
        assert cohort["nrr_12m"] is None and cohort["grr_12m"] is None  # null, not failed
        # one month has no month before it to churn from: no rate rather than a made-up one
        assert (cohort["logo_churn_monthly"] is None) == (months == 1)
        assert "NRR and GRR need" in (out / "01_cohort_retention.html").read_text()
    if name == "9_months":
        churn = results["notebooks"]["02_churn_drivers"]
        assert churn["status"] == "ok", churn["error"]
        assert 1 <= churn["results"]["test_months"] < 6  # the test window shortened to what fits
    if name == "whale":
        assert results["notebooks"]["01_cohort_retention"]["results"]["mrr_end"] >= 2_000_000
