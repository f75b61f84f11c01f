"""Workshop edition: the primer's hand example by hand, the answer checker, the classroom bundle built
by `cslab workshop` from a fresh clone, and the analysis notebooks on the scenario books."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings

import nbformat
import papermill as pm
import pytest

import cslab
from cslab import metrics, roi, survival, workshop
from cslab.audit import current_kernel, run_audit
from cslab.workshop import CHECK_MIMETYPE, EXERCISES, check
from cslab.workshop.answers import expected_value
from tests.conftest import ROOT

PRIMER = "00_metrics_primer"
pytestmark = pytest.mark.filterwarnings("ignore::cslab.errors.StatisticalWarning")
SMALL = ["--accounts", "500", "--months", "30", "--demo-accounts", "500"]


# -- the hand example, by pencil -------------------------------------------------------------------
@pytest.fixture(scope="module")
def hand():
    data = cslab.load(workshop.write_hand_book())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cslab.StatisticalWarning)
        yield data, cslab.panel(data, as_of=workshop.HAND_AS_OF)


def test_hand_book_mrr_and_movements_by_hand(hand):
    _, panel = hand
    moves = metrics.mrr_movements(panel).set_index(metrics.mrr_movements(panel)["month"].dt.strftime("%m"))
    # Jan: A100 B200 C150 D300 E100 F50 J400
    assert moves["end_mrr"].tolist() == [1300, 1400, 1500, 1470, 1520, 1470]
    assert moves.loc["03", ["new", "expansion", "contraction", "churn", "reactivation"]].tolist() == [
        200,
        100,
        100,
        100,
        0,
    ]
    assert moves.loc["04", ["new", "churn", "net_new_mrr"]].tolist() == [120, 150, -30]
    assert moves.loc["05", ["expansion", "churn", "reactivation"]].tolist() == [150, 200, 100]  # G+50, J+100; H; E
    assert moves.loc["06", "churn"] == 50  # F, last paid day 31 May
    assert moves.loc["02":, "expansion"].sum() == 250


def test_hand_book_churn_and_retention_by_hand(hand):
    data, panel = hand
    logo = metrics.logo_churn_rate(panel, months=5)
    # churns E (Mar), C (Apr), H (May), F (Jun); at risk 7 + 8 + 8 + 8 + 8 customer-months
    assert (logo["churned"], logo["exposure"]) == (4, 39) and logo["monthly"] == pytest.approx(4 / 39)
    assert logo["annual"] == pytest.approx(1 - (35 / 39) ** 12)
    revenue = metrics.revenue_churn(panel, months=5)
    # lost: churn 100 + 150 + 200 + 50, contraction 100; base 1300 + 1400 + 1500 + 1470 + 1520
    assert revenue["gross_monthly"] == pytest.approx(600 / 7190)
    assert revenue["net_monthly"] == pytest.approx((600 - 350) / 7190)
    kept = metrics.revenue_retention(panel, months=5)
    # January customers now: A100 B300 C0 D200 E100 F0 J500 = 1200; capped: 100+200+0+200+100+0+400
    assert kept["nrr"] == pytest.approx(1200 / 1300) and kept["grr"] == pytest.approx(1000 / 1300)
    cohorts = metrics.cohort_table(panel, period="M", kind="logo")
    assert cohorts.loc["2025-01"].tolist() == pytest.approx([1, 1, 6 / 7, 5 / 7, 6 / 7, 5 / 7])
    fitter = survival.kaplan_meier(survival.account_lifetimes(panel))["all"]
    # t=2: 2 of 10 churn (E, H); t=3: 1 of 7 (C; I watched 2 months only); t=5: 1 of 5 (F)
    assert fitter.survival_function_at_times([2, 3, 5]).tolist() == pytest.approx(
        [0.8, 0.8 * 6 / 7, 0.8 * 6 / 7 * 4 / 5]
    )
    assert survival.median_lifetime(fitter)["median"] is None
    cost = roi.cs_cost(data, "2024-12-31", workshop.HAND_AS_OF)["total"]
    assert cost / roi.revenue(panel, "2024-12-31", workshop.HAND_AS_OF) == pytest.approx(1200 / 8660)


BY_HAND = {
    "hand-mrr-may": 1520,
    "hand-expansion": 250,
    "hand-net-new-apr": -30,
    "hand-logo-churn": 4 / 39,
    "hand-gross-mrr-churn": 600 / 7190,
    "annual-from-3pct": 1 - 0.97**12,
    "monthly-for-20pct": 1 - 0.8 ** (1 / 12),
    "hand-nrr": 12 / 13,
    "hand-grr": 10 / 13,
    "hand-cohort-jan-5": 5 / 7,
    "hand-km-3": 24 / 35,
    "hand-km-5": 96 / 175,
    "mix-survivors-risky": 0.8**12 / (0.8**12 + 0.98**12),
    "mix-retention-13": (0.8**13 + 0.98**13) / (0.8**12 + 0.98**12),
    "health-88": 0.12,
    "hand-cs-cost-share": 1200 / 8660,
    "cs-cost-team": 720_000 / 4_800_000,
}


def test_answer_key_holds_the_hand_computed_values():
    numbers = {k for k, e in EXERCISES.items() if e.kind == "number"}
    assert numbers == set(BY_HAND)
    for key, value in BY_HAND.items():
        assert expected_value(EXERCISES[key]) == pytest.approx(value, abs=1e-9), key
        assert check(key, value).correct, key


def test_check_says_right_or_wrong_without_the_answer():
    assert check("hand-nrr", 92.3).correct and "read as 92.3%" in check("hand-nrr", 92.3).message
    assert check("hand-nrr", "92.3%").correct
    for key, value in BY_HAND.items():
        for wrong in (value * 1.5 + 1, value * 0.97 - 0.01):
            result = check(key, wrong)
            assert not result.correct and ("too high" in result.message or "too low" in result.message)
            shown = {f"{value:.3f}", f"{100 * value:.1f}", f"{value:,.0f}"} - {"0", "1", "-0"}
            assert not any(text in result.message for text in shown if len(text) > 2), (key, result.message)
    unanswered = check("hand-mrr-may", None)
    assert not unanswered.correct and not unanswered.answered and "no answer yet" in unanswered.message
    assert check("nrr-without-expansion", " No ").correct and not check("nrr-without-expansion", "yes").correct
    assert "answer with one of" in check("health-is-not", "d").message
    assert "should be a number" in check("hand-km-3", "about half").message
    with pytest.raises(KeyError):
        check("no-such-exercise", 1)


def test_primer_conventions():
    nb = nbformat.read(ROOT / "notebooks" / f"{PRIMER}.ipynb", as_version=4)
    assert nb.cells[0].source.startswith("# ") and "parameters" in nb.cells[1].metadata.get("tags", [])
    assert "check_parameters" in nb.cells[2].source.splitlines()[2]
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") for c in code)
    assert not [c.source for c in code if re.search(r"\b(def|class|lambda)\b", c.source)]
    solutions = [c for c in code if "solution" in c.metadata.get("tags", [])]
    checked = re.findall(r'check\("([a-z0-9-]+)"', "\n".join(c.source for c in code))
    assert sorted(checked) == sorted(EXERCISES) and len(solutions) == len(EXERCISES)
    notes = [c for c in nb.cells if "teacher" in c.metadata.get("tags", [])]
    assert len(notes) >= 10  # the session plan, one per part, the wrap-up
    for note in notes[1:-1]:
        assert "minutes" in note.source and "wrong answer" in note.source and "Discussion" in note.source


# -- the bundle, from a fresh clone -----------------------------------------------------------------
@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """`cslab workshop` run from a fresh clone of this repository (its committed state)."""
    base = tmp_path_factory.mktemp("workshop")
    clone = base / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    env = {**os.environ, "PYTHONPATH": str(clone), "OMP_NUM_THREADS": "1"}
    out = base / "bundle"
    run = subprocess.run(
        [sys.executable, "-c", "from cslab.cli import main; main()", "workshop", "--out", str(out), *SMALL],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    return out


def test_bundle_layout(bundle):
    assert (bundle / "README.md").exists()
    assert [p.name for p in (bundle / "student").glob("*.ipynb")] == [f"{PRIMER}.ipynb"]
    assert [p.name for p in (bundle / "teacher").glob("*.ipynb")] == [f"{PRIMER}.ipynb"]
    assert {p.name for p in (bundle / "data").iterdir()} == {
        "hand_book",
        "demo",
        "leaky-smb",
        "expansion-led",
        "under-invested-cs",
        "hidden-risk",
    }
    assert {p.name for p in (bundle / "handouts").glob("*.html")} == {
        f"{PRIMER}_student.html",
        f"{PRIMER}_teacher.html",
    }
    figures = sorted((bundle / "figures").glob("*.png"))
    assert len(figures) >= 8 and all(p.stat().st_size > 20_000 for p in figures)
    readme = (bundle / "README.md").read_text()
    assert f"jupyter lab student/{PRIMER}.ipynb" in readme and "pip install" in readme
    for name in ("leaky-smb", "expansion-led", "under-invested-cs", "hidden-risk"):
        truth = json.loads((bundle / "data" / name / "truth.json").read_text())["scenario"]
        assert truth["story"] in readme and all(truth["in_band"].values()), (name, truth["realised"])
    for page in (bundle / "handouts").glob("*.html"):
        html = page.read_text()
        assert not re.search(r"""(src|href)=["']https?://""", html), page.name  # works offline
        assert "data:image/png;base64" in html and "Traceback" not in html


