"""Project paths, all derived from the package location (cookiecutter-data-science style).

Nothing here reads or writes files; importing it is free.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "PROJ_ROOT",
    "DATA_DIR",
    "DEMO_DIR",
    "NOTEBOOKS_DIR",
    "REPORTS_DIR",
    "DEMO_SEED",
    "DEMO_ACCOUNTS",
    "DEMO_MONTHS",
]

PROJ_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = PROJ_ROOT / "data"
DEMO_DIR = DATA_DIR / "demo"
NOTEBOOKS_DIR = PROJ_ROOT / "notebooks"
REPORTS_DIR = PROJ_ROOT / "reports"

# The demo book: generated, deterministic, never committed.
DEMO_SEED = 42
DEMO_ACCOUNTS = 3000
DEMO_MONTHS = 36
