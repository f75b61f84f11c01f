"""Pseudonymous audits (cslab.privacy, ``cslab audit --anonymize``): no original name or id in any output."""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import stat
import subprocess
import sys

import pandas as pd
import pytest

import cslab
from cslab.audit import AuditError, run_audit
from cslab.data.synth import generate
from cslab.privacy import (
    KEY_ENV,
    AnonymizationError,
    Pseudonymizer,
    anonymize_customers,
    anonymize_folder,
    key_file_for,
    resolve_key,
)
from tests.conftest import write_folder

KEY = "k" * 16 + "0123456789abcdef"
PARAMS = {"n_bootstrap": 2, "shap_sample": 200, "min_cohort_size": 10}
# Awkward originals on purpose: characters that HTML, JSON and CSV each escape differently.
SPECIAL_NAMES = ['Tom & Jerry\'s "Cartoons"', "Société Générale Ω", "<b>Bold</b> Inc", "Acme, Inc."]


def _fingerprint(folder):
    """Every file and folder under ``folder``, files with their SHA-256."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(folder.rglob("*"))
    }


def _client_book(folder, seed=11):
    """A small book whose ids, names and CSM ids look like a client's and occur nowhere else."""
    book = generate(n_accounts=600, n_months=28, seed=seed)
    accounts = book.tables["accounts"]
    ids = {old: f"acme-{i:05d}-id" for i, old in enumerate(accounts["account_id"])}
    for frame in [*book.tables.values(), book.truth_panel]:
        if "account_id" in frame:
            frame["account_id"] = frame["account_id"].map(ids)
    csms = {c: f"{c.lower()}.smith@acme-client.example" for c in accounts["csm_id"].unique() if c}
    for name in ("accounts", "cs_activities"):
        book.tables[name]["csm_id"] = book.tables[name]["csm_id"].map(lambda c: csms.get(c, ""))
    accounts["name"] = [
        SPECIAL_NAMES[i] if i < len(SPECIAL_NAMES) else f"{n} Holdings {i}" for i, n in enumerate(accounts["name"])
    ]
    return book.write(folder), list(ids.values()), list(accounts["name"]), list(csms.values())


def _forms(text: str) -> set[bytes]:
    """A value as it may be written: raw, HTML-escaped, JSON-escaped (both with and without \\u)."""
    forms = {
        text,
        html.escape(text),
        html.escape(text, quote=False),
        json.dumps(text)[1:-1],
        json.dumps(text, ensure_ascii=False)[1:-1],
        html.escape(text).replace("&#x27;", "&#39;"),
        text.replace('"', '""'),
    }
    return {f.encode("utf-8") for f in forms}


# --------------------------------------------------------------------------------------------
# Keys and pseudonyms
# --------------------------------------------------------------------------------------------
def test_key_comes_from_option_env_or_a_file_beside_the_data(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    data = write_folder(tmp_path / "acme export", {"subscriptions": "account_id,start_date,end_date,mrr\n"})
    before = _fingerprint(data)
    assert resolve_key(data, key=KEY) == (KEY.encode(), "the --anonymize-key option")
    monkeypatch.setenv(KEY_ENV, "e" * 20)
    assert resolve_key(data)[0] == b"e" * 20
    monkeypatch.delenv(KEY_ENV)

    key, origin = resolve_key(data)
    path = tmp_path / "acme export.cslab-key"
    assert path == key_file_for(data) and path.exists() and "new" in origin
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) == 64 and resolve_key(data) == (key, f"key file {path}")  # created once, then reused
    assert _fingerprint(data) == before  # nothing written into the data folder

    with pytest.raises(AnonymizationError, match="at least 16"):
        resolve_key(data, key="short")
    with pytest.raises(AnonymizationError, match="inside the data folder"):
        resolve_key(data, key_file=data / "my.key")


