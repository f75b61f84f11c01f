"""The audit: run the notebooks with papermill, export code-free HTML, write the index and results.

Layout of an audit folder::

    OUT/index.html                  summary: client, data period, key figures, links, statuses
    OUT/<notebook>.html             code-free report of each notebook, figures embedded
    OUT/executed/<notebook>.ipynb   the executed notebook, for anyone who wants the code
    OUT/tables/*.csv                ranked lists and tables
    OUT/results.json                {"notebooks": {name: {"status", "error", "seconds", "results",
                                    "parameters"}}, "inputs", "environment", ...}

The audit is written into a temporary folder beside ``OUT`` and moved into place at the end, so an
interrupted run never leaves a half report that looks complete.

Reproducible: the same inputs, parameters and seed give the same recorded results, byte-identical
tables and the same reports (timings and the index's date aside); the index states the kit and
package versions, every parameter and the SHA-256 of each input file. With ``anonymize=True`` the
notebooks run on a pseudonymised copy of the input (:mod:`cslab.privacy`).
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import jinja2
import nbformat
import pandas as pd

from cslab import config
from cslab.errors import CSLabError
from cslab.notebook import RESULTS_MIMETYPE, declared_parameters, pct, type_problems

__all__ = ["Headline", "NotebookSpec", "NOTEBOOKS", "AuditError", "AuditResult", "run_audit",
           "run_notebook", "parse_param", "read_results", "export_html", "effective_parameters",
           "PATH_PARAMETERS", "lost_figures"]

KERNEL_NAME = "cslab-current-python"
#: The backend every kernel of the audit draws with, whatever the caller's ``MPLBACKEND``.
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


@dataclass(frozen=True)
class Headline:
    """A key figure shown on the index page, with one line on what it means."""

    key: str
    label: str
    kind: str  # pct, money, int, months, ratio, number, list
    meaning: str


@dataclass(frozen=True)
class NotebookSpec:
    """A notebook of the audit: its question, what data it needs, its headline figures."""

    name: str
    title: str
    question: str
    snapshot: bool = False  # can it run from a one-row-per-customer table?
    headlines: tuple[Headline, ...] = ()
    #: tables it cannot run without, each with what it is needed for
    requires: tuple[tuple[str, str], ...] = ()


NOTEBOOKS: dict[str, NotebookSpec] = {
    spec.name: spec
    for spec in [
        NotebookSpec(
            "01_cohort_retention",
            "Cohort retention",
            "How well do we keep customers and revenue, cohort by cohort, and where is it heading?",
            snapshot=True,
            headlines=(
                Headline("nrr_12m", "Net revenue retention (12 months)", "pct",
                         "revenue kept from customers of a year ago, with expansion; above 100% "
                         "means the base grows on its own"),
                Headline("grr_12m", "Gross revenue retention (12 months)", "pct",
                         "revenue kept from customers of a year ago, expansion excluded"),
                Headline("logo_churn_annual", "Logo churn (annualised)", "pct",
                         "share of customers lost in a year at the recent monthly rate"),
                Headline("km_survival_12", "Customers still active after 12 months", "pct",
                         "Kaplan-Meier estimate over every signup cohort"),
                Headline("median_lifetime_months", "Median customer lifetime", "months",
                         "months until half of the customers have churned; not reached while more than half remain"),
                Headline("mrr_end", "MRR at the analysis date", "money", "monthly recurring revenue"),
                Headline("n_active", "Active customers", "int", "accounts paying on the analysis date"),
            ),
        ),
        NotebookSpec(
            "02_churn_drivers",
            "Churn drivers",
            "Why do customers leave, which accounts are at risk now, and why each one?",
            snapshot=True,
            headlines=(
                Headline("auc", "Churn model accuracy (ROC AUC, test period)", "number",
                         "chance that a churner is scored above a customer who stays; 0.5 is a coin toss"),
                Headline("top_decile_lift", "Top-decile lift", "number",
                         "how many times more often the 10% highest-risk accounts churn than average"),
                Headline("top_features", "Strongest churn drivers", "list",
                         "features that move predicted churn most (SHAP), strongest first"),
                Headline("n_at_risk_red", "Accounts in the red band", "int",
                         "active accounts whose health score is below the red threshold"),
                Headline("arr_at_risk", "ARR at risk over the horizon", "money",
                         "expected ARR lost to churn within the model's horizon (3 months by default): ARR x churn probability, summed"),
            ),
        ),
        NotebookSpec(
            "03_cs_roi",
            "Customer-success ROI",
            "Which CS programmes really reduce churn or drive expansion, and does customer success pay for itself?",
            requires=(("cs_activities", "the dated CS activities (account_id, date, activity_type) say who "
                       "received which programme and when"),),
            headlines=(
                Headline("roi", "Return on CS cost", "number",
                         "(gross margin the window's programme work keeps and adds over the next 12 months − "
                         "the window's CS cost) / that cost; 0 is break-even"),
                Headline("attributable_value", "Gross margin from the window's CS programme work", "money",
                         "all programmes' deliveries of the cost window switched off at once, total effects, "
                         "over 12 months after each account's first delivery"),
                Headline("cs_cost_share_of_revenue", "CS cost as a share of revenue", "pct",
                         "typical SaaS companies spend 10-25%"),
                Headline("hr_outcome_achieved", "Churn hazard with an achieved committed outcome", "number",
                         "hazard ratio against comparable accounts without one (below 1: fewer churns)"),
                Headline("ro_attainment_rate", "Committed outcomes achieved when due", "pct",
                         "share of the customers' required outcomes met by their target date"),
                Headline("cs_efficiency_ratio", "CS efficiency ratio", "number",
                         "ARR now of the customers of a year ago (NRR x their starting ARR) / CS cost of the "
                         "12 months ending 3 months earlier; a ratio to follow, not an effect"),
            ),
        ),
        NotebookSpec(
            "04_expansion_opportunity",
            "Expansion opportunity",
            "Who is ready to expand, how much is it worth, and what should the CSMs do first?",
            headlines=(
                Headline("nrr_12m", "Net revenue retention (12 months)", "pct",
                         "100% + expansion − contraction − churn + reactivation"),
                Headline("expansion_rate_12m", "Expansion (12 months)", "pct",
                         "expansion MRR of the customers of a year ago, as a share of their MRR then"),
                Headline("churn_rate_12m", "Churn (12 months)", "pct",
                         "MRR those customers took with them when they left"),
                Headline("expansion_auc", "Expansion model accuracy (ROC AUC, test period)", "number",
                         "chance that an account that expands is scored above one that does not"),
                Headline("top_expansion_drivers", "Strongest expansion signals", "list",
                         "features that move predicted expansion most (SHAP), strongest first"),
                Headline("pipeline_expected_arr_healthy", "Expected expansion ARR over the horizon", "money",
                         "probability x uplift sized to the account, summed over green and yellow accounts "
                         "(3 months by default); red accounts are to stabilise first and left out"),
                Headline("n_opportunities", "Accounts ready to expand", "int",
                         "healthy accounts above the probability threshold"),
                Headline("share_at_capacity", "Accounts at seat capacity", "pct",
                         "active users at or above 90% of seats"),
            ),
        ),
    ]
}


class AuditError(CSLabError):
    """The audit cannot start (bad parameters, existing output folder); nothing was written."""


@dataclass
class NotebookRun:
    name: str
    status: str = "skipped"
    error: str | None = None
    seconds: float = 0.0
    results: dict[str, Any] = field(default_factory=dict)
    executed: str | None = None
    report: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "error": self.error, "seconds": round(self.seconds, 2),
                "results": self.results, "executed": self.executed, "report": self.report}


@dataclass
class AuditResult:
    out: Path
    runs: dict[str, NotebookRun]

    @property
    def exit_code(self) -> int:
        """0 when every notebook is ok or skipped, 1 when any failed."""
        return 1 if any(r.status == "failed" for r in self.runs.values()) else 0


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------
def parse_param(text: str, declared: dict[str, dict] | None = None) -> tuple[str, Any]:
    """``KEY=VALUE`` from the command line, the value typed like the parameter's declaration.

    Examples
    --------
    >>> parse_param("min_cohort_size=20", {"min_cohort_size": {"type": "int"}})
    ('min_cohort_size', 20)
    >>> parse_param("segment_col=segment", {"segment_col": {"type": "str"}})
    ('segment_col', 'segment')
    """
    if "=" not in text:
        raise AuditError(f"parameter {text!r} should be KEY=VALUE")
    key, raw = (part.strip() for part in text.split("=", 1))
    kind = (declared or {}).get(key, {}).get("type", "")
    if kind == "str":
        return key, raw
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        if kind == "list":
            return key, [item.strip() for item in raw.split(",") if item.strip()]
        if kind == "bool" and raw.lower() in {"true", "false", "yes", "no"}:
            return key, raw.lower() in {"true", "yes"}
        return key, raw
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    return key, value


# --------------------------------------------------------------------------------------------
# Running one notebook
# --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def current_kernel() -> Iterator[str]:
    """A kernelspec for the running interpreter, visible to jupyter only for this run.

    So the audit works in any venv or conda env without a manual ``ipykernel install``.
    """
    with tempfile.TemporaryDirectory(prefix="cslab-kernel-") as tmp:
        folder = Path(tmp) / "kernels" / KERNEL_NAME
        folder.mkdir(parents=True)
        (folder / "kernel.json").write_text(json.dumps({
            # quiet: the kernel's own log lines (TCP warning, shutdown) mean nothing to a reader
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                     "--log-level=CRITICAL"],
            "display_name": "cslab (current Python)", "language": "python",
            # jupyter_client starts the kernel with os.environ updated by this "env": figures go
            # inline into the report even when the caller has MPLBACKEND=Agg (servers, CI images)
            # CSLAB_BATCH: no progress bars in a report nobody watches being made
            "env": {"MPLBACKEND": INLINE_BACKEND, "CSLAB_BATCH": "1"},
        }))
        previous = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = tmp + (os.pathsep + previous if previous else "")
        try:
            yield KERNEL_NAME
        finally:
            if previous is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = previous


def read_results(notebook: nbformat.NotebookNode | str | Path) -> dict[str, Any]:
    """Recorded figures (:func:`cslab.notebook.record`) read back from an executed notebook."""
    if not isinstance(notebook, nbformat.NotebookNode):
        notebook = nbformat.read(str(notebook), as_version=4)
    results: dict[str, Any] = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if RESULTS_MIMETYPE in data:
                results.update(data[RESULTS_MIMETYPE])
    return results


def _client_safe(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy fit for a client: no tracebacks, no papermill error banners, no recorded JSON.

    Cell ids are renumbered (papermill gives its injected cell a random one) so that a rerun
    gives the same report.
    """
    notebook = nbformat.from_dict(json.loads(json.dumps(notebook)))
    keep = []
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and "papermill-error-cell-tag" in cell.metadata.get("tags", []):
            continue
        if cell.cell_type == "code":
            outputs = []
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    if output.get("ename") != "NotebookSkipped":  # a skip has said why already
                        outputs.append(nbformat.v4.new_output(
                            "stream", name="stderr",
                            text=f"This step failed: {output.get('ename')}: {output.get('evalue')}\n"))
                    continue
                output.get("data", {}).pop(RESULTS_MIMETYPE, None)
                outputs.append(output)
            cell.outputs = outputs
        keep.append(cell)
    for i, cell in enumerate(keep, 1):
        cell.id = f"cell-{i}"
    notebook.cells = keep
    return notebook