def test_student_material_holds_no_solution(bundle):
    teacher = nbformat.read(bundle / "teacher" / f"{PRIMER}.ipynb", as_version=4)
    student = nbformat.read(bundle / "student" / f"{PRIMER}.ipynb", as_version=4)
    solutions = [c for c in teacher.cells if "solution" in c.metadata.get("tags", [])]
    notes = [c for c in teacher.cells if "teacher" in c.metadata.get("tags", [])]
    assert len(solutions) == len(EXERCISES) and notes
    assert not [c for c in student.cells if {"solution", "teacher"} & set(c.metadata.get("tags", []))]
    student_files = [p for p in (bundle / "student").rglob("*") if p.is_file()]
    student_files.append(bundle / "handouts" / f"{PRIMER}_student.html")
    texts = {p.name: p.read_text(encoding="utf-8") for p in student_files}
    teacher_html = (bundle / "handouts" / f"{PRIMER}_teacher.html").read_text(encoding="utf-8")
    import html as html_lib

    plain = {
        name: (
            html_lib.unescape(re.sub(r"<[^>]+>", "", text))
            if name.endswith(".html")
            else text.replace("\\n", "\n").replace('\\"', '"')
        )
        for name, text in texts.items()
    }
    for cell in solutions:
        line = cell.source.strip()
        assert line.startswith("answer = ") and line != "answer = None"
        # the solution's code: the whole line; for a computed answer also the computation on its own
        # (a choice's right letter or word is among the options the question lists)
        code = [line] + ([line.split("=", 1)[1].strip()] if not line.endswith('"') else [])
        for name, text in plain.items():
            assert not any(c in text for c in code), (name, line)
        assert line in html_lib.unescape(re.sub(r"<[^>]+>", "", teacher_html))
    for note in notes:
        phrase = note.source.splitlines()[1][:40] if len(note.source.splitlines()) > 1 else note.source[:40]
        assert all(phrase not in text for text in texts.values())


