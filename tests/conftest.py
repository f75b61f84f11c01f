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