#: The lab template without the scripts it fetches from CDNs (require.js, MathJax, mermaid): the
#: reports use none of them, an offline reader's browser would log an error for each, and opening a
#: client's report should not call out to a third party.
_REPORT_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""
# pandas gives every Styler table a random five-digit id (``T_3fa1c``) used by its CSS selectors
_STYLER_ID = re.compile(r"\bT_([0-9a-f]{5})(?=[_\"'\s{,.:])")


def _stable_styler_ids(html: str) -> str:
    """Replace pandas' random Styler ids by ``T_s001``, ``T_s002``... in order of appearance."""
    seen: dict[str, str] = {}

    def rename(match: re.Match) -> str:
        return seen.setdefault(match.group(1), f"T_s{len(seen) + 1:03d}")

    return _STYLER_ID.sub(rename, html)


def export_html(notebook: nbformat.NotebookNode, path: Path, title: str) -> None:
    """Code-free HTML through nbconvert: inputs and prompts excluded, figures embedded.

    The page loads nothing from the network, and the same notebook gives the same bytes.
    """
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True, template_file="cslab_report.html.j2",
                            extra_loaders=[jinja2.DictLoader({"cslab_report.html.j2": _REPORT_TEMPLATE})])
    notebook = _client_safe(notebook)
    notebook.metadata["title"] = title
    body, _ = exporter.from_notebook_node(notebook)
    path.write_text(_stable_styler_ids(body), encoding="utf-8")