def test_pseudonyms_are_stable_keyed_one_to_one_and_kind_separated():
    ids = pd.Series([f"A{i:05d}" for i in range(5000)] + ["A00001", None, "  A00002 "])
    first, again = Pseudonymizer(KEY).account_ids(ids), Pseudonymizer(KEY).account_ids(ids)
    assert first.equals(again)
    assert first.iloc[:5000].str.fullmatch(r"ACC-[0-9a-f]{12}").all()
    assert first.iloc[:5000].nunique() == 5000
    assert first.iloc[5000] == first.iloc[1] and first.iloc[5001] is None and first.iloc[5002] == first.iloc[2]
    other = Pseudonymizer("another key of 16+ chars").account_ids(ids)
    assert not (other.iloc[:5000] == first.iloc[:5000]).any()
    csm = Pseudonymizer(KEY).csm_ids(pd.Series(["A00001"]))
    assert csm.iloc[0].startswith("CSM-") and csm.iloc[0][4:] not in first.iloc[1]
    names = Pseudonymizer.names(pd.Series(["Acme", "", None]), first.iloc[:3])
    assert names.iloc[0] == "Account " + first.iloc[0][4:] and names.iloc[1] is None and names.iloc[2] is None


def test_anonymized_copy_keeps_foreign_keys_and_figures(tmp_path):
    data, ids, names, csms = _client_book(tmp_path / "book", seed=3)
    before = _fingerprint(data)
    copy = anonymize_folder(data, tmp_path / "copy", KEY)
    assert _fingerprint(data) == before
    assert copy.n_accounts == 600 and copy.n_names == 600 and copy.n_csms == len(csms)
    original, anon = cslab.load(data), cslab.load(copy.path)
    assert anon.notes == []
    known = set(anon.accounts["account_id"])
    for table in ("subscriptions", "cs_activities", "tickets", "outcomes"):
        assert set(getattr(anon, table)["account_id"]) <= known, table
    usage_ids = set(anon.usage.query("SELECT DISTINCT account_id FROM usage")["account_id"])
    assert usage_ids <= known and anon.usage.n_rows == original.usage.n_rows
    mapping = dict(zip(original.accounts["account_id"], anon.accounts["account_id"]))
    assert mapping[ids[0]] == Pseudonymizer(KEY).account_ids(pd.Series([ids[0]])).iloc[0]
    # the same book, only renamed: the monthly panel agrees account by account
    p_orig, p_anon = cslab.panel(original), cslab.panel(anon)
    p_orig = p_orig.assign(account_id=p_orig["account_id"].map(mapping))
    key = ["account_id", "month"]
    merged = p_orig.merge(p_anon, on=key, suffixes=("", "_anon"))
    assert len(merged) == len(p_orig) == len(p_anon)
    assert (merged["mrr"] == merged["mrr_anon"]).all()
    written = b"".join(p.read_bytes() for p in copy.path.iterdir() if p.suffix == ".csv")
    assert not any(i.encode() in written for i in ids + csms)


def test_snapshot_table_is_anonymized_in_its_own_format(tmp_path):
    source = write_folder(tmp_path, {"churn.csv": "cust;name;churned;spend\nX-1;Acme;yes;1,5\nX-2;Bolt;no;2\n"})
    copy = anonymize_customers(source / "churn.csv", tmp_path / "copy", KEY, id_col="cust")
    text = copy.path.read_text()
    assert "X-1" not in text and "Acme" not in text and "1,5" in text
    loaded = cslab.load_customers(copy.path, id_col="cust", event_col="churned").customers
    assert loaded["account_id"].str.fullmatch(r"ACC-[0-9a-f]{12}").all()
    assert loaded["spend"].tolist() == [1.5, 2.0] and loaded["event"].tolist() == [1, 0]


def test_cli_rejects_a_short_key_and_writes_nothing(tmp_path):
    data, *_ = _client_book(tmp_path / "book", seed=4)
    before = _fingerprint(tmp_path)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "cslab.cli",
            "audit",
            str(data),
            "--out",
            str(tmp_path / "out"),
            "--anonymize-key",
            "short",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert run.returncode == 2, run.stderr
    assert "at least 16" in run.stderr and "Traceback" not in run.stderr
    assert _fingerprint(tmp_path) == before