def _checks(notebook) -> dict[str, dict]:
    found = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            payload = output.get("data", {}).get(CHECK_MIMETYPE)
            if payload:
                found[payload["exercise"]] = payload
    return found


def test_student_runs_top_to_bottom_and_every_solution_passes(bundle, tmp_path):
    with current_kernel() as kernel:
        for who in ("student", "teacher"):
            folder = bundle / who
            pm.execute_notebook(
                str(folder / f"{PRIMER}.ipynb"),
                str(tmp_path / f"{who}.ipynb"),
                kernel_name=kernel,
                cwd=str(folder),
                progress_bar=False,
            )
    student = _checks(nbformat.read(tmp_path / "student.ipynb", as_version=4))
    teacher = _checks(nbformat.read(tmp_path / "teacher.ipynb", as_version=4))
    assert set(student) == set(teacher) == set(EXERCISES)
    assert all(not c["answered"] and not c["correct"] for c in student.values())
    assert all(c["correct"] for c in teacher.values()), [k for k, c in teacher.items() if not c["correct"]]
    # the bundle's own data was used, not the repository's
    executed = nbformat.read(tmp_path / "teacher.ipynb", as_version=4)
    assert '"../data/demo"' in executed.cells[1].source and '"../data/hand_book"' in executed.cells[1].source


def test_cli_workshop_refuses_an_unknown_scenario_and_an_existing_folder(bundle, tmp_path):
    from typer.testing import CliRunner

    from cslab.cli import app

    runner = CliRunner()
    assert runner.invoke(app, ["workshop", "--out", str(tmp_path / "x"), "--scenario", "nope"]).exit_code == 2
    taken = runner.invoke(app, ["workshop", "--out", str(bundle), *SMALL])
    assert taken.exit_code == 2 and "--force" in taken.output


# -- the analysis notebooks on the scenario books (a rotation: each notebook, each scenario once) ---
QUICK = {"min_cohort_size": 10, "shap_sample": 200, "cox_sample": 3000, "n_bootstrap": 4}
ROTATION = [
    ("01_cohort_retention", "hidden-risk"),
    ("02_churn_drivers", "leaky-smb"),
    ("03_cs_roi", "under-invested-cs"),
    ("04_expansion_opportunity", "expansion-led"),
]


@pytest.mark.parametrize("notebook, scenario", ROTATION)
def test_analysis_notebooks_run_on_the_scenarios(bundle, tmp_path, notebook, scenario):
    from cslab.notebook import declared_parameters

    declared = declared_parameters(notebook)
    params = {k: v for k, v in QUICK.items() if k in declared}
    result = run_audit(
        bundle / "data" / scenario,
        tmp_path / "out",
        only=[notebook],
        params=params,
        progress=False,
        echo=lambda _: None,
    )
    run = result.runs[notebook]
    assert run.status == "ok", run.error
    recorded = run.results
    truth = json.loads((bundle / "data" / scenario / "truth.json").read_text())["scenario"]["realised"]
    if notebook == "01_cohort_retention":
        assert recorded["nrr_12m"] == pytest.approx(truth["nrr_12m"], abs=1e-6)
        assert recorded["logo_churn_monthly"] == pytest.approx(truth["logo_churn_monthly"], abs=1e-6)
    if notebook == "03_cs_roi":
        assert recorded["cs_cost_share_of_revenue"] <= 0.07
    if notebook == "04_expansion_opportunity":
        assert recorded["nrr_12m"] >= 1.10
