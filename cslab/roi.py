"""Customer-success ROI, as notebook ``03_cs_roi`` tells it: one import for its building blocks and
the sentences that report them.

The pieces live in modules with one job each, re-exported here: :mod:`cslab.weighting` (propensity
weights, balance, weighted survival, E-values), :mod:`cslab.effects` (person-months, the effect of a
state such as an achieved outcome), :mod:`cslab.programmes` (programmes' total effects and the value
of a window's work), :mod:`cslab.bootstrap` (:func:`cs_roi`: value against cost with an account
bootstrap) and :mod:`cslab.costs` (cost, revenue, coverage, efficiency ratios).

Examples
--------
>>> dataset, scoring = cslab.features.build_dataset(data, panel, horizon_months=1)  # doctest: +SKIP
>>> rows = person_months(dataset, panel, scoring)  # doctest: +SKIP
>>> model = ProgrammeEffects().fit(rows, ["onboarding", "qbr"]).plan_value("2025-01-01", "2025-12-31")  # doctest: +SKIP
>>> cs_roi(model, cost=1.2e6).roi  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cslab.bootstrap import DEFAULT_GROSS_MARGIN, DEFAULT_N_BOOTSTRAP, ROIEstimate, bootstrap_interval, cs_roi
from cslab.costs import (
    account_hours_cost,
    cost_window,
    coverage,
    cs_cost,
    efficiency_ratios,
    monthly_cs_cost,
    outcome_attainment,
    revenue,
)
from cslab.effects import (
    MIN_CHURNED_ACCOUNTS,
    MIN_TREATED_ACCOUNTS,
    PROGRAMME_COVARIATES,
    initiation_weights,
    person_months,
    programme_covariates,
    programme_effect,
    sample_accounts,
)
from cslab.weighting import (
    common_support,
    e_value,
    ipw_weights,
    propensity_scores,
    standardised_mean_differences,
    weighted_hazard_ratio,
    weighted_kaplan_meier,
)

__all__ = [
    "propensity_scores",
    "ipw_weights",
    "standardised_mean_differences",
    "weighted_hazard_ratio",
    "weighted_kaplan_meier",
    "e_value",
    "common_support",
    "MIN_TREATED_ACCOUNTS",
    "MIN_CHURNED_ACCOUNTS",
    "PROGRAMME_COVARIATES",
    "programme_covariates",
    "person_months",
    "initiation_weights",
    "programme_effect",
    "sample_accounts",
    "bootstrap_interval",
    "ROIEstimate",
    "cs_roi",
    "DEFAULT_GROSS_MARGIN",
    "DEFAULT_N_BOOTSTRAP",
    "cs_cost",
    "revenue",
    "coverage",
    "outcome_attainment",
    "monthly_cs_cost",
    "efficiency_ratios",
    "cost_window",
    "account_hours_cost",
    "describe_effect",
    "describe_roi",
    "ProgrammeRows",
    "programme_rows",
    "exposure_table",
    "naive_comparison",
    "effects_table",
    "describe_diagnostics",
    "expansion_effects",
    "describe_expansion_effects",
    "achieved_outcome",
    "describe_outcome",
    "describe_attainment",
    "describe_money",
    "describe_efficiency",
    "describe_coverage",
    "describe_sensitivity",
    "recorded_results",
    "cost_share",
    "plot_accounts_per_csm",
]


def describe_effect(effect) -> str:
    """One sentence on a programme's total effect, its interval, the naive and direct estimates
    and its balance (a row of :attr:`ROIEstimate.effects`).

    Examples
    --------
    >>> describe_effect(pd.Series({"hr": 0.7, "hr_low": 0.6, "hr_high": 0.8, "naive_hr": 0.9,
    ...                            "direct_hr": 0.8, "max_smd_after": 0.05, "population": "all accounts"}))[:48]
    'lowers churn: total hazard ratio **0.70** (95% 0'
    """
    hr, low, high = (float(effect[k]) for k in ("hr", "hr_low", "hr_high"))
    if high < 1:
        verdict = f"lowers churn: total hazard ratio **{hr:.2f}** (95% {low:.2f}–{high:.2f})"
    elif low > 1:
        verdict = f"goes with *more* churn even after adjustment: **{hr:.2f}** ({low:.2f}–{high:.2f})"
    else:
        verdict = f"has no clear effect: **{hr:.2f}**, and the interval {low:.2f}–{high:.2f} includes no effect (1)"
    balanced = "balanced" if float(effect["max_smd_after"]) < 0.1 else "**not fully balanced** (read with care)"
    direct = float(effect["direct_hr"])
    direct_text = (
        f"the direct effect (this month's signals held fixed) {direct:.2f}"
        if np.isfinite(direct)
        else "the direct effect (this month's signals held fixed) could not be estimated"
    )
    return (
        f"{verdict}; the naive comparison said {float(effect['naive_hr']):.2f}, {direct_text}. "
        f"Signals after weighting: largest SMD "
        f"{float(effect['max_smd_after']):.2f}, {balanced}. Population: {effect['population']}."
    )


def describe_roi(result: ROIEstimate) -> str:
    """The ROI sentence: estimate, interval and what it allows one to say.

    Examples
    --------
    >>> describe_roi(ROIEstimate(pd.DataFrame(), 1.0, 0.5, 1.5, 1.0, 0.0, 2.0, 2.0, 2.0, -0.5, -0.75,
    ...                          -0.25, pd.DataFrame(), 200, 0, "", "", 12, 0.8, 10))[:40]
    '**ROI = -0.50** (95% -0.75 to -0.25, 200'
    """
    if not np.isfinite(result.roi):
        return "No ROI: the cost of the window is not known."
    verdict = (
        "every unit spent on CS came back with more, in gross margin"
        if result.roi_low > 0
        else "the programmes evaluated did not return CS's cost in gross margin over the horizon"
        if result.roi_high < 0
        else "the interval includes breaking even (0), so these data cannot tell whether CS pays for itself"
    )
    failed = f", {result.n_failed} failed" if result.n_failed else ""
    return (
        f"**ROI = {result.roi:.2f}** (95% {result.roi_low:.2f} to {result.roi_high:.2f}, "
        f"{result.n_bootstrap} bootstrap replicates{failed}): {verdict}. Programmes whose own value "
        "interval lies above zero: "
        + (
            ", ".join(
                p.replace("_", " ") for p in result.effects.index if float(result.effects.loc[p, "value_low"]) > 0
            )
            or "none"
        )
        + "."
    )


# ----------------------------------------------------------------------------------------------
# Notebook 03, told: each function below is one step of the report, so that the notebook holds
# narrative, parameters and calls.
# ----------------------------------------------------------------------------------------------
def _name(programme: str) -> str:
    return programme.replace("_", " ")


@dataclass
class ProgrammeRows:
    """The person-months programme effects are estimated on.

    Attributes
    ----------
    rows : DataFrame
        :func:`person_months` of the (sampled) accounts.
    sampled : DataFrame
        The monthly panel of those accounts.
    book_accounts : int
        Accounts in the whole book.
    programmes : list of str
        The programmes to evaluate.
    """

    rows: pd.DataFrame
    sampled: pd.DataFrame
    book_accounts: int
    programmes: list

    def too_few_churned(self) -> str | None:
        """Why no effect can be estimated (too few churned accounts), or None."""
        churned = int(self.rows.loc[self.rows["at_risk"] & self.rows["label"].eq(1), "account_id"].nunique())
        if churned >= MIN_CHURNED_ACCOUNTS:
            return None
        return (
            f"{churned} churned accounts: too few to estimate what CS programmes change; at least "
            f"{MIN_CHURNED_ACCOUNTS} are needed"
        )

    def describe(self) -> str:
        """What the rows are, in one sentence."""
        rows = self.rows
        known = rows["label"].notna()
        return (
            f"**{known.sum():,} account-months** of {rows['account_id'].nunique():,} accounts, from "
            f"{rows['observation_date'].min():%B %Y} to {rows.loc[known, 'observation_date'].max():%B %Y}, "
            "each saying whether the account churned or expanded in the month after. Programmes evaluated: "
            f"{', '.join(_name(p) for p in self.programmes)}."
        )


def programme_rows(
    data, monthly: pd.DataFrame, programmes=(), *, max_accounts: int | None = None, seed: int = 0
) -> ProgrammeRows:
    """Person-months of a random sample of at most ``max_accounts`` accounts (all of them on a book
    that size or smaller), and the programmes to evaluate (default: every activity type).

    The features are built for the sample only, which bounds memory on a large book; revenue, cost
    and coverage use every account.

    Raises
    ------
    ValueError
        A programme asked for is not in the data.

    Examples
    --------
    >>> prepared = programme_rows(data, monthly, max_accounts=20_000)  # doctest: +SKIP
    >>> prepared.rows.columns[:2].tolist()  # doctest: +SKIP
    ['account_id', 'observation_date']
    """
    from cslab import features

    sampled, book_accounts = sample_accounts(monthly, max_accounts, seed)
    dataset, scoring = features.build_dataset(data, sampled, horizon_months=1)
    rows = person_months(dataset, sampled, scoring)  # the last month: exposure and money, no outcome yet
    available = sorted(c[len("cs_") : -len("_count")] for c in rows if c.startswith("cs_") and c.endswith("_count"))
    unknown = [p for p in programmes if p not in available]
    if unknown:
        raise ValueError(f"unknown programme(s) {unknown}; the data has {available}")
    return ProgrammeRows(rows, sampled, book_accounts, list(programmes) or available)


def exposure_table(kinds: pd.DataFrame):
    """:func:`cslab.exposure.classify_programmes` as the report shows it (a Styler)."""
    return (
        kinds[["accounts", "activities", "repeat_share", "median_gap_days", "exposure", "reason"]]
        .rename(columns={"repeat_share": "received more than once", "median_gap_days": "median gap (days)"})
        .style.format(
            {
                "accounts": "{:,.0f}",
                "activities": "{:,.0f}",
                "received more than once": "{:.0%}",
                "median gap (days)": "{:.0f}",
            },
            na_rep="–",
        )
    )


def naive_comparison(prepared: ProgrammeRows):
    """Kaplan–Meier curves of accounts ever covered by each programme against never, and the churn
    shares of both groups: the comparison a dashboard shows, biased by who gets CS attention.

    Returns
    -------
    (Figure, DataFrame)
        One panel per programme; the table indexed by programme (``covered accounts``,
        ``churned, covered``, ``churned, not covered``).
    """
    import matplotlib.pyplot as plt

    from cslab import plots, survival

    chosen = prepared.programmes
    lifetimes = survival.account_lifetimes(prepared.sampled)
    ever = prepared.rows.groupby("account_id")[[f"cs_{p}_count" for p in chosen]].max().gt(0)
    ever.columns = chosen
    lifetimes = lifetimes.join(ever.reindex(lifetimes["account_id"], fill_value=False).reset_index(drop=True))
    ncols = min(3, len(chosen))
    nrows = -(-len(chosen) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.4 * nrows), squeeze=False)
    table = []
    for i, (ax, programme) in enumerate(zip(axes.ravel(), chosen)):
        covered = lifetimes[programme].astype(bool)
        curves = weighted_kaplan_meier(lifetimes["duration"], lifetimes["event"], covered)
        plots.plot_survival(curves, ax=ax, ci=False, marks=(12,), title=_name(programme))
        if i:
            ax.get_legend().remove()
        else:
            ax.legend(fontsize=8)
        table.append(
            {
                "programme": programme,
                "covered accounts": int(covered.sum()),
                "churned, covered": lifetimes.loc[covered, "event"].mean(),
                "churned, not covered": lifetimes.loc[~covered, "event"].mean(),
            }
        )
    for ax in axes.ravel()[len(chosen) :]:
        ax.set_visible(False)
    fig.suptitle("Naive Kaplan–Meier curves: ever covered vs never (biased)", fontweight="bold")
    fig.tight_layout()
    return fig, pd.DataFrame(table).set_index("programme")


def effects_table(effects: pd.DataFrame):
    """The programmes' effects as the report shows them (a Styler)."""
    return (
        effects[
            [
                "kind",
                "naive_hr",
                "hr",
                "hr_low",
                "hr_high",
                "direct_hr",
                "max_smd_before",
                "max_smd_after",
                "evalue",
                "n_treated_accounts",
                "population",
            ]
        ]
        .rename(
            columns={
                "kind": "exposure",
                "naive_hr": "naive HR",
                "hr": "total HR",
                "hr_low": "95% low",
                "hr_high": "95% high",
                "direct_hr": "direct HR (not used)",
                "max_smd_before": "max SMD before",
                "max_smd_after": "max SMD after",
                "evalue": "E-value",
                "n_treated_accounts": "treated accounts",
            }
        )
        .style.format(
            {
                "naive HR": "{:.2f}",
                "total HR": "{:.2f}",
                "95% low": "{:.2f}",
                "95% high": "{:.2f}",
                "direct HR (not used)": "{:.2f}",
                "max SMD before": "{:.2f}",
                "max SMD after": "{:.3f}",
                "E-value": "{:.2f}",
                "treated accounts": "{:,}",
            },
            na_rep="not estimated",
        )
    )