_FIGURE_TYPES = ("image/png", "image/svg+xml")
# matplotlib's repr of a Figure shown as text, i.e. drawn with a non-inline backend such as Agg
_FIGURE_REPR = re.compile(r"^<Figure size \d+(?:\.\d+)?x\d+(?:\.\d+)? with \d+ Axes>$")
_HTML_FIGURE = re.compile(r"<img\b|data-mime-type=\"image/svg\+xml\"")


def lost_figures(notebook: nbformat.NotebookNode, html: str) -> str | None:
    """Why the figures a notebook drew did not reach its HTML report, or ``None`` when they did.

    Two signs: the executed notebook holds more figure outputs (PNG or SVG) than the HTML holds
    images; or an output shows a matplotlib ``<Figure size 640x480 with 1 Axes>`` as text with no
    image beside it (or matplotlib said it cannot show a figure), which is what a non-inline backend
    such as ``MPLBACKEND=Agg`` leaves behind.

    Examples
    --------
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("fig", outputs=[
    ...     nbformat.v4.new_output("display_data", {"image/png": "iVBORw0KGgo="})])])
    >>> lost_figures(nb, "<html><img src='data:image/png;base64,iVBORw0KGgo='></html>") is None
    True
    >>> lost_figures(nb, "<html></html>")[:31]
    'figures were drawn but none (of'
    """
    drawn, as_text = 0, 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = output.get("data", {})
            if any(kind in data for kind in _FIGURE_TYPES):
                # nbconvert shows HTML or Markdown in preference to an image in the same output
                drawn += not ("text/html" in data or "text/markdown" in data)
            elif _FIGURE_REPR.match(str(data.get("text/plain", "")).strip()) or (
                    "and thus cannot be shown" in str(output.get("text", ""))):
                as_text += 1
    shown = len(_HTML_FIGURE.findall(html))
    backend = os.environ.get("MPLBACKEND")
    hint = f" (MPLBACKEND={backend}?)" if backend else " (matplotlib backend not inline?)"
    if drawn > shown:
        if shown:
            return f"{drawn - shown} of {drawn} figures drawn did not reach the report{hint}"
        return f"figures were drawn but none (of {drawn}) reached the report{hint}"
    if as_text and not drawn:
        return (f"figures were drawn but none reached the report: {as_text} shown as text, "
                f"not as images{hint}")
    return None


def run_notebook(spec: NotebookSpec, parameters: dict[str, Any], out: Path, kernel: str,
                 progress: bool = True) -> NotebookRun:
    """Execute one notebook into ``out/executed`` and export its HTML; never raises on failure."""
    import papermill as pm

    run = NotebookRun(spec.name)
    executed = out / "executed" / f"{spec.name}.ipynb"
    run.executed = str(executed.relative_to(out))
    start = time.perf_counter()
    try:
        pm.execute_notebook(str(config.NOTEBOOKS_DIR / f"{spec.name}.ipynb"), str(executed),
                            parameters=parameters, kernel_name=kernel, progress_bar=progress,
                            cwd=str(config.NOTEBOOKS_DIR), log_output=False)
        run.status = "ok"
    except pm.PapermillExecutionError as exc:
        if exc.ename == "NotebookSkipped":  # the notebook found its question unanswerable, and said why
            run.status, run.error = "skipped", str(exc.evalue)
        else:
            run.status, run.error = "failed", f"{exc.ename}: {exc.evalue}"
    except Exception as exc:  # noqa: BLE001 - a failing notebook must not stop the others
        run.status, run.error = "failed", f"{type(exc).__name__}: {exc}"
    run.seconds = time.perf_counter() - start
    if executed.exists():
        notebook = nbformat.read(str(executed), as_version=4)
        run.results = read_results(notebook)
        report = out / f"{spec.name}.html"
        export_html(notebook, report, f"{spec.title}: {parameters.get('client_name', '')}")
        run.report = f"{spec.name}.html"
        lost = None if run.status == "failed" else lost_figures(notebook, report.read_text(encoding="utf-8"))
        if lost:
            run.status, run.error = "failed", lost
    return run


