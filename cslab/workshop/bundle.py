"""The classroom bundle: ``cslab workshop --out DIR``.

::

    DIR/README.md                 the two commands a student runs, the scenarios, set-up offline
    DIR/student/*.ipynb           the primer without solutions or teacher's notes, no outputs
    DIR/teacher/*.ipynb           the primer with solutions and teacher's notes, no outputs
    DIR/data/hand_book/           the hand-made book (CSV: open it in a spreadsheet too)
    DIR/data/demo/                the demo book
    DIR/data/<scenario>/          each scenario's book, truth.json telling its story
    DIR/handouts/*.html           both primers executed, as HTML (loads nothing from the network)
    DIR/figures/*.png             slide-ready figures
    DIR/wheels/                   (with ``wheelhouse``) wheels to install cslab offline

Cells tagged ``solution`` (the exercises' solutions) and ``teacher`` (teacher's notes) are kept
only in the teacher's copy. Notebook paths point into the bundle (``../data/...``), so a notebook
runs from its own folder, as JupyterLab and papermill (``--cwd``) run it.

Examples
--------
>>> build_bundle("workshop", scenarios=["leaky-smb", "hidden-risk"])  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from cslab import config

__all__ = [
    "PRIMER",
    "STUDENT_TAGS_REMOVED",
    "BundleResult",
    "student_copy",
    "set_parameters",
    "build_bundle",
    "export_handout",
]

PRIMER = "00_metrics_primer"
#: Cells with these tags are removed from the student copy.
STUDENT_TAGS_REMOVED = ("solution", "teacher")


@dataclass
class BundleResult:
    """What :func:`build_bundle` wrote: the folder, the scenarios and their realised metrics, files."""

    out: Path
    scenarios: dict[str, dict] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    handouts: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def student_copy(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook without cells tagged ``solution`` or ``teacher``, and without outputs.

    Examples
    --------
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("answer = 1"),
    ...     nbformat.v4.new_code_cell("answer = 2", metadata={"tags": ["solution"]})])
    >>> [c.source for c in student_copy(nb).cells]
    ['answer = 1']
    """
    copy = nbformat.from_dict(json.loads(json.dumps(notebook)))
    copy.cells = [c for c in copy.cells if not set(_tags(c)) & set(STUDENT_TAGS_REMOVED)]
    return _clean(copy)