def describe_diagnostics(programme: str, effect: dict, model_share: float) -> str:
    """The propensity model chosen and the common support of one programme's decisions.

    ``effect`` is an entry of ``ProgrammeEffects.effects_``; ``model_share`` the share of bootstrap
    replicates that chose the same propensity model.
    """
    from cslab.notebook import pct

    support = common_support(effect["decisions"])
    return (
        f"**{_name(programme)}**: propensity model *{effect['propensity_model']}* (chosen in "
        f"{pct(model_share, 0)} of the replicates); both groups cover propensities "
        f"from {support['low']:.3f} to {support['high']:.3f}; {pct(support['share_outside'])} of the decisions "
        "fall outside that range "
        + (
            "(the estimate barely extrapolates)."
            if support["share_outside"] < 0.05
            else "(**the estimate extrapolates there: read it with care**)."
        )
    )


def expansion_effects(effects: pd.DataFrame) -> pd.DataFrame:
    """Each programme's total effect on the monthly chance of expanding, with its interval."""
    return effects[["expansion_hr", "expansion_hr_low", "expansion_hr_high"]].astype(float)


def describe_expansion_effects(grow: pd.DataFrame) -> str:
    """Which programmes clearly change expansion (interval excluding 1).

    Examples
    --------
    >>> grow = pd.DataFrame({"expansion_hr": [1.3, 0.9], "expansion_hr_low": [1.1, 0.7],
    ...                      "expansion_hr_high": [1.6, 1.2]}, index=["qbr", "training"])
    >>> describe_expansion_effects(grow)
    'Programmes whose expansion hazard ratio is clearly different from 1: **qbr** (1.30).'
    """
    clear = grow[(grow["expansion_hr_low"] > 1) | (grow["expansion_hr_high"] < 1)]
    return (
        "Programmes whose expansion hazard ratio is clearly different from 1: "
        + (
            ", ".join(f"**{_name(p)}** ({grow.loc[p, 'expansion_hr']:.2f})" for p in clear.index)
            if len(clear)
            else "none: every interval includes no effect"
        )
        + "."
    )