# --------------------------------------------------------------------------------------------
# The index page
# --------------------------------------------------------------------------------------------
def format_figure(value: Any, kind: str, currency: str = "") -> str:
    """A recorded figure as the index page shows it.

    Examples
    --------
    >>> format_figure(1.0412, "pct"), format_figure(None, "months"), format_figure(31.5, "months")
    ('104.1%', 'not reached', '31.5 months')
    """
    if value is None:
        return "not reached" if kind == "months" else "n/a"
    if kind == "pct":
        return pct(value)
    if kind == "money":
        return f"{currency + ' ' if currency else ''}{value:,.0f}"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "months":
        return f"{value:.1f} months"
    if kind == "list":
        from cslab.features import label_of

        return ", ".join(label_of(str(v)) for v in value[:5])
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def executive_summary(runs: dict[str, "NotebookRun"], currency: str = "") -> list[dict[str, str]]:
    """Five to eight headline findings, each a sentence with its number and the report it comes from.

    Drawn only from recorded results of notebooks that ran; a finding whose figures are missing is
    left out rather than guessed.

    Returns
    -------
    list of dict
        ``text``, ``report`` (the HTML file) and ``title`` (of its notebook).
    """
    money = lambda value: format_figure(value, "money", currency)
    found: list[dict[str, str]] = []

    def results(name: str) -> dict[str, Any]:
        run = runs.get(name)
        return run.results if run is not None and run.status == "ok" else {}

    def add(name: str, text: str) -> None:
        found.append({"text": text, "report": runs[name].report or "", "title": NOTEBOOKS[name].title})

    got = results("01_cohort_retention")
    if got.get("nrr_12m") is not None and got.get("grr_12m") is not None:
        nrr = got["nrr_12m"]
        add("01_cohort_retention",
            f"Net revenue retention was {pct(nrr)} over the last 12 months (gross {pct(got['grr_12m'])}): "
            + ("the customers of a year ago pay more now than they did then." if nrr >= 1 else
               f"the customers of a year ago pay {pct(1 - nrr)} less now, expansion included."))
    if got.get("logo_churn_annual") is not None:
        median = got.get("median_lifetime_months")
        add("01_cohort_retention",
            f"At the recent monthly rate, {pct(got['logo_churn_annual'])} of customers leave within a year; "
            + (f"half of a signup cohort is gone after {median:.0f} months." if median is not None else
               "more than half of the customers are still active at the longest tenure observed."))
    got = results("02_churn_drivers")
    if got.get("n_at_risk_red") is not None:
        from cslab.features import label_of

        drivers = ", ".join(label_of(str(f)) for f in (got.get("top_features") or [])[:3])
        add("02_churn_drivers",
            f"{got['n_at_risk_red']:,} accounts are in the red health band"
            + (f", and {money(got['arr_at_risk'])} of ARR is expected to churn over the model's horizon"
               if got.get("arr_at_risk") is not None else "")
            + (f"; the strongest churn signals are {drivers}." if drivers else "."))
    got = results("03_cs_roi")
    programmes = got.get("programmes") or []
    effects = [(p, got.get(f"effect_hr_{p}"), got.get(f"effect_hr_{p}_low"), got.get(f"effect_hr_{p}_high"))
               for p in programmes]
    # the clearest effect is the one whose interval lies furthest below 1 (its upper limit), not the
    # lowest point estimate, which a wide interval can carry
    clear = sorted([e for e in effects if None not in e and e[3] < 1], key=lambda e: e[3])
    if programmes:
        if clear:
            p, hr, low, high = clear[0]
            add("03_cs_roi",
                f"{p.replace('_', ' ').capitalize()} is the CS programme with the clearest effect: it lowers the "
                f"monthly churn hazard by {pct(1 - hr, 0)} in total (95% interval {pct(1 - high, 0)} to "
                f"{pct(1 - low, 0)}) once who receives it is adjusted for; {len(programmes) - len(clear)} of {len(programmes)} "
                "programmes show no clear effect.")
        else:
            add("03_cs_roi", f"None of the {len(programmes)} CS programmes evaluated shows a clear effect on churn "
                             "once who receives them is adjusted for.")
    if got.get("roi") is not None and got.get("roi_low") is not None:
        verdict = ("CS pays for itself" if got["roi_low"] > 0 else
                   "the programmes evaluated do not recover CS's cost" if got["roi_high"] < 0 else
                   "whether CS pays for itself cannot be told from these data")
        add("03_cs_roi",
            f"Return on CS cost: {got['roi']:.2f} (95% interval {got['roi_low']:.2f} to {got['roi_high']:.2f}), "
            f"gross margin from the programme work of {got.get('value_window', 'the window')} against its cost: "
            f"{verdict}; CS costs {pct(got['cs_cost_share_of_revenue'])} of recurring revenue "
            "(10-25% is typical).")
    if got.get("hr_outcome_achieved") is not None and got.get("ro_attainment_rate") is not None:
        add("03_cs_roi",
            f"Accounts that achieved a committed outcome churn at {got['hr_outcome_achieved']:.2f} times the rate "
            f"of comparable accounts, yet only {pct(got['ro_attainment_rate'])} of the outcomes due were achieved.")
    got = results("04_expansion_opportunity")
    pipeline = got.get("pipeline_expected_arr_healthy", got.get("pipeline_expected_arr"))
    if pipeline is not None:
        add("04_expansion_opportunity",
            f"Expected expansion ARR over the next {got.get('horizon_months', 3)} months, red accounts left out: "
            f"{money(pipeline)}; {got.get('n_opportunities', 0):,} healthy accounts are ready to expand"
            + (f", while {money(got['arr_stabilise_first'])} of ARR sits on red accounts to stabilise first"
               if got.get("arr_stabilise_first") else "")
            + (f" and {pct(got['share_at_capacity'])} of accounts are at seat capacity."
               if got.get("share_at_capacity") is not None else "."))
    if got.get("churn_rate_12m") is not None and got.get("expansion_rate_12m") is not None:
        add("04_expansion_opportunity",
            f"Churn took {pct(got['churn_rate_12m'])} of last year's customers' revenue and expansion added back "
            f"{pct(got['expansion_rate_12m'])}: " + ("expansion outgrows churn." if got["expansion_rate_12m"] >
                                                     got["churn_rate_12m"] else "retention is where the money is."))
    return found[:8]


