"""environment.yml (conda) and pyproject.toml list the same packages with the same ranges."""

from __future__ import annotations

import re
import tomllib

import yaml

from tests.conftest import ROOT

# conda-forge names that differ from PyPI names
CONDA_TO_PYPI = {"python-duckdb": "duckdb"}


def split(requirement: str) -> tuple[str, str]:
    name, spec = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement).groups()
    return name.lower(), spec.replace(" ", "")


def test_environment_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pypi = dict(split(r) for r in project["dependencies"] + project["optional-dependencies"]["test"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["name"] == "cslab" and env["channels"] == ["conda-forge"]
    conda = {}
    for entry in env["dependencies"]:
        if isinstance(entry, str):
            name, spec = split(entry)
            if name not in {"python", "pip"}:
                conda[CONDA_TO_PYPI.get(name, name)] = spec
    assert conda == pypi
    python = next(e for e in env["dependencies"] if isinstance(e, str) and e.startswith("python>"))
    assert python.split(">=")[1] == project["requires-python"].split(">=")[1]


def test_console_script_and_reports_ignored():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["cslab"] == "cslab.cli:main"
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "reports/*" in ignored and "!reports/.gitkeep" in ignored


def test_audit_templates_are_package_data():
    """The index and report templates ship in the wheel: the audit cannot render a page without them."""
    from cslab.audit.exporting import TEMPLATES

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert declared["cslab.audit"] == ["templates/*.j2"]
    shipped = sorted(p.name for p in TEMPLATES.glob("*.j2"))
    assert shipped == ["audit_index.html.j2", "cslab_report.html.j2"]
    assert TEMPLATES == ROOT / "cslab" / "audit" / "templates"