def achieved_outcome(rows: pd.DataFrame, programmes: list, *, trim: float, window_months: int):
    """The effect of having achieved a committed outcome (a state, adjusted for the month's signals and
    the programmes): ``(estimate or None, why not or None)``."""
    from cslab.errors import CSLabError

    if "outcomes_achieved_share" not in rows:
        return None, None
    achieved = rows["outcomes_achieved_share"].fillna(0) > 0
    if not achieved.any():
        return None, None
    fitted = rows[rows["label"].notna()]
    try:
        return programme_effect(
            fitted,
            "outcome_achieved",
            others=programmes,
            treated=achieved[fitted.index],
            trim=trim,
            window_months=window_months,
        ), None
    except (CSLabError, np.linalg.LinAlgError) as error:
        return None, f"No estimate of the effect of achieving an outcome: {error}."


def describe_outcome(outcome: dict) -> str:
    """The sentence on the effect of an achieved outcome."""
    return (
        f"Accounts with an achieved committed outcome churn at **{outcome['hr']:.2f} times the rate** of "
        f"comparable accounts without one (95% {outcome['hr_low']:.2f}–{outcome['hr_high']:.2f}; naive "
        f"comparison {outcome['naive_hr']:.2f}; largest SMD after weighting {outcome['max_smd_after']:.2f}), "
        f"and expand at {outcome['expansion_hr']:.2f} times the rate "
        f"({outcome['expansion_hr_low']:.2f}–{outcome['expansion_hr_high']:.2f})."
    )


