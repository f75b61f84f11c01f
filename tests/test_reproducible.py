"""Reproducibility: the same inputs, parameters and seed give the same audit, byte for byte where it can.

Two audits of one book, into folders with different paths and with kernels started under different
hash seeds (set and dict ordering of strings), must record identical results and write the same
reports (timings aside) and byte-identical CSV tables; the report states the kit version, every
parameter and the SHA-256 of each input file.
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest

import cslab
from cslab.audit import NOTEBOOKS, run_audit
from cslab.data.synth import generate
from cslab.notebook import declared_parameters

PARAMS = {"n_bootstrap": 2, "shap_sample": 200, "min_cohort_size": 10}


@pytest.fixture(scope="module")
def two_audits(tmp_path_factory):
    base = tmp_path_factory.mktemp("repro")
    book = generate(n_accounts=600, n_months=28, seed=7).write(base / "book")
    outs = [base / "first", base / "elsewhere" / "second"]
    results = []
    for out, hash_seed in zip(outs, ("0", "4242")):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PYTHONHASHSEED", hash_seed)  # inherited by the notebooks' kernels
            results.append(run_audit(book, out, client="Repro Co", params=PARAMS, progress=False, echo=lambda _: None))
    return book, outs, results


def _without_timings(results: dict) -> dict:
    for run in results["notebooks"].values():
        run.pop("seconds")
    return results


def test_same_recorded_results(two_audits):
    _, outs, results = two_audits
    for result in results:
        assert result.exit_code == 0, {n: r.error for n, r in result.runs.items()}
        assert all(r.status == "ok" for r in result.runs.values())
    first, second = (_without_timings(json.loads((out / "results.json").read_text())) for out in outs)
    assert first == second
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)  # NaN-safe, exact floats


def test_byte_identical_tables_and_reports(two_audits):
    _, (first, second), _ = two_audits
    tables = sorted(p.name for p in (first / "tables").glob("*.csv"))
    assert len(tables) >= 15 and tables == sorted(p.name for p in (second / "tables").glob("*.csv"))
    differ = [t for t in tables if (first / "tables" / t).read_bytes() != (second / "tables" / t).read_bytes()]
    assert not differ, f"tables differ between identical runs: {differ}"

    # reports (figures included) and the index differ at most in timings and the index's date
    def timeless(path):
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"generated \d{4}-\d\d-\d\d \d\d:\d\d", "generated <time>", text)
        return re.sub(r"\b\d+(\.\d+)? s\b", "<seconds> s", text)

    pages = ["index.html"] + [f"{name}.html" for name in NOTEBOOKS]
    differ = [page for page in pages if timeless(first / page) != timeless(second / page)]
    assert not differ, f"reports differ between identical runs: {differ}"


def test_report_states_version_parameters_and_input_checksums(two_audits):
    book, (out, _), _ = two_audits
    index = (out / "index.html").read_text()
    results = json.loads((out / "results.json").read_text())
    assert f"cslab {cslab.__version__}" in index and results["cslab_version"] == cslab.__version__
    assert {"python", "numpy", "pandas", "scikit-learn"} <= set(results["environment"])
    files = sorted(p for p in book.iterdir() if p.is_file())
    assert set(results["inputs"]) == {p.name for p in files}
    for path in files:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert results["inputs"][path.name] == digest and digest in index
    assert results["parameters"] == PARAMS
    section = index.split("<h3>Parameters</h3>", 1)[1]
    rows = re.findall(
        r"<tr><td><code>(\w+)</code></td><td><code>(.*?)</code></td>\s*<td>(.*?)</td><td>(\w+)</td>", section
    )
    shown = {(name, value, origin) for name, value, _, origin in rows}
    assert {("n_bootstrap", "2", "given"), ("shap_sample", "200", "given"), ("min_cohort_size", "10", "given")} <= shown
    for name in NOTEBOOKS:
        declared = declared_parameters(name)
        recorded = results["notebooks"][name]["parameters"]
        assert not {"data_dir", "tables_dir", "customers_file"} & set(recorded)  # run paths left out
        for key, spec in declared.items():
            if key in recorded and key not in PARAMS and key not in {"as_of", "client_name"}:
                assert recorded[key] == spec["default"], (name, key)
                value = spec["default"] if isinstance(spec["default"], str) else json.dumps(spec["default"])
                assert any(r[0] == key and r[1] == value.replace('"', "&#34;") for r in rows), (key, value)
        assert recorded["client_name"] == "Repro Co" and recorded["as_of"] == results["as_of"]
        for key, value in PARAMS.items():
            if key in declared:
                assert recorded[key] == value