def _clean(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return notebook


def set_parameters(notebook: nbformat.NotebookNode, values: dict) -> nbformat.NotebookNode:
    """Set defaults in the cell tagged ``parameters``, keeping each line's type and comment.

    Examples
    --------
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    ...     'data_dir: str = ""  # data folder', metadata={"tags": ["parameters"]})])
    >>> set_parameters(nb, {"data_dir": "../data/demo"}).cells[0].source
    'data_dir: str = "../data/demo"  # data folder'
    """
    cell = next(c for c in notebook.cells if "parameters" in _tags(c))
    lines = cell.source.splitlines()
    for name, value in values.items():
        pattern = re.compile(rf"^({re.escape(name)}\s*:\s*[^=]+=\s*)([^#]*?)(\s*#.*)?$")
        hits = [i for i, line in enumerate(lines) if pattern.match(line)]
        if not hits:
            raise KeyError(f"the notebook declares no parameter {name!r}")
        for i in hits:
            lines[i] = pattern.sub(lambda m, value=value: m.group(1) + json.dumps(value) + (m.group(3) or ""), lines[i])
    cell.source = "\n".join(lines)
    return notebook


_REMOTE = re.compile(
    r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>|<link[^>]*\bhref=\"https?://[^\"]*\"[^>]*>", re.IGNORECASE
)


def export_handout(notebook: nbformat.NotebookNode, path: Path, title: str) -> Path:
    """The executed notebook as HTML, code shown, figures embedded, nothing loaded from the network."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", exclude_input_prompt=True, exclude_output_prompt=True)
    notebook = nbformat.from_dict(json.loads(json.dumps(notebook)))
    notebook.metadata["title"] = title
    body, _ = exporter.from_notebook_node(notebook)
    path.write_text(_REMOTE.sub("", body), encoding="utf-8")
    return path


def _execute(source: Path, target: Path, kernel: str) -> nbformat.NotebookNode:
    import papermill as pm

    pm.execute_notebook(
        str(source), str(target), kernel_name=kernel, progress_bar=False, cwd=str(source.parent), log_output=False
    )
    return nbformat.read(str(target), as_version=4)


def _readme(result: BundleResult, wheels: bool) -> str:
    install = (
        "python -m pip install --no-index --find-links wheels cslab   # once, offline, from this folder"
        if wheels
        else "python -m pip install cslab   # once, before the session (see Set-up)"
    )
    rows = "\n".join(
        f"| `data/{name}/` | {info['title']} | {info['story']} |" for name, info in result.scenarios.items()
    )
    realised = "\n".join(
        f"| `{name}` | {r['logo_churn_monthly']:.1%} | {r['nrr_12m']:.1%} | {r['grr_12m']:.1%} | "
        f"{r['cs_cost_share']:.1%} | {r['onboarding_share']:.0%} | {r['early_churn_trend']:.2f} |"
        for name, info in result.scenarios.items()
        for r in [info["realised"]]
    )
    return f"""# cslab workshop: customer-success metrics

Everything for a three-hour session on laptops, without the internet.

## The two commands a student runs

```bash
{install}
jupyter lab student/{PRIMER}.ipynb
```

Then run the notebook from the top (Run > Run All Cells), and work through the exercises: replace
`None` with your answer and run the `check` cell below it. It tells you whether you are right, and
roughly how far off, without showing the answer. To run the whole notebook without JupyterLab:
`cd student && papermill {PRIMER}.ipynb done.ipynb`.

## What is here

| folder | what |
| --- | --- |
| `student/` | the primer, exercises without solutions |
| `teacher/` | the primer with solutions (cells tagged `solution`) and teacher's notes (tagged `teacher`): timings, usual wrong answers, discussion questions |
| `handouts/` | both, executed, as HTML: open in any browser, nothing loads from the network |
| `figures/` | slide-ready figures (PNG, one message each) |
| `data/hand_book/` | the hand-made book of the primer (ten accounts, six months), as CSV |
| `data/demo/` | the demo book (the primer's real-size book) |
{chr(10).join(f"| `data/{n}/` | scenario: {i['title'].lower()} |" for n, i in result.scenarios.items())}

## The scenarios

Each is a book with a story; `truth.json` in its folder tells it (`scenario.story`) with the figures
it was built to show. Hand them out without the story and ask what is going on.

| book | scenario | story |
| --- | --- | --- |
{rows}

Realised on these books (the kit's own functions; the last 12 months):

| scenario | monthly logo churn | NRR | GRR | CS cost / revenue | new accounts onboarded | early churn, latest cohorts / before |
| --- | --- | --- | --- | --- | --- | --- |
{realised}

The full audit of a scenario (about two minutes on a laptop, offline):
`cslab audit data/hidden-risk --out reports/hidden-risk`.

## Set-up

Students need Python 3.11 or newer with cslab installed. Nothing in the session needs the internet:
the data, notebooks and handouts are all in this folder.
{
        "The `wheels/` folder holds cslab and every package it needs, so the first command installs offline."
        if wheels
        else "To install offline in the room, build the bundle with `cslab workshop --out DIR --wheelhouse WHEELS`, where WHEELS is a folder prepared once with the internet (`python -m pip wheel /path/to/cslab -w WHEELS`); it is copied to `wheels/` and the first command becomes `python -m pip install --no-index --find-links wheels cslab`."
    }
"""


def build_bundle(
    out: str | Path,
    scenarios: list[str] | None = None,
    *,
    n_accounts: int | None = None,
    n_months: int | None = None,
    seed: int = 42,
    demo_accounts: int = config.DEMO_ACCOUNTS,
    demo_months: int = config.DEMO_MONTHS,
    execute: bool = True,
    wheelhouse: str | Path | None = None,
    force: bool = False,
    echo: Callable[[str], None] = lambda _: None,
) -> BundleResult:
    """Build the classroom bundle into ``out`` (see the module's docstring for its layout).

    Parameters
    ----------
    out : str or Path
        The bundle folder; an existing one is replaced only with ``force``.
    scenarios : list of str, optional
        Scenario names (:data:`cslab.data.scenarios.SCENARIOS`); default all four.
    n_accounts, n_months : int, optional
        Size of each scenario book (default each scenario's own: 800 accounts, expansion-led 1,600,
        x :data:`~cslab.data.scenarios.SCENARIO_MONTHS`).
    seed : int
        Seed of every generated book.
    demo_accounts, demo_months : int
        Size of the demo book (default: the demo's, 3,000 x 36).
    execute : bool
        Run both primers for the HTML handouts (the handouts are left out otherwise).
    wheelhouse : str or Path, optional
        A folder of wheels (cslab and its dependencies) copied to ``wheels/`` for offline installs.
    force : bool
        Replace an existing ``out``.
    echo : callable
        Progress lines.

    Returns
    -------
    BundleResult

    Examples
    --------
    >>> result = build_bundle("/tmp/workshop", scenarios=["leaky-smb"], n_accounts=500)  # doctest: +SKIP
    >>> sorted(p.name for p in (result.out / "student").iterdir())  # doctest: +SKIP
    ['00_metrics_primer.ipynb']
    """
    import cslab
    from cslab.audit import current_kernel
    from cslab.data import scenarios as sc
    from cslab.data.synth import write_synthetic
    from cslab.workshop.hand import HAND_AS_OF, write_hand_book
    from cslab.workshop.slides import export_figures

    start = time.perf_counter()
    out = Path(out)
    names = list(scenarios) if scenarios else list(sc.SCENARIOS)
    unknown = [n for n in names if n not in sc.SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenario {', '.join(unknown)}; known: {', '.join(sc.SCENARIOS)}")
    if out.exists() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{out} exists and is not empty; use force (--force) to replace it")
    if wheelhouse is not None and not Path(wheelhouse).is_dir():
        raise FileNotFoundError(f"wheelhouse {wheelhouse} is not a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        result = BundleResult(out=out)
        data = partial / "data"
        echo("writing the hand book and the demo book")
        write_hand_book(data / "hand_book")
        write_synthetic(data / "demo", n_accounts=demo_accounts, n_months=demo_months, seed=seed)
        panels = {}
        for name in names:
            echo(f"generating scenario {name}")
            book = sc.write_scenario(
                name, data / name, n_accounts=n_accounts, n_months=n_months or sc.SCENARIO_MONTHS, seed=seed
            )
            result.scenarios[name] = book.truth["scenario"]
            if name == "hidden-risk":
                panels[name] = cslab.panel(cslab.load(data / name))

        primer = nbformat.read(str(config.NOTEBOOKS_DIR / f"{PRIMER}.ipynb"), as_version=4)
        teacher = set_parameters(_clean(primer), {"data_dir": "../data/demo", "hand_dir": "../data/hand_book"})
        copies = {"teacher": teacher, "student": student_copy(teacher)}
        for who, notebook in copies.items():
            (partial / who).mkdir()
            nbformat.write(notebook, str(partial / who / f"{PRIMER}.ipynb"))

        echo("drawing the slide figures")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hand = cslab.panel(cslab.load(data / "hand_book"), as_of=HAND_AS_OF)
            demo = cslab.panel(cslab.load(data / "demo"))
        result.figures = export_figures(
            partial / "figures",
            hand,
            demo,
            {n: i["realised"] for n, i in result.scenarios.items()},
            panels.get("hidden-risk"),
        )
        if execute:
            (partial / "handouts").mkdir()
            with current_kernel() as kernel, tempfile.TemporaryDirectory() as tmp:
                for who in ("student", "teacher"):
                    echo(f"running the {who} primer for its handout")
                    executed = _execute(partial / who / f"{PRIMER}.ipynb", Path(tmp) / f"{who}.ipynb", kernel)
                    result.handouts.append(
                        export_handout(
                            executed, partial / "handouts" / f"{PRIMER}_{who}.html", f"Metrics primer ({who})"
                        )
                    )
        if wheelhouse is not None:
            shutil.copytree(wheelhouse, partial / "wheels")
        (partial / "README.md").write_text(_readme(result, wheelhouse is not None), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    result.figures = [out / "figures" / p.name for p in result.figures]
    result.handouts = [out / "handouts" / p.name for p in result.handouts]
    result.seconds = time.perf_counter() - start
    return result
