"""The index page of an audit: each notebook's status and headline figures, and the executive summary.

Names, labels, kinds and verdict rules of the figures come from the registry of recorded results
(:mod:`cslab.results`); the page's template is ``templates/audit_index.html.j2`` (package data).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from cslab.audit import spec as _spec
from cslab.audit.exporting import TEMPLATES
from cslab.audit.spec import NotebookRun
from cslab.notebook import pct
from cslab.results import UndeclaredResultError, format_value, lookup, verdict

__all__ = ["executive_summary", "write_index"]

_INDEX = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
_LIST_KINDS = ("list", "features", "records", "mapping")


def executive_summary(runs: dict[str, NotebookRun], currency: str = "") -> list[dict[str, str]]:
    """Five to eight headline findings, each a sentence with its number and the report it comes from.

    Drawn only from recorded results of notebooks that ran; a finding whose figures are missing is
    left out rather than guessed.

    Returns
    -------
    list of dict
        ``text``, ``report`` (the HTML file) and ``title`` (of its notebook).
    """

    def money(value: float | None) -> str:
        return format_value(value, "money", currency)

    found: list[dict[str, str]] = []

    def results(name: str) -> dict[str, Any]:
        run = runs.get(name)
        return run.results if run is not None and run.status == "ok" else {}

    def add(name: str, text: str) -> None:
        found.append({"text": text, "report": runs[name].report or "", "title": _spec.NOTEBOOKS[name].title})

    got = results("01_cohort_retention")
    if got.get("nrr_12m") is not None and got.get("grr_12m") is not None:
        add(
            "01_cohort_retention",
            f"Net revenue retention was {pct(got['nrr_12m'])} over the last 12 months (gross "
            f"{pct(got['grr_12m'])}): {verdict('nrr_12m', got, '01_cohort_retention')}.",
        )
    if got.get("logo_churn_annual") is not None:
        median = got.get("median_lifetime_months")
        add(
            "01_cohort_retention",
            f"At the recent monthly rate, {pct(got['logo_churn_annual'])} of customers leave within a year; "
            + (
                f"half of a signup cohort is gone after {median:.0f} months."
                if median is not None
                else "more than half of the customers are still active at the longest tenure observed."
            ),
        )
    got = results("02_churn_drivers")
    if got.get("n_at_risk_red") is not None:
        top = (got.get("top_features") or [])[:3]
        drivers = format_value(top, "features") if top else ""
        add(
            "02_churn_drivers",
            f"{got['n_at_risk_red']:,} accounts are in the red health band"
            + (
                f", and {money(got['arr_at_risk'])} of ARR is expected to churn over the model's horizon"
                if got.get("arr_at_risk") is not None
                else ""
            )
            + (f"; the strongest churn signals are {drivers}." if drivers else "."),
        )
    got = results("03_cs_roi")
    programmes = got.get("programmes") or []
    effects = [
        (p, got.get(f"effect_hr_{p}"), got.get(f"effect_hr_{p}_low"), got.get(f"effect_hr_{p}_high"))
        for p in programmes
    ]
    lowers = lookup("effect_hr_{programme}").verdicts[0]  # the registry's rule: the interval lies below 1
    # the clearest effect is the one whose interval lies furthest below 1 (its upper limit), not the
    # lowest point estimate, which a wide interval can carry
    clear = sorted(
        [e for e in effects if None not in e and lowers.holds({"value": e[1], "low": e[2], "high": e[3]})],
        key=lambda e: e[3],
    )
    if programmes:
        if clear:
            p, hr, low, high = clear[0]
            add(
                "03_cs_roi",
                f"{p.replace('_', ' ').capitalize()} is the CS programme with the clearest effect: it lowers the "
                f"monthly churn hazard by {pct(1 - hr, 0)} in total (95% interval {pct(1 - high, 0)} to "
                f"{pct(1 - low, 0)}) once who receives it is adjusted for; "
                f"{len(programmes) - len(clear)} of {len(programmes)} "
                "programmes show no clear effect.",
            )
        else:
            add(
                "03_cs_roi",
                f"None of the {len(programmes)} CS programmes evaluated shows a clear effect on churn "
                "once who receives them is adjusted for.",
            )
    if got.get("roi") is not None and got.get("roi_low") is not None:
        add(
            "03_cs_roi",
            f"Return on CS cost: {got['roi']:.2f} (95% interval {got['roi_low']:.2f} to {got['roi_high']:.2f}), "
            f"gross margin from the programme work of {got.get('value_window', 'the window')} against its cost: "
            f"{verdict('roi', got, '03_cs_roi')}; CS costs {pct(got['cs_cost_share_of_revenue'])} of recurring revenue "
            "(10-25% is typical).",
        )
    if got.get("hr_outcome_achieved") is not None and got.get("ro_attainment_rate") is not None:
        add(
            "03_cs_roi",
            f"Accounts that achieved a committed outcome churn at {got['hr_outcome_achieved']:.2f} times the rate "
            f"of comparable accounts, yet only {pct(got['ro_attainment_rate'])} of the outcomes due were achieved.",
        )
    got = results("04_expansion_opportunity")
    pipeline = got.get("pipeline_expected_arr_healthy", got.get("pipeline_expected_arr"))
    if pipeline is not None:
        add(
            "04_expansion_opportunity",
            f"Expected expansion ARR over the next {got.get('horizon_months', 3)} months, red accounts left out: "
            f"{money(pipeline)}; {got.get('n_opportunities', 0):,} healthy accounts are ready to expand"
            + (
                f", while {money(got['arr_stabilise_first'])} of ARR sits on red accounts to stabilise first"
                if got.get("arr_stabilise_first")
                else ""
            )
            + (
                f" and {pct(got['share_at_capacity'])} of accounts are at seat capacity."
                if got.get("share_at_capacity") is not None
                else "."
            ),
        )
    if got.get("churn_rate_12m") is not None and got.get("expansion_rate_12m") is not None:
        add(
            "04_expansion_opportunity",
            f"Churn took {pct(got['churn_rate_12m'])} of last year's customers' revenue and expansion added back "
            f"{pct(got['expansion_rate_12m'])}: "
            + (
                "expansion outgrows churn."
                if got["expansion_rate_12m"] > got["churn_rate_12m"]
                else "retention is where the money is."
            ),
        )
    return found[:8]


def _declaration(name: str, notebook: str):
    """A headline's declaration for its notebook, else the one of another notebook (a stand-in's headline)."""
    try:
        return lookup(name, notebook)
    except UndeclaredResultError:
        return lookup(name)


def write_index(out: Path, meta: dict[str, Any], runs: dict[str, NotebookRun], currency: str) -> Path:
    items = []
    for name, run in runs.items():
        spec = _spec.NOTEBOOKS[name]
        headlines = []
        for name in spec.headlines:
            if name in run.results:
                key = _declaration(name, spec.name)
                headlines.append(
                    {
                        "label": key.label,
                        "meaning": key.meaning,
                        "css": "list" if key.kind in _LIST_KINDS else "num",
                        "value": format_value(run.results[name], key.kind, currency, limit=5),
                    }
                )
        items.append(
            {
                "title": spec.title,
                "question": spec.question,
                "status": run.status,
                "error": run.error,
                "executed": run.executed,
                "report": run.report,
                "seconds": run.seconds,
                "headlines": headlines,
            }
        )
    tables = sorted(p.name for p in (out / "tables").glob("*.csv"))
    page = _INDEX.get_template("audit_index.html.j2").render(
        notebooks=items, tables=tables, summary=executive_summary(runs, currency), **meta
    )
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
