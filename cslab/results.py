"""The registry of recorded results: every key a notebook records, declared once.

A notebook records its key figures with :func:`cslab.notebook.record`; the audit reads them back into
``results.json``, the index page shows the headline ones, the executive summary words them and the
README lists them. Each of those reads this registry: a key's notebook, its *kind* (how its value is
shown), a label, a one-line meaning and, for headline figures, the verdict rules that read it. A key
that is not declared here cannot be recorded.

Per-programme keys of notebook 03 are declared once with a placeholder, ``effect_hr_{programme}``;
:func:`lookup` matches ``effect_hr_qbr`` to it.

Examples
--------
>>> lookup("roi").kind
'ratio'
>>> lookup("effect_hr_qbr_low").name
'effect_hr_{programme}_low'
>>> format_value(0.05189413596263622, "share"), format_value(1422375.0, "money", "EUR")
('5.2%', 'EUR 1,422,375')
>>> verdict("roi", {"roi": 0.4, "roi_low": 0.1, "roi_high": 0.7})
'CS pays for itself'
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "KINDS",
    "Verdict",
    "ResultKey",
    "RESULT_KEYS",
    "UndeclaredResultError",
    "declare",
    "lookup",
    "keys_of",
    "notebook_of",
    "label_for",
    "format_value",
    "verdict",
    "markdown_table",
]

#: How a kind of value is shown (see :func:`format_value`)
KINDS = {
    "share": "a fraction shown as a percentage (0.052 -> 5.2%)",
    "money": "an amount in the audit's currency",
    "count": "a whole number (accounts, months, replicates)",
    "months": "a duration in months",
    "ratio": "a ratio (hazard ratio, lift, multiple); 1 means no difference",
    "number": "a number with no unit (a score, a model parameter)",
    "text": "words",
    "list": "a list of names",
    "features": "a list of model features, shown in plain words",
    "mapping": "name -> value pairs",
    "records": "a list of rows (each a small mapping)",
    "flag": "yes or no",
}


class UndeclaredResultError(KeyError):
    """A notebook recorded a key that :data:`RESULT_KEYS` does not declare."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


@dataclass(frozen=True)
class Verdict:
    """One rule that reads a figure: its wording holds when the figure read passes every bound given.

    ``of`` names which figure the rule reads: ``"value"`` (the key itself), ``"low"`` or ``"high"``
    (the ends of its 95% interval, recorded as ``<key>_low`` and ``<key>_high``). A rule with no
    bound always holds: put it last, as the "otherwise". The text may use ``{value}``, ``{low}``,
    ``{high}`` and ``{complement}`` (1 - value), each formatted by the key's kind.

    Examples
    --------
    >>> Verdict("pays for itself", of="low", above=0).holds({"low": 0.2})
    True
    """

    text: str
    of: str = "value"
    above: float | None = None
    below: float | None = None
    at_least: float | None = None
    at_most: float | None = None

    def holds(self, figures: dict[str, float | None]) -> bool:
        x = figures.get(self.of)
        bounds = (self.above, self.below, self.at_least, self.at_most)
        if all(b is None for b in bounds):
            return True
        if x is None or (isinstance(x, float) and math.isnan(x)):
            return False
        return (
            (self.above is None or x > self.above)
            and (self.below is None or x < self.below)
            and (self.at_least is None or x >= self.at_least)
            and (self.at_most is None or x <= self.at_most)
        )

    def rule(self) -> str:
        """The condition in words, for the README (``low > 0``; ``otherwise``)."""
        name = {"value": "value", "low": "interval low", "high": "interval high"}[self.of]
        parts = [
            f"{name} {op} {bound:g}"
            for op, bound in ((">", self.above), ("<", self.below), (">=", self.at_least), ("<=", self.at_most))
            if bound is not None
        ]
        return " and ".join(parts) or "otherwise"