def describe_attainment(attainment: dict) -> str:
    """The sentence on committed outcomes achieved (:func:`outcome_attainment`)."""
    from cslab.notebook import pct

    median = attainment["median_months_to_first"]
    return (
        f"Of {attainment['n_due']:,} committed outcomes due by the analysis date, "
        f"**{pct(attainment['attainment_rate'])} were achieved**. Half of the accounts reach their first "
        "achieved outcome within "
        + (
            f"**{median:.1f} months** of their first commitment"
            if median is not None
            else "the period (median not reached)"
        )
        + f"; **{pct(attainment['arr_share_with_outcome'])} of ARR** is on active accounts with at least one "
        "achieved outcome."
    )


def describe_money(
    result: ROIEstimate,
    cost: dict,
    billed: float,
    *,
    value_horizon_months: int,
    as_of,
    gross_margin: float,
    currency: str = "USD",
) -> list[str]:
    """The windows, the value against the cost and the cost's share of revenue, then the ROI: the
    money section's sentences, in order."""
    from cslab.notebook import money, pct

    usd = lambda value: money(value, currency)  # noqa: E731 (a local shorthand for the sentences)
    by_hours = cost["source"].startswith("activity hours")
    share = cost_share(cost["total"], billed)
    band = "below" if share < 0.10 else "within" if share <= 0.25 else "above"
    return [
        f"**Windows.** Cost: {result.cost_window} ({usd(result.cost)}, from {cost['source']}). Value: the work "
        f"delivered {result.value_window} to {result.accounts_valued:,} accounts, counted over the "
        f"{value_horizon_months} months after each account's first delivery in it (projected past "
        f"{pd.Timestamp(as_of):%B %Y} by the models), at a {pct(gross_margin, 0)} gross margin.",
        f"The work delivered in the window is worth **{usd(result.value)} of gross margin** (95% "
        f"{usd(result.value_low)} to {usd(result.value_high)}): {usd(result.retained)} from churn averted and "
        f"{usd(result.expansion)} from expansion. Customer success cost **{usd(result.cost)}**"
        + (f" (95% {usd(result.cost_low)} to {usd(result.cost_high)})" if by_hours else "")
        + f", **{pct(share)} of the {usd(billed)} of recurring revenue** billed in the window: {band} the "
        "10–25% typical of SaaS companies.",
        describe_roi(result),
    ]