_INDEX = jinja2.Environment(autoescape=True).from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Retention audit — {{ client }}</title>
<style>
 body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #222;
        max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }
 h1 { margin-bottom: .2rem; } .meta { color: #555; margin-top: 0; }
 table { border-collapse: collapse; width: 100%; margin: .5rem 0 1.5rem; }
 th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #ddd; vertical-align: top; }
 td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; font-weight: 600; }
 td.list { font-weight: 600; width: 30%; }
 th:first-child { width: 30%; }
 .status { font-weight: 600; padding: .1rem .5rem; border-radius: .3rem; }
 .ok { background: #e3f4e8; color: #1b6e35; } .failed { background: #fde4e1; color: #a3241a; }
 .skipped { background: #eee; color: #555; }
 .meaning { color: #555; font-size: .92em; } code { font-size: .9em; }
 section { margin-top: 1.5rem; }
 .summary { background: #f6f8fa; border-left: 4px solid #457b9d; padding: .3rem 1.2rem .6rem; }
 .summary li { margin: .35rem 0; } .source { color: #555; font-size: .9em; white-space: nowrap; }
 table.params th:first-child { width: auto; } table.params td { font-size: .92em; }
 .warnings { background: #fff8e1; border-left: 4px solid #e9a100; padding: .3rem 1.2rem .6rem; }
 .warnings li { margin: .35rem 0; }
 .leftout { border-left: 4px solid #999; padding: .1rem 1.2rem .3rem; }
</style></head><body>
<h1>Retention audit — {{ client }}</h1>
<p class="meta">Data: {% if anonymized %}pseudonymised copy (<a href="#reproduce">inputs</a>){% else %}<code>{{ source }}</code>{% endif %}{% if period %} · period {{ period }}{% endif %}
{% if as_of %} · as of {{ as_of }}{% endif %} · generated {{ generated }} with cslab {{ version }}</p>
{% if data_warnings %}<section class="warnings" id="data-warnings">
<h2>Data warnings</h2>
<ul>{% for w in data_warnings %}<li><strong>{{ w.code|replace("_", " ") }}:</strong> {{ w.message }}.</li>
{% endfor %}</ul>
{% if profile_link %}<p>The <a href="{{ profile_link }}">input profile</a> describes every table of the export.</p>{% endif %}
</section>{% endif %}
{% if left_out %}<section class="leftout" id="left-out">
<h2>Left out of the models</h2>
<p>These account columns were not used by the churn, expansion and programme models: they are written
at or after churn, or give the answer away on their own.</p>
<table><tr><th>Column</th><th>Why</th><th>To keep it</th></tr>
{% for c in left_out %}<tr><td><code>{{ c.column }}</code></td><td>{{ c.reason }}</td>
<td><code>-p include_attributes={{ c.column }}</code></td></tr>{% endfor %}
</table></section>{% endif %}
{% if metric_roles %}<p class="meta">Usage metric roles: {% for role, metric in metric_roles.items() %}{{ role|replace("_", " ") }} = <code>{{ metric }}</code> ({{ role_reasons.get(role, "") }}){{ "; " if not loop.last }}{% endfor %}.</p>{% endif %}
{% if summary %}<section class="summary">
<h2>Executive summary</h2>
<ol>{% for f in summary %}<li>{{ f.text }} <span class="source">— <a href="{{ f.report }}">{{ f.title }}</a></span></li>
{% endfor %}</ol>
</section>{% endif %}
{% for item in notebooks %}
<section>
<h2>{{ item.title }} <span class="status {{ item.status }}">{{ item.status }}</span></h2>
<p>{{ item.question }}</p>
{% if item.status == "failed" %}
<p><strong>This notebook failed:</strong> <code>{{ item.error }}</code>. The executed notebook is at
<a href="{{ item.executed }}"><code>{{ item.executed }}</code></a>{% if item.report %}; its partial report:
<a href="{{ item.report }}">{{ item.report }}</a>{% endif %}.</p>
{% elif item.status == "skipped" %}
<p><strong>Skipped:</strong> {{ item.error }}.{% if item.report %} <a href="{{ item.report }}">What could be shown</a>.{% endif %}</p>
{% else %}
<table><tr><th>Figure</th><th>Value</th><th>What it means</th></tr>
{% for h in item.headlines %}<tr><td>{{ h.label }}</td><td class="{{ 'list' if h.kind == 'list' else 'num' }}">{{ h.value }}</td>
<td class="meaning">{{ h.meaning }}</td></tr>{% endfor %}
</table>
<p><a href="{{ item.report }}">Read the full report</a> · <a href="{{ item.executed }}">executed notebook</a>
· {{ "%.1f"|format(item.seconds) }} s</p>
{% endif %}
</section>
{% endfor %}
{% if tables %}<section><h2>Tables</h2><ul>
{% for t in tables %}<li><a href="tables/{{ t }}">{{ t }}</a></li>{% endfor %}
</ul></section>{% endif %}
<section id="reproduce"><h2>How to reproduce these figures</h2>
<p>The same input files, parameters and cslab version give the same figures and byte-identical
tables. cslab {{ version }}; {% for name, v in environment.items() %}{{ name }} {{ v }}{{ ", " if not loop.last }}{% endfor %}.</p>
{% if anonymized %}<p><strong>Pseudonymised:</strong> account names, account ids and CSM ids in this
audit are keyed pseudonyms (<code>ACC-…</code>, <code>Account …</code>, <code>CSM-…</code>); the key is
not in this folder.</p>{% endif %}
<h3>Inputs</h3>
<table><tr><th>File</th><th>SHA-256</th></tr>
{% for name, digest in inputs.items() %}<tr><td><code>{{ name }}</code></td><td><code>{{ digest }}</code></td></tr>{% endfor %}
</table>
{% if parameters %}<h3>Parameters</h3>
<table class="params"><tr><th>Parameter</th><th>Value</th><th>Notebooks</th><th>Set by</th><th>What it does</th></tr>
{% for p in parameters %}<tr><td><code>{{ p.name }}</code></td><td><code>{{ p.value }}</code></td>
<td>{{ p.notebooks|join(", ") }}</td><td>{{ p.origin }}</td><td class="meaning">{{ p.help }}</td></tr>
{% endfor %}</table>{% endif %}
</section>
</body></html>
""")


def write_index(out: Path, meta: dict[str, Any], runs: dict[str, NotebookRun], currency: str) -> Path:
    items = []
    for name, run in runs.items():
        spec = NOTEBOOKS[name]
        headlines = [{"label": h.label, "meaning": h.meaning, "kind": h.kind,
                      "value": format_figure(run.results.get(h.key), h.kind, currency)}
                     for h in spec.headlines if h.key in run.results]
        items.append({"title": spec.title, "question": spec.question, "status": run.status,
                      "error": run.error, "executed": run.executed, "report": run.report,
                      "seconds": run.seconds, "headlines": headlines})
    tables = sorted(p.name for p in (out / "tables").glob("*.csv"))
    page = _INDEX.render(notebooks=items, tables=tables, summary=executive_summary(runs, currency), **meta)
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# The whole audit
# --------------------------------------------------------------------------------------------
#: Parameters that are paths of this run (the input is listed with its checksums instead)
PATH_PARAMETERS = frozenset({"data_dir", "tables_dir", "customers_file"})
#: Packages whose versions can change the figures, recorded with every audit
_PACKAGES = ("numpy", "pandas", "scipy", "scikit-learn", "statsmodels", "lifelines", "shap",
             "duckdb", "matplotlib", "papermill", "nbconvert")


def inspect_book(data, as_of: str | None, *, as_of_given: bool = False,
                 params: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the index and ``results.json`` say about the input before any figure.

    Returns ``metric_roles`` (role -> metric), ``role_reasons``, ``left_out`` (the leakage guard's
    ``{"column", "reason"}`` list, with the same ``include_attributes`` / ``exclude_attributes``
    the notebooks get) and ``data_warnings`` (``{"code", "message"}``, :mod:`cslab.quality`).
    """
    import warnings

    from cslab import leakage, quality
    from cslab.data import panel as build_panel

    params = params or {}
    include, exclude = params.get("include_attributes"), params.get("exclude_attributes")
    if data.snapshot_mode:
        screen = leakage.screen_snapshot(data.customers, include=include, exclude=exclude)
        left_out = screen.records()
        warns = quality.data_warnings_snapshot(left_out)
        return {"metric_roles": {}, "role_reasons": {}, "left_out": left_out, "data_warnings": warns}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        monthly = build_panel(data, as_of=as_of)
        screen = leakage.screen_attributes(monthly, include=include, exclude=exclude)
        warns = quality.data_warnings(data, monthly, as_of_given=as_of_given, left_out=screen.records())
    return {"metric_roles": dict(data.metric_roles.roles), "role_reasons": dict(data.metric_roles.reasons),
            "left_out": screen.records(), "data_warnings": warns}


def effective_parameters(declared: dict[str, dict], values: dict[str, Any]) -> dict[str, Any]:
    """Every parameter a notebook ran with: the values passed, else its declared defaults.

    Paths of the run (:data:`PATH_PARAMETERS`) are left out: they differ between runs and may name
    the client; the inputs are identified by their checksums.

    Examples
    --------
    >>> effective_parameters({"a": {"default": 1}, "b": {"default": "x"}, "data_dir": {"default": ""}},
    ...                      {"a": 2, "data_dir": "/d"})
    {'a': 2, 'b': 'x'}
    """
    return {name: values.get(name, spec["default"]) for name, spec in declared.items()
            if name not in PATH_PARAMETERS}


def parameter_rows(effective: dict[str, dict[str, Any]], declared: dict[str, dict[str, dict]],
                   given: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per parameter and value for the index: the notebooks using it and where it came from."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for notebook, values in effective.items():
        for name, value in values.items():
            shown = value if isinstance(value, str) else json.dumps(value)
            row = rows.setdefault((name, shown), {
                "name": name, "value": shown, "notebooks": [],
                "origin": "given" if name in given else "audit" if name in {"as_of", "client_name"}
                else "default",
                "help": declared[notebook][name].get("help", "")})
            row["notebooks"].append(notebook[:2])
    return [rows[k] for k in sorted(rows)]


def _environment() -> dict[str, str]:
    """Python and the versions of the packages behind the figures."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in _PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def _checksums(paths: list[Path]) -> dict[str, str]:
    sums = {}
    for path in paths:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        sums[path.name] = digest.hexdigest()
    return sums


def run_audit(data_dir: str | Path | None, out: str | Path, *, client: str = "",
              as_of: str | None = None, only: list[str] | None = None,
              params: dict[str, Any] | None = None, force: bool = False,
              customers: dict[str, str] | None = None, currency: str | None = None,
              anonymize: bool = False, anonymize_key: str | bytes | None = None,
              anonymize_key_file: str | Path | None = None,
              progress: bool = True, echo: Callable[[str], None] = print) -> AuditResult:
    """Run the audit on a data folder (or a customers table) into ``out``.

    Parameters
    ----------
    data_dir : path, optional
        A data folder (the contract's tables). ``None`` in snapshot mode.
    out : path
        The audit folder to create.
    client : str
        Client name for the reports.
    as_of : str, optional
        Analysis date; default the end of the last complete month of the data
        (:meth:`CSData.default_as_of`), the same for every notebook.
    only : list of str, optional
        Notebook names to run (default: all).
    params : dict, optional
        Extra notebook parameters; each must be declared by at least one notebook that runs.
    force : bool
        Replace an existing ``out`` folder.
    currency : str, optional
        Currency label of every amount; default the ``currency`` column of the subscriptions, else
        USD.
    customers : dict, optional
        Snapshot mode: ``{"customers_file": ..., "id_col": ..., "event_col": ...,
        "duration_col": ..., "segment_col": ...}``.
    anonymize : bool
        Replace account names, account ids and CSM ids by stable keyed pseudonyms in every output
        (:mod:`cslab.privacy`): the notebooks run on a pseudonymised copy of the input written to a
        temporary folder, and the report does not show the input's path.
    anonymize_key : str, optional
        The pseudonym key (implies ``anonymize``); default ``$CSLAB_ANONYMIZE_KEY``, else the key
        file.
    anonymize_key_file : path, optional
        Key file read, or created with a random key (implies ``anonymize``); default
        ``<data folder>.cslab-key`` beside the data folder. Never inside the data folder or ``out``.

    Raises
    ------
    DataValidationError
        The input breaks the data contract (nothing runs, nothing is written).
    AuditError
        Unknown notebook or parameter, ``out`` exists without ``force``, the input lies inside
        ``out``, or no usable pseudonym key.

    Examples
    --------
    >>> result = run_audit("data/demo", "reports/demo", client="Demo Co")  # doctest: +SKIP
    >>> result.exit_code  # doctest: +SKIP
    0
    >>> run_audit("exports/acme", "reports/acme", anonymize=True)  # doctest: +SKIP
    """
    from cslab import __version__, privacy
    from cslab.data import load, load_customers

    out = Path(out).resolve()
    names = list(NOTEBOOKS) if not only else only
    unknown = [n for n in names if n not in NOTEBOOKS]
    if unknown:
        raise AuditError(f"unknown notebook {', '.join(unknown)}; known: {', '.join(NOTEBOOKS)}")
    if out.exists() and any(out.iterdir()) and not force:
        raise AuditError(f"{out} exists; use --force to replace it")
    declared = {n: declared_parameters(n) for n in names}
    params = dict(params or {})
    problems = type_problems(params, {k: v for d in declared.values() for k, v in d.items()})
    if problems:
        raise AuditError("; ".join(problems))
    anonymize = anonymize or anonymize_key is not None or anonymize_key_file is not None
    given = customers["customers_file"] if customers else data_dir
    source_path = Path(given).resolve() if given else None
    if source_path is not None and source_path.is_relative_to(out):
        # the audit folder is replaced at the end: the input must not be inside it
        raise AuditError(f"the input {given} lies inside the audit folder {out}; choose another --out")
    if anonymize and source_path is not None and (
            out.is_relative_to(source_path)
            or (anonymize_key_file and Path(anonymize_key_file).resolve().is_relative_to(out))):
        raise AuditError("with --anonymize, the audit folder must lie outside the input, and the key "
                         "file outside the audit folder")

    # Validate first: invalid input means nothing runs and nothing is written.
    if customers:
        data = load_customers(customers["customers_file"], id_col=customers.get("id_col") or None,
                              event_col=customers["event_col"],
                              duration_col=customers.get("duration_col") or None)
        inputs = [Path(customers["customers_file"])]
        period, as_of_text, source = "", "", str(customers["customers_file"])
    else:
        data = load(data_dir, metric_roles=params.get("metric_roles") or None)
        files = sorted(p for p in Path(data_dir).iterdir() if p.is_file())
        inputs = files
        as_of_ts = pd.Timestamp(as_of) if as_of else data.default_as_of()
        first = data.subscriptions["start_date"].min()
        if as_of_ts < first:
            raise AuditError(f"--as-of {as_of_ts:%Y-%m-%d} lies before the first subscription line "
                             f"({first:%Y-%m-%d}): there is nothing to analyse")
        period = f"{first:%Y-%m} to {as_of_ts:%Y-%m}"
        as_of_text, source = f"{as_of_ts:%Y-%m-%d}", str(data_dir)
    label = currency or getattr(data, "currency", None) or "USD"
    try:
        inspection = inspect_book(data, as_of_text or None, as_of_given=bool(as_of), params=params)
    except Exception as exc:  # noqa: BLE001 - the notebooks still run and say what they can
        inspection = {"metric_roles": dict(data.metric_roles.roles), "role_reasons": {},
                      "left_out": [], "data_warnings": [
                          {"code": "inspection_failed", "message": f"the input could not be profiled "
                           f"({type(exc).__name__}: {exc}); each notebook says what it could compute"}]}
    input_sums = _checksums(inputs)  # of the files as given, before any copy

    anon_dir: Path | None = None
    run_data_dir, run_customers = data_dir, dict(customers) if customers else None
    if anonymize:
        try:
            key, origin = privacy.resolve_key(source_path, anonymize_key, anonymize_key_file)
        except privacy.AnonymizationError as exc:
            raise AuditError(str(exc)) from exc
        # outside the audit folder, so nothing of the original can end up in it
        anon_dir = Path(tempfile.mkdtemp(prefix="cslab-anonymized-"))
        try:
            if customers:
                copy = privacy.anonymize_customers(customers["customers_file"], anon_dir, key,
                                                   id_col=customers.get("id_col") or None)
                run_customers["customers_file"] = str(copy.path)
            else:
                copy = privacy.anonymize_folder(data, anon_dir / "data", key)
                run_data_dir = copy.path
        except BaseException:
            shutil.rmtree(anon_dir, ignore_errors=True)
            raise
        source = "pseudonymised copy of the input (path withheld)"
        echo(f"anonymized: {copy.n_accounts:,} account ids, {copy.n_names:,} names and {copy.n_csms:,} "
             f"CSM ids replaced; pseudonym key from {origin}")
        for column in copy.kept_text_columns:
            echo(f"note: {column} is kept as it is (only names, account ids and CSM ids are replaced); "
                 "drop it from the export if it identifies anyone")

    common = {
        "data_dir": str(Path(run_data_dir).resolve()) if run_data_dir else "",
        "as_of": as_of_text,
        "client_name": client,
        "currency": label,
        **({k: str(Path(v).resolve()) if k == "customers_file" else (v or "")
            for k, v in run_customers.items()} if run_customers else {}),
    }
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent if out.parent.exists() else None))
    try:
        (tmp / "executed").mkdir()
        (tmp / "tables").mkdir()
        runs: dict[str, NotebookRun] = {}
        effective: dict[str, dict[str, Any]] = {}
        with current_kernel() as kernel:
            for i, name in enumerate(names, 1):
                spec = NOTEBOOKS[name]
                if customers and not spec.snapshot:
                    runs[name] = NotebookRun(name, "skipped", "needs a subscriptions table; a "
                                             "one-row-per-customer table has no revenue history")
                    echo(f"[{i}/{len(names)}] {name}: skipped ({runs[name].error})")
                    continue
                missing = [(table, why) for table, why in spec.requires if getattr(data, table, None) is None]
                if not customers and missing:
                    runs[name] = NotebookRun(name, "skipped", "; ".join(
                        f"needs the {table} table: {why}" for table, why in missing))
                    echo(f"[{i}/{len(names)}] {name}: skipped ({runs[name].error})")
                    continue
                values = {**common, "tables_dir": str(tmp / "tables"), **params}
                values = {k: v for k, v in values.items() if k in declared[name]}
                effective[name] = effective_parameters(declared[name], values)
                echo(f"[{i}/{len(names)}] {name}: running")
                run = run_notebook(spec, values, tmp, kernel, progress=progress)
                runs[name] = run
                detail = f" ({run.error})" if run.error else ""
                echo(f"[{i}/{len(names)}] {name}: {run.status} in {run.seconds:.1f} s{detail}")
        environment = _environment()
        meta = {
            "client": client or "(unnamed client)", "source": source, "period": period,
            "as_of": as_of_text, "version": __version__,
            "generated": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "inputs": input_sums, "anonymized": anonymize, "environment": environment,
            "parameters": parameter_rows(effective, declared, given=params),
        }
        meta.update(inspection, profile_link="01_cohort_retention.html#Input-profile"
                    if runs.get("01_cohort_retention") and runs["01_cohort_retention"].report
                    and not customers else "")
        write_index(tmp, meta, runs, label)
        results = {
            "client": client, "source": source, "period": period, "as_of": as_of_text,
            "currency": label, "metric_roles": inspection["metric_roles"],
            "metric_role_reasons": inspection["role_reasons"],
            "left_out_attributes": inspection["left_out"],
            "data_warnings": inspection["data_warnings"],
            "cslab_version": __version__, "parameters": params, "inputs": meta["inputs"],
            "anonymized": anonymize, "environment": environment,
            "notebooks": {name: {**run.to_json(), "parameters": effective.get(name, {})}
                          for name, run in runs.items()},
        }
        (tmp / "results.json").write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if anon_dir is not None:
            shutil.rmtree(anon_dir, ignore_errors=True)
    return AuditResult(out, runs)