def test_audit_folder_inside_the_input_is_refused(tmp_path):
    data, *_ = _client_book(tmp_path / "book", seed=4)
    with pytest.raises(AuditError, match="outside the input"):
        run_audit(data, data / "report", anonymize_key=KEY, echo=lambda _: None)
    with pytest.raises(AuditError, match="inside the audit folder"):
        run_audit(data, tmp_path, force=True, echo=lambda _: None)
    assert not (data / "report").exists()


# --------------------------------------------------------------------------------------------
# A whole audit
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def anonymized_audit(tmp_path_factory):
    base = tmp_path_factory.mktemp("privacy")
    data, ids, names, csms = _client_book(base / "acme-confidential-export")
    before = _fingerprint(data)
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(KEY_ENV, raising=False)  # the key file beside the data folder is created
        result = run_audit(
            data, base / "audit", client="Test Co", params=PARAMS, anonymize=True, progress=False, echo=lines.append
        )
    return {
        "data": data,
        "out": base / "audit",
        "result": result,
        "ids": ids,
        "names": names,
        "csms": csms,
        "before": before,
        "lines": lines,
        "key": (base / "acme-confidential-export.cslab-key").read_text().strip(),
    }


def test_no_original_name_or_id_in_any_output_byte(anonymized_audit):
    run = anonymized_audit
    assert all(r.status == "ok" for r in run["result"].runs.values()), {
        n: r.error for n, r in run["result"].runs.items()
    }
    files = [p for p in sorted(run["out"].rglob("*")) if p.is_file()]
    assert {p.name for p in files} >= {
        "index.html",
        "results.json",
        "01_cohort_retention.html",
        "02_churn_drivers.html",
        "at_risk_accounts.csv",
        "expansion_opportunities.csv",
        "03_cs_roi.ipynb",
    }
    secrets_ = [run["key"], "acme-confidential-export", "acme-client.example", "acme-0"]
    needles = {f: v for v in run["ids"] + run["names"] + run["csms"] + secrets_ for f in _forms(v)}
    leaks = []
    for path in files:
        blob = path.read_bytes()
        leaks += [f"{path.relative_to(run['out'])}: {needle!r}" for needle in needles if needle in blob]
    assert not leaks, f"{len(leaks)} leaks, e.g. {leaks[:5]}"


def test_outputs_carry_the_pseudonyms_of_the_key_file(anonymized_audit):
    run = anonymized_audit
    out = run["out"]
    pseudo = Pseudonymizer(run["key"])
    expected_ids = dict(zip(run["ids"], pseudo.account_ids(pd.Series(run["ids"]))))
    at_risk = pd.read_csv(out / "tables" / "at_risk_accounts.csv", keep_default_na=False)
    assert len(at_risk) > 50 and set(at_risk["account_id"]) <= set(expected_ids.values())
    assert at_risk["name"].str.fullmatch(r"Account [0-9a-f]{12}").all()
    assert (at_risk["name"].str[8:] == at_risk["account_id"].str[4:]).all()  # name agrees with id
    expected_csms = set(pseudo.csm_ids(pd.Series(run["csms"])))
    opportunities = pd.read_csv(out / "tables" / "expansion_opportunities.csv", keep_default_na=False)
    shown_csms = set(opportunities["csm_id"]) - {""}
    assert shown_csms and shown_csms <= expected_csms
    assert re.search(r"ACC-[0-9a-f]{12}", (out / "02_churn_drivers.html").read_text())
    results = json.loads((out / "results.json").read_text())
    assert results["anonymized"] is True and "withheld" in results["source"]
    index = (out / "index.html").read_text()
    assert "Pseudonymised" in index and results["inputs"]["accounts.csv"] in index  # original checksums
    assert any("pseudonym key from key file" in line for line in run["lines"])


def test_input_folder_untouched_and_no_copy_left_behind(anonymized_audit):
    run = anonymized_audit
    assert _fingerprint(run["data"]) == run["before"]
    siblings = sorted(p.name for p in run["data"].parent.iterdir())
    assert siblings == ["acme-confidential-export", "acme-confidential-export.cslab-key", "audit"]