def cost_share(cost: float, billed: float) -> float:
    """CS cost as a share of the recurring revenue billed over the same window (NaN without revenue).

    Examples
    --------
    >>> cost_share(50.0, 1000.0)
    0.05
    """
    return cost / billed if billed else float("nan")


def describe_efficiency(ratios: dict, currency: str = "USD") -> list[str]:
    """The efficiency ratios with their formulas and values (:func:`efficiency_ratios`), and its notes."""
    from cslab.notebook import money

    out = []
    if ratios["cs_efficiency_ratio"] is not None:
        out.append(
            f"**CS efficiency ratio: {ratios['cs_efficiency_ratio']:.1f}** = "
            f"{ratios['formulas']['cs_efficiency_ratio']} = {money(ratios['retained_expanded_arr'], currency)} / "
            f"{money(ratios['efficiency_cost'], currency)} (cost of {ratios['efficiency_cost_window']})."
        )
    if ratios["saas_magic_number"] is not None:
        out.append(
            f"**SaaS magic number, on CS cost: {ratios['saas_magic_number']:.2f}** = "
            f"{ratios['formulas']['saas_magic_number']} = ({money(ratios['quarter_revenue'], currency)} − "
            f"{money(ratios['previous_quarter_revenue'], currency)}) × 4 / "
            f"{money(ratios['previous_quarter_cost'], currency)}, for {ratios['quarter']}. The usual magic "
            "number divides by sales and marketing cost; on CS cost it says how much recurring revenue "
            "grew per unit of CS spending."
        )
    out += [f"*{note[0].upper() + note[1:]}.*" for note in ratios["notes"]]
    return out


def describe_coverage(
    per_csm: pd.DataFrame, gap: dict | None, csm_on_activities: bool, currency: str = "USD"
) -> list[str]:
    """Accounts and ARR per CSM (:func:`coverage`), and where the CSM of each month comes from."""
    from cslab.notebook import money, pct

    named = per_csm.drop(index="(none)", errors="ignore")
    covered_arr = named["arr"].sum() / per_csm["arr"].sum()
    out = [
        f"**Coverage:** {len(named)} CSMs hold {named['accounts'].sum():,} active accounts "
        f"({pct(covered_arr)} of ARR): a median of **{named['accounts'].median():.0f} accounts and "
        f"{money(named['arr'].median(), currency)} of ARR per CSM** (from {named['accounts'].min()} to "
        f"{named['accounts'].max()} accounts). "
        + (
            f"{per_csm.loc['(none)', 'accounts']:,} accounts have no CSM (tech-touch)."
            if "(none)" in per_csm.index
            else ""
        )
    ]
    if csm_on_activities:
        out.append(
            "The CSM of each account-month is the one named on its latest CS activity so far (the "
            "assignment in force then), not today's CRM field."
        )
    elif gap:
        out.append(
            f"*CSM assignment:* only today's `accounts.csm_id` is known. {pct(gap['covered_active'])} of "
            f"active accounts have a CSM there against {pct(gap['covered_churned'])} of churned ones; a CRM "
            "that clears the CSM when an account leaves makes churned accounts look uncovered, so coverage "
            "and 'has a CSM' may be biased by that difference (a `csm_id` on `cs_activities` would fix it)."
        )
    return out


