"""The registry of recorded results (:mod:`cslab.results`): every key declared once, read by everyone."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cslab import results
from cslab.notebook import key_figures_table, record
from cslab.results import ResultKey, UndeclaredResultError, Verdict

ROOT = Path(__file__).parent.parent
STORED = Path(__file__).parent / "data" / "small_book_results.json"


def test_every_key_a_real_audit_records_is_declared_for_its_notebook():
    stored = json.loads(STORED.read_text())
    for notebook, run in stored.items():
        for name in run["results"]:
            assert results.lookup(name, notebook).notebook == notebook


def test_every_key_recorded_by_a_notebook_source_is_declared():
    """The literal keys of each notebook's ``record(...)`` call (programme keys are f-strings)."""
    for path in sorted((ROOT / "notebooks").glob("0[1-4]_*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        for call in re.findall(r"record\((.*?)\n\)", source, flags=re.S):
            for name in re.findall(r"(?<![\w.\"])([a-z][a-z0-9_]*)=(?!=)", call):
                assert results.lookup(name, path.stem), name
        for name in re.findall(r"\(\"(\w+_12m)\", \"\w+\"\)", source):
            assert results.lookup(name, path.stem)


def test_each_key_is_declared_once_per_notebook_with_a_known_kind():
    seen = [(k.name, k.notebook) for k in results.RESULT_KEYS]
    assert len(seen) == len(set(seen))
    assert all(k.kind in results.KINDS and k.label and k.meaning for k in results.RESULT_KEYS)


def test_placeholders_match_the_most_specific_declaration():
    assert results.lookup("effect_hr_health_check").name == "effect_hr_{programme}"
    assert results.lookup("effect_hr_health_check_low").name == "effect_hr_{programme}_low"
    assert results.lookup("value_retained").name == "value_retained"  # exact names before placeholders
    assert results.lookup("exposure_months").kind == "months" and results.lookup("exposure_qbr").kind == "text"
    assert results.label_for("value_health_check") == "Gross margin from health check"
    assert results.lookup("horizon_months", "04_expansion_opportunity").label == "Label horizon"


def test_record_refuses_an_undeclared_key():
    with pytest.raises(UndeclaredResultError, match="'nrr_12months' is not declared.*cslab.results"):
        record(nrr_12m=1.0, nrr_12months=1.0)


def test_declare_lets_a_notebook_of_ones_own_record():
    key = ResultKey("n_widgets", "99_widgets", "count", "Widgets", "widgets sold")
    try:
        results.declare(key)
        assert results.lookup("n_widgets") is key
    finally:
        results.RESULT_KEYS.remove(key)
    with pytest.raises(UndeclaredResultError):
        results.lookup("n_widgets")
    with pytest.raises(ValueError, match="unknown kind"):
        ResultKey("x", "99", "percentage", "X", "x")


@pytest.mark.parametrize(
    "value, kind, shown",
    [
        (0.05189413596263622, "share", "5.2%"),
        (1422375.0, "money", "EUR 1,422,375"),
        (6467, "count", "6,467"),
        (0.8612960826762321, "ratio", "0.861"),
        (None, "months", "not reached"),
        (31.5, "months", "31.5 months"),
        (12, "months", "12 months"),
        (None, "share", "n/a"),
        (
            ["usage_features_used", "csat_90d", "months_to_renewal"],
            "features",
            "features used, CSAT (90 days), months to renewal",
        ),
        (["escalation", "qbr"], "list", "escalation, qbr"),
        ([], "records", "none"),
        ([{"column": "churn_reason", "reason": "written at churn"}], "records", "churn_reason"),
        ({"logins": "logins"}, "mapping", "logins: logins"),
        (False, "flag", "no"),
        ("2024-07 to 2025-06", "text", "2024-07 to 2025-06"),
    ],
)
def test_values_are_formatted_by_kind(value, kind, shown):
    assert results.format_value(value, kind, "EUR") == shown


def test_key_figures_table_shows_labels_and_formatted_values_not_raw_json():
    stored = json.loads(STORED.read_text())
    got = stored["03_cs_roi"]["results"]
    table = key_figures_table(got, currency="USD")
    assert list(table.columns) == ["figure", "value", "key"] and len(table) == len(got)
    shown = dict(zip(table["key"], table["value"], strict=True))
    assert shown["cs_cost_share_of_revenue"] == "5.3%"
    assert shown["cs_cost"] == "USD 643,767"
    assert shown["programmes"] == "escalation, health_check, onboarding, qbr, training"
    assert shown["n_bootstrap"] == "4" and shown["roi"] == "-0.535"
    labels = dict(zip(table["key"], table["figure"], strict=True))
    assert labels["effect_hr_qbr_low"] == "qbr: total effect, 95% low"
    # notebook 03's meaning, found from the keys recorded together
    assert labels["horizon_months"] == "Cost window"
    for value in table["value"]:
        assert not re.search(r"\d\.\d{5,}", value) and not value.startswith(("[", "{"))
    drivers = key_figures_table(stored["04_expansion_opportunity"]["results"])
    assert dict(zip(drivers["key"], drivers["figure"], strict=True))["horizon_months"] == "Label horizon"


@pytest.mark.parametrize(
    "name, figures, says",
    [
        ("roi", {"roi": 0.5, "roi_low": 0.1, "roi_high": 0.9}, "CS pays for itself"),
        ("roi", {"roi": -0.7, "roi_low": -1.1, "roi_high": -0.3}, "the programmes evaluated do not recover CS's cost"),
        (
            "roi",
            {"roi": 0.1, "roi_low": -0.2, "roi_high": 0.4},
            "whether CS pays for itself cannot be told from these data",
        ),
        ("nrr_12m", {"nrr_12m": 1.04}, "the customers of a year ago pay more now than they did then"),
        ("nrr_12m", {"nrr_12m": 0.9}, "the customers of a year ago pay 10.0% less now, expansion included"),
        ("grr_12m", {"grr_12m": 0.85}, "below the 90% that B2B companies commonly aim for"),
        ("cs_cost_share_of_revenue", {"cs_cost_share_of_revenue": 0.25}, "within the 10-25% typical of SaaS companies"),
        ("effect_hr_qbr", {"effect_hr_qbr": 0.6, "effect_hr_qbr_low": 0.4, "effect_hr_qbr_high": 0.9}, "lowers churn"),
        (
            "effect_hr_qbr",
            {"effect_hr_qbr": 0.6, "effect_hr_qbr_low": 0.1, "effect_hr_qbr_high": 4.0},
            "has no clear effect",
        ),
        ("roi", {"roi": None}, None),
        ("auc", {"auc": 0.8}, None),  # no rules: no verdict
    ],
)
def test_verdicts_follow_the_declared_rules(name, figures, says):
    assert results.verdict(name, figures) == says


def test_verdict_rules_read_as_conditions():
    assert Verdict("x", of="low", above=0).rule() == "interval low > 0"
    assert Verdict("x").rule() == "otherwise"


def test_readme_key_table_is_generated_from_the_registry():
    readme = (ROOT / "README.md").read_text()
    table = results.markdown_table()
    assert table in readme, (
        "README's table of recorded keys is out of date: replace it with cslab.results.markdown_table()"
    )
    assert readme.count("| notebook | key | kind | meaning |") == 1