@dataclass(frozen=True)
class ResultKey:
    """A recorded key: its name (``{programme}`` as a placeholder), notebook, kind, label, meaning."""

    name: str
    notebook: str
    kind: str
    label: str
    meaning: str
    verdicts: tuple[Verdict, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: unknown kind {self.kind!r}; known: {', '.join(KINDS)}")

    @property
    def pattern(self) -> re.Pattern:
        """The names this key stands for (itself, or every programme's for a placeholder)."""
        parts = re.split(r"\{(\w+)\}", self.name)
        regex = "".join(re.escape(p) if i % 2 == 0 else rf"(?P<{p}>[A-Za-z0-9_]+?)" for i, p in enumerate(parts))
        return re.compile(rf"^{regex}$")

    @property
    def is_template(self) -> bool:
        return "{" in self.name


_PLACEHOLDER = re.compile(r"\{\w+\}")


def _k(name, notebook, kind, label, meaning, *verdicts) -> ResultKey:
    return ResultKey(name, notebook, kind, label, meaning, tuple(verdicts))


_N01, _N02, _N03, _N04 = "01_cohort_retention", "02_churn_drivers", "03_cs_roi", "04_expansion_opportunity"
_NRR_VERDICTS = (
    Verdict("the customers of a year ago pay more now than they did then", at_least=1),
    Verdict("the customers of a year ago pay {complement} less now, expansion included"),
)

#: Every key the notebooks record, in the order of their notebooks
RESULT_KEYS: list[ResultKey] = [
    # 01 cohort retention
    _k(
        "logo_churn_monthly",
        _N01,
        "share",
        "Logo churn (monthly)",
        "share of active customers lost in a month, at the recent rate",
    ),
    _k(
        "logo_churn_annual",
        _N01,
        "share",
        "Logo churn (annualised)",
        "share of customers lost in a year at the recent monthly rate",
    ),
    _k(
        "grr_12m",
        _N01,
        "share",
        "Gross revenue retention (12 months)",
        "revenue kept from customers of a year ago, expansion excluded; null under 13 months of history",
        Verdict("below the 90% that B2B companies commonly aim for", below=0.9),
        Verdict("at or above the 90% that B2B companies commonly aim for"),
    ),
    _k(
        "nrr_12m",
        _N01,
        "share",
        "Net revenue retention (12 months)",
        "revenue kept from customers of a year ago, with expansion; above 100% means the base grows on its own; "
        "null under 13 months of history",
        *_NRR_VERDICTS,
    ),
    _k(
        "headwind_12m",
        _N01,
        "share",
        "Headwind (12 months)",
        "MRR of the customers of a year ago lost to churn and contraction, as a share of their MRR then; "
        "null under 13 months of history",
    ),
    _k(
        "tailwind_12m",
        _N01,
        "share",
        "Tailwind (12 months)",
        "MRR those customers added by expansion, as a share of their MRR then; null under 13 months of history",
    ),
    _k(
        "km_survival_12",
        _N01,
        "share",
        "Customers still active after 12 months",
        "Kaplan-Meier estimate over every signup cohort",
    ),
    _k(
        "km_survival_24",
        _N01,
        "share",
        "Customers still active after 24 months",
        "Kaplan-Meier estimate over every signup cohort",
    ),
    _k(
        "median_lifetime_months",
        _N01,
        "months",
        "Median customer lifetime",
        "months until half of the customers have churned; not reached (null) while more than half remain",
    ),
    _k("sbg_alpha", _N01, "number", "sBG alpha", "shifted-beta-geometric churn model, pooled over cohorts"),
    _k("sbg_beta", _N01, "number", "sBG beta", "shifted-beta-geometric churn model, pooled over cohorts"),
    _k("n_accounts", _N01, "count", "Accounts", "accounts in the book"),
    _k("n_active", _N01, "count", "Active customers", "accounts paying on the analysis date"),
    _k("mrr_end", _N01, "money", "MRR at the analysis date", "monthly recurring revenue"),
    # 02 churn drivers
    _k("n_observations", _N02, "count", "Observations", "account-months the churn model learnt from"),
    _k("base_rate", _N02, "share", "Churn base rate", "share of observations that churned within the horizon"),
    _k(
        "auc",
        _N02,
        "ratio",
        "Churn model accuracy (ROC AUC, test period)",
        "chance that a churner is scored above a customer who stays; 0.5 is a coin toss",
    ),
    _k(
        "auc_logistic",
        _N02,
        "ratio",
        "Logistic model accuracy (ROC AUC, test period)",
        "the same for the logistic regression beside the tree model",
    ),
    _k(
        "top_decile_lift",
        _N02,
        "ratio",
        "Top-decile lift",
        "how many times more often the 10% highest-risk accounts churn than average",
    ),
    _k("brier", _N02, "number", "Brier score", "mean squared error of the churn probabilities; lower is better"),
    _k(
        "top_features",
        _N02,
        "features",
        "Strongest churn drivers",
        "features that move predicted churn most (SHAP), strongest first; original feature names",
    ),
    _k("c_index_cox", _N02, "ratio", "Cox model concordance", "concordance of the Cox model's ranking"),
    _k(
        "n_at_risk_red",
        _N02,
        "count",
        "Accounts in the red band",
        "active accounts whose health score is below the red threshold",
    ),
    _k(
        "arr_at_risk",
        _N02,
        "money",
        "ARR at risk over the horizon",
        "expected ARR lost to churn within the model's horizon (3 months by default): ARR x churn "
        "probability, summed; null in snapshot mode",
    ),
    _k("snapshot_mode", _N02, "flag", "Snapshot mode", "the model was fitted on a one-row-per-customer table"),
    _k("test_months", _N02, "count", "Test months", "months of the test window used"),
    _k(
        "left_out_attributes",
        _N02,
        "records",
        "Columns left out of the models",
        "account columns the leakage guard kept out, each with why",
    ),
    _k("metric_roles", _N02, "mapping", "Usage metric roles", "the usage metric playing each role"),
    # 03 CS ROI: per programme
    _k("exposure_{programme}", _N03, "text", "Exposure of {programme}", "`one_time` or `recurring`"),
    _k(
        "naive_hr_{programme}",
        _N03,
        "ratio",
        "Naive hazard ratio of {programme}",
        "churn hazard of treated against untreated account-months, unadjusted",
    ),
    _k(
        "effect_hr_{programme}",
        _N03,
        "ratio",
        "Total effect of {programme} on churn (hazard ratio)",
        "total effect on the monthly churn hazard once who receives it is adjusted for",
        Verdict("lowers churn", of="high", below=1),
        Verdict("goes with more churn even after adjustment", of="low", above=1),
        Verdict("has no clear effect"),
    ),
    _k("effect_hr_{programme}_low", _N03, "ratio", "{programme}: total effect, 95% low", "bootstrap percentile"),
    _k("effect_hr_{programme}_high", _N03, "ratio", "{programme}: total effect, 95% high", "bootstrap percentile"),
    _k(
        "direct_hr_{programme}",
        _N03,
        "ratio",
        "Direct effect of {programme} (hazard ratio)",
        "this month's signals held fixed; labelled, not used for money",
    ),
    _k(
        "max_smd_after_{programme}",
        _N03,
        "number",
        "Largest imbalance after weighting ({programme})",
        "largest standardised mean difference of a signal after weighting; below 0.1 is balanced",
    ),
    _k(
        "evalue_{programme}",
        _N03,
        "ratio",
        "E-value of {programme}",
        "how strong an unmeasured confounder would have to be to explain the effect away",
    ),
    _k(
        "expansion_hr_{programme}",
        _N03,
        "ratio",
        "Effect of {programme} on expansion (hazard ratio)",
        "total effect on the monthly chance of expanding",
    ),
    _k("value_{programme}", _N03, "money", "Gross margin from {programme}", "that programme's window deliveries alone"),
    # 03 CS ROI: the whole
    _k("programmes", _N03, "list", "Programmes evaluated", "CS programmes (activity types) with an estimated effect"),
    _k(
        "hr_outcome_achieved",
        _N03,
        "ratio",
        "Churn hazard with an achieved committed outcome",
        "hazard ratio against comparable accounts without one (below 1: fewer churns)",
    ),
    _k(
        "ro_attainment_rate",
        _N03,
        "share",
        "Committed outcomes achieved when due",
        "share of the customers' required outcomes met by their target date",
    ),
    _k(
        "attributable_value",
        _N03,
        "money",
        "Gross margin from the window's CS programme work",
        "all programmes' deliveries of the cost window switched off at once, total effects, over 12 months "
        "after each account's first delivery",
    ),
    _k("attributable_value_low", _N03, "money", "Gross margin from CS work, 95% low", "bootstrap percentile"),
    _k("attributable_value_high", _N03, "money", "Gross margin from CS work, 95% high", "bootstrap percentile"),
    _k("value_retained", _N03, "money", "Gross margin kept", "the part of the value from churn avoided"),
    _k("value_expansion", _N03, "money", "Gross margin added", "the part of the value from expansion"),
    _k(
        "value_window", _N03, "text", "Value window", "the months whose programme work is valued (`YYYY-MM to YYYY-MM`)"
    ),
    _k("cost_window", _N03, "text", "Cost window", "the months whose CS cost is counted (`YYYY-MM to YYYY-MM`)"),
    _k("gross_margin", _N03, "share", "Gross margin", "share of revenue counted as margin"),
    _k(
        "value_horizon_months",
        _N03,
        "months",
        "Value horizon",
        "months of margin counted after each account's first delivery",
    ),
    _k(
        "exposure_months",
        _N03,
        "months",
        "Exposure of recurring programmes",
        "months a recurring programme stays on after a delivery",
    ),
    _k("cs_cost", _N03, "money", "CS cost of the window", "cost of customer success over the cost window"),
    _k("cs_cost_source", _N03, "text", "Source of the CS cost", "where the cost came from"),
    _k("revenue", _N03, "money", "Revenue of the window", "recurring revenue billed over the cost window"),
    _k(
        "cs_cost_share_of_revenue",
        _N03,
        "share",
        "CS cost as a share of revenue",
        "typical SaaS companies spend 10-25%",
        Verdict("below the 10-25% typical of SaaS companies", below=0.10),
        Verdict("within the 10-25% typical of SaaS companies", at_most=0.25),
        Verdict("above the 10-25% typical of SaaS companies"),
    ),
    _k(
        "roi",
        _N03,
        "ratio",
        "Return on CS cost",
        "(gross margin the window's programme work keeps and adds over the next 12 months − the window's CS "
        "cost) / that cost; 0 is break-even",
        Verdict("CS pays for itself", of="low", above=0),
        Verdict("the programmes evaluated do not recover CS's cost", of="high", below=0),
        Verdict("whether CS pays for itself cannot be told from these data"),
    ),
    _k("roi_low", _N03, "ratio", "Return on CS cost, 95% low", "bootstrap percentile"),
    _k("roi_high", _N03, "ratio", "Return on CS cost, 95% high", "bootstrap percentile"),
    _k(
        "cs_efficiency_ratio",
        _N03,
        "ratio",
        "CS efficiency ratio",
        "ARR now of the customers of a year ago (NRR x their starting ARR) / CS cost of the 12 months ending "
        "3 months earlier; a ratio to follow, not an effect",
    ),
    _k(
        "saas_magic_number",
        _N03,
        "ratio",
        "SaaS magic number (CS cost)",
        "new and expansion ARR of a year / CS cost of the year before; a ratio to follow, not an effect",
    ),
    _k("n_bootstrap", _N03, "count", "Bootstrap replicates", "replicates behind the intervals"),
    _k("n_bootstrap_failed", _N03, "count", "Failed replicates", "replicates that could not be fitted"),
    _k("horizon_months", _N03, "months", "Cost window", "months of the cost window (CS cost and the work valued)"),
    # 04 expansion opportunity
    _k(
        "nrr_12m",
        _N04,
        "share",
        "Net revenue retention (12 months)",
        "100% + expansion − contraction − churn + reactivation",
        *_NRR_VERDICTS,
    ),
    _k(
        "expansion_rate_12m",
        _N04,
        "share",
        "Expansion (12 months)",
        "expansion MRR of the customers of a year ago, as a share of their MRR then",
    ),
    _k("contraction_rate_12m", _N04, "share", "Contraction (12 months)", "MRR those customers gave up while staying"),
    _k("churn_rate_12m", _N04, "share", "Churn (12 months)", "MRR those customers took with them when they left"),
    _k("reactivation_rate_12m", _N04, "share", "Reactivation (12 months)", "MRR of those customers who came back"),
    _k(
        "expansion_auc",
        _N04,
        "ratio",
        "Expansion model accuracy (ROC AUC, test period)",
        "chance that an account that expands is scored above one that does not",
    ),
    _k(
        "expansion_top_decile_lift",
        _N04,
        "ratio",
        "Expansion top-decile lift",
        "how many times more often the 10% likeliest accounts expand than average",
    ),
    _k(
        "expansion_base_rate",
        _N04,
        "share",
        "Expansion base rate",
        "share of observations that expanded within the horizon",
    ),
    _k(
        "top_expansion_drivers",
        _N04,
        "features",
        "Strongest expansion signals",
        "features that move predicted expansion most (SHAP), strongest first",
    ),
    _k(
        "pipeline_expected_arr",
        _N04,
        "money",
        "Expected expansion ARR, all accounts",
        "probability x uplift, summed over every active account",
    ),
    _k(
        "pipeline_expected_arr_green",
        _N04,
        "money",
        "Expected expansion ARR, green accounts",
        "the same over green accounts",
    ),
    _k(
        "pipeline_expected_arr_healthy",
        _N04,
        "money",
        "Expected expansion ARR over the horizon",
        "probability x uplift sized to the account, summed over green and yellow accounts (3 months by default); "
        "red accounts are to stabilise first and left out",
    ),
    _k(
        "pipeline_expected_arr_red", _N04, "money", "Expected expansion ARR, red accounts", "the same over red accounts"
    ),
    _k("arr_stabilise_first", _N04, "money", "ARR to stabilise first", "ARR on red accounts, apart from the pipeline"),
    _k(
        "n_opportunities", _N04, "count", "Accounts ready to expand", "healthy accounts above the probability threshold"
    ),
    _k("n_stabilise_first", _N04, "count", "Accounts to stabilise first", "red accounts"),
    _k("share_at_capacity", _N04, "share", "Accounts at seat capacity", "active users at or above 90% of seats"),
    _k(
        "horizon_months", _N04, "months", "Label horizon", "expanded within this many months after the observation date"
    ),
]


def declare(*keys: ResultKey) -> None:
    """Declare further keys (a notebook of one's own); a key already declared for its notebook is replaced.

    Examples
    --------
    >>> declare(ResultKey("n_widgets", "99_widgets", "count", "Widgets", "widgets sold"))  # doctest: +SKIP
    """
    for key in keys:
        RESULT_KEYS[:] = [k for k in RESULT_KEYS if (k.name, k.notebook) != (key.name, key.notebook)]
        RESULT_KEYS.append(key)


def _candidates(notebook: str | None) -> list[ResultKey]:
    keys = [k for k in RESULT_KEYS if notebook is None or k.notebook == notebook]
    # exact names first, then placeholders with the most literal text (effect_hr_{p}_low before effect_hr_{p})
    return sorted(keys, key=lambda k: (k.is_template, -len(_PLACEHOLDER.sub("", k.name))))


def lookup(name: str, notebook: str | None = None) -> ResultKey:
    """The declaration of a recorded key (``effect_hr_qbr`` -> ``effect_hr_{programme}``).

    Raises
    ------
    UndeclaredResultError
        No key of that name is declared (for ``notebook``, when given).
    """
    for key in _candidates(notebook):
        if key.name == name or key.pattern.match(name):  # a declared name, placeholder included
            return key
    where = f" for {notebook}" if notebook else ""
    raise UndeclaredResultError(
        f"result key {name!r} is not declared{where}: add it to cslab.results.RESULT_KEYS (name, notebook, "
        "kind, label, meaning) before recording it"
    )


def keys_of(notebook: str) -> list[ResultKey]:
    """The keys a notebook records, in the registry's order."""
    return [k for k in RESULT_KEYS if k.notebook == notebook]


def notebook_of(names: Iterable[str]) -> str | None:
    """The one notebook that declares every one of ``names``, else ``None``.

    Examples
    --------
    >>> notebook_of(["nrr_12m", "expansion_auc"]), notebook_of(["nrr_12m"])
    ('04_expansion_opportunity', None)
    """
    names = list(names)
    notebooks = {k.notebook for k in RESULT_KEYS}
    for name in names:
        notebooks &= {k.notebook for k in RESULT_KEYS if k.pattern.match(name)}
    return notebooks.pop() if len(notebooks) == 1 else None


def label_for(name: str, notebook: str | None = None) -> str:
    """A recorded key's label, its placeholder filled (``effect_hr_qbr`` -> ``Total effect of qbr ...``)."""
    key = lookup(name, notebook)
    match = key.pattern.match(name)
    return key.label.format(**{k: v.replace("_", " ") for k, v in match.groupdict().items()})


def format_value(value: Any, kind: str, currency: str = "", limit: int | None = None) -> str:
    """A recorded value as a reader sees it, by its kind (:data:`KINDS`); ``n/a`` when missing.

    ``limit`` shortens a list to its first items.

    Examples
    --------
    >>> format_value(0.0518941, "share"), format_value(6467, "count"), format_value(None, "months")
    ('5.2%', '6,467', 'not reached')
    >>> format_value(["usage_sessions", "csat_90d"], "features")
    'sessions, CSAT (90 days)'
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not reached" if kind == "months" else "n/a"
    if kind == "share":
        return f"{value * 100:.1f}%"
    if kind == "money":
        return f"{currency + ' ' if currency else ''}{value:,.0f}"
    if kind == "count":
        return f"{int(value):,}"
    if kind == "months":
        return f"{value} months" if isinstance(value, int) else f"{value:.1f} months"
    if kind == "flag":
        return "yes" if value else "no"
    if kind in ("list", "features", "records"):
        items = list(value)[:limit] if limit else list(value)
        if kind == "features":
            from cslab.features import label_of

            items = [label_of(str(v)) for v in items]
        elif kind == "records":
            items = [next(iter(v.values()), "") if isinstance(v, dict) else v for v in items]
        return ", ".join(str(v) for v in items) or "none"
    if kind == "mapping":
        return "; ".join(f"{k}: {v}" for k, v in value.items()) or "none"
    if kind in ("ratio", "number") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.3g}"
    return str(value)


def verdict(name: str, results: dict[str, Any], notebook: str | None = None) -> str | None:
    """What a headline figure says, by its declared rules; ``None`` without rules or figure.

    The rules read ``results[name]`` and the interval ``results[name + "_low"]``,
    ``results[name + "_high"]``.

    Examples
    --------
    >>> verdict("roi", {"roi": -0.7, "roi_low": -1.1, "roi_high": -0.3})
    "the programmes evaluated do not recover CS's cost"
    >>> verdict("nrr_12m", {"nrr_12m": 0.9})
    'the customers of a year ago pay 10.0% less now, expansion included'
    """
    key = lookup(name, notebook)
    if results.get(name) is None or not key.verdicts:
        return None
    figures = {"value": results.get(name), "low": results.get(f"{name}_low"), "high": results.get(f"{name}_high")}
    for rule in key.verdicts:
        if rule.holds(figures):
            shown = {part: format_value(x, key.kind) for part, x in figures.items()}
            value = figures["value"]
            complement = 1 - value if isinstance(value, (int, float)) else None
            return rule.text.format(**shown, complement=format_value(complement, key.kind))
    return None


def markdown_table(keys: Iterable[ResultKey] | None = None) -> str:
    """The README's table of recorded keys: notebook, key, kind, meaning and verdict rules.

    A test checks that the README holds exactly this text.

    Examples
    --------
    >>> markdown_table().splitlines()[0]
    '| notebook | key | kind | meaning |'
    """
    lines = ["| notebook | key | kind | meaning |", "| --- | --- | --- | --- |"]
    for key in keys if keys is not None else RESULT_KEYS:
        meaning = f"{key.label}: {key.meaning}".replace("|", "\\|").replace("{programme}", "P")
        if key.verdicts:
            meaning += ". Verdicts: " + "; ".join(
                f"{rule.rule()}: *{_PLACEHOLDER.sub('…', rule.text)}*" for rule in key.verdicts
            )
        lines.append(f"| `{key.notebook}` | `{key.name.replace('{programme}', 'P')}` | {key.kind} | {meaning} |")
    return "\n".join(lines) + "\n"