def plot_accounts_per_csm(per_csm: pd.DataFrame, ax=None, **kwargs):
    """Horizontal bars of active accounts per CSM (:func:`coverage`), the tech-touch row left out.

    Returns
    -------
    matplotlib Axes
    """
    named = per_csm.drop(index="(none)", errors="ignore")
    ax = (
        named["accounts"]
        .sort_values()
        .plot.barh(
            ax=ax, figsize=None if ax else (7, 0.22 * len(named) + 1.2), color=kwargs.pop("color", "#457b9d"), **kwargs
        )
    )
    ax.set_xlabel("active accounts")
    ax.set_ylabel("CSM")
    ax.set_title("Accounts per CSM")
    return ax


def describe_sensitivity(effects: pd.DataFrame, outcome: dict | None = None) -> list[str]:
    """How strong a hidden reason would have to be to explain each effect away (E-values), in words.

    Examples
    --------
    >>> effects = pd.DataFrame({"hr": [0.7], "evalue": [2.2], "evalue_limit": [1.5]}, index=["qbr"])
    >>> describe_sensitivity(effects)[0][:60]
    '- **qbr**: to explain away the total hazard ratio of 0.70, a'
    """
    out = []
    for p, e in effects.iterrows():
        limit = e["evalue_limit"]
        out.append(
            f"- **{_name(p)}**: to explain away the total hazard ratio of {e['hr']:.2f}, a hidden reason "
            f"would have to make both receiving the programme and churning about **{e['evalue']:.1f} times** "
            "more likely"
            + (
                f"; to move its interval to include no effect, {limit:.1f} times."
                if limit and limit > 1
                else "; its interval already includes no effect, so no hidden reason is needed to doubt it."
            )
        )
    if outcome is not None:
        out.append(f"- **achieved outcome**: E-value {outcome['evalue']:.1f}.")
    return out


def recorded_results(
    result: ROIEstimate,
    kinds: pd.DataFrame,
    *,
    cost: dict,
    billed: float,
    ratios: dict,
    outcome: dict | None,
    attainment: dict | None,
    params: dict,
) -> dict:
    """Every key figure notebook 03 records for the audit (names as the README lists them)."""
    effects = result.effects
    out = {}
    for p, e in effects.iterrows():
        out.update(
            {
                f"naive_hr_{p}": e["naive_hr"],
                f"effect_hr_{p}": e["hr"],
                f"effect_hr_{p}_low": e["hr_low"],
                f"effect_hr_{p}_high": e["hr_high"],
                f"direct_hr_{p}": e["direct_hr"],
                f"max_smd_after_{p}": e["max_smd_after"],
                f"evalue_{p}": e["evalue"],
                f"expansion_hr_{p}": e["expansion_hr"],
                f"value_{p}": e["value"],
            }
        )
    out.update({f"exposure_{p}": kinds.loc[p, "exposure"] for p in kinds.index})
    out.update(
        programmes=list(effects.index),
        hr_outcome_achieved=outcome["hr"] if outcome else None,
        ro_attainment_rate=attainment["attainment_rate"] if attainment else None,
        attributable_value=result.value,
        attributable_value_low=result.value_low,
        attributable_value_high=result.value_high,
        value_retained=result.retained,
        value_expansion=result.expansion,
        value_window=result.value_window,
        cost_window=result.cost_window,
        gross_margin=params["gross_margin"],
        value_horizon_months=params["value_horizon_months"],
        exposure_months=params["exposure_months"],
        cs_cost=result.cost,
        cs_cost_source=cost["source"],
        revenue=billed,
        cs_cost_share_of_revenue=cost_share(cost["total"], billed),
        roi=result.roi,
        roi_low=result.roi_low,
        roi_high=result.roi_high,
        cs_efficiency_ratio=ratios["cs_efficiency_ratio"],
        saas_magic_number=ratios["saas_magic_number"],
        n_bootstrap=params["n_bootstrap"],
        n_bootstrap_failed=result.n_failed,
        horizon_months=params["horizon_months"],
    )
    return out
