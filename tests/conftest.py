"""Shared fixtures: small data folders written to tmp paths, and the public data in ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# notebooks run by the tests (papermill kernels inherit the environment) draw no progress bars
os.environ.setdefault("CSLAB_BATCH", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
PYSURVIVAL = SHARED_DATA / "saas_churn_pysurvival.csv"


def write_folder(folder: Path, tables: dict[str, str]) -> Path:
    """Write CSV text per table name into a folder and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in tables.items():
        target = folder / (name if "." in name else f"{name}.csv")
        target.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return folder


@pytest.fixture(scope="session")
def demo_book(tmp_path_factory):
    """The demo book (3,000 accounts, 36 months, seed 42), generated once per test session.

    Returns the generator's book (``truth``) and the folder it was written to.
    """
    from cslab.config import DEMO_ACCOUNTS, DEMO_MONTHS, DEMO_SEED
    from cslab.data.synth import generate

    book = generate(n_accounts=DEMO_ACCOUNTS, n_months=DEMO_MONTHS, seed=DEMO_SEED)
    return book, book.write(tmp_path_factory.mktemp("demo"))


@pytest.fixture
def pysurvival_path() -> Path:
    assert PYSURVIVAL.exists(), f"public test data missing: {PYSURVIVAL}"
    return PYSURVIVAL


#: The audit every notebook test reads: a generated book of 700 accounts over 30 months (seed 21),
#: run once per session with small sample parameters.
AUDIT_BOOK = {"n_accounts": 700, "n_months": 30, "seed": 21}
AUDIT_PARAMS = {"min_cohort_size": 10, "shap_sample": 300, "n_bootstrap": 4}


@pytest.fixture(scope="session")
def audited_book(tmp_path_factory):
    """(book folder, audit result, audit folder) of :data:`AUDIT_BOOK`, audited once per session."""
    from cslab.audit import run_audit
    from cslab.data.synth import generate

    folder = tmp_path_factory.mktemp("book")
    generate(**AUDIT_BOOK).write(folder)
    out = tmp_path_factory.mktemp("audit") / "out"
    result = run_audit(folder, out, client="Test Co", params=AUDIT_PARAMS, progress=False, echo=lambda _: None)
    return folder, result, out


def small_session(tmp_path_factory, name: str, params: dict):
    """A :class:`cslab.session.Session` of notebook ``name`` on :data:`AUDIT_BOOK`, built without a
    kernel (for unit tests of the report modules)."""
    import cslab
    from cslab import leakage
    from cslab.data.synth import generate
    from cslab.session import Session

    folder = tmp_path_factory.mktemp("book")
    generate(**AUDIT_BOOK).write(folder)
    data = cslab.load(folder)
    monthly = cslab.panel(data)
    screen = leakage.screen_attributes(monthly)
    return Session(
        name=name, params={**params, "data_dir": str(folder)}, data=data, monthly=screen.apply(monthly), screen=screen
    )
