"""Cohort retention, as notebook ``01_cohort_retention`` tells it: each function is one step of the
report (a table, a figure's data, the sentences that read it), so that the notebook holds narrative,
parameters and calls.

The figures themselves come from :mod:`cslab.metrics`, :mod:`cslab.survival` and
:mod:`cslab.retention`; here they are put into words with the thresholds stated.

Examples
--------
>>> headline = headline_metrics(panel)  # doctest: +SKIP
>>> headline.sentence  # doctest: +SKIP
'**NRR was 91.2%**: expansion did not cover what churn and contraction took ...'
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import pandas as pd

from cslab import metrics, quality, retention, survival
from cslab.data.panel import active_in_month
from cslab.notebook import money, pct

__all__ = [
    "describe_book",
    "describe_snapshot",
    "input_profile_table",
    "input_checks",
    "Headline",
    "headline_metrics",
    "describe_bridge",
    "describe_quick_ratio",
    "describe_retention_trend",
    "describe_cohorts",
    "SurvivalSummary",
    "survival_summary",
    "fit_pooled_sbg",
    "describe_sbg",
    "projection_sample",
    "describe_projection",
    "annual_contract_caveat",
    "describe_lifetime_value",
    "next_steps",
    "recorded_results",
]


def describe_book(book: dict, monthly: pd.DataFrame, tables, client_name: str, currency: str = "USD") -> str:
    """Who the book holds on the analysis date, in one sentence (:func:`cslab.metrics.book_summary`)."""
    return (
        f"**{client_name}**: {book['n_accounts']:,} accounts have paid at some point between "
        f"{book['first_month']:%B %Y} and {book['last_month']:%B %Y}; on the analysis date "
        f"({monthly.attrs['as_of']:%Y-%m-%d}) **{book['n_active']:,} are active**, paying "
        f"**{money(book['mrr_end'], currency)} MRR** ({money(12 * book['mrr_end'], currency)} ARR). "
        f"Tables present: {', '.join(tables)}."
    )


def describe_snapshot(lifetimes: pd.DataFrame) -> str:
    """What a customer snapshot holds, and what it cannot show."""
    return (
        f"Snapshot mode: **{len(lifetimes):,} customers**, one row each, of whom "
        f"**{lifetimes['event'].sum():,} churned** ({pct(lifetimes['event'].mean())}); tenures run "
        f"from {lifetimes['duration'].min():.0f} to {lifetimes['duration'].max():.0f} months. "
        "Revenue metrics (MRR bridge, GRR, NRR, revenue cohorts) need a subscriptions table with "
        "dates and MRR, which a one-row-per-customer table does not have: this report covers "
        "survival and its projection only."
    )


def input_profile_table(data, monthly: pd.DataFrame):
    """:func:`cslab.quality.input_profile` as the report shows it (a Styler)."""
    profile = quality.input_profile(data, monthly).rename(columns=quality.PROFILE_LABELS)
    return (
        profile.style.format(
            {
                "rows": "{:,.0f}",
                "accounts": "{:,.0f}",
                "of paying accounts": "{:.0%}",
                "orphans": "{:,.0f}",
                "rows per account-month": "{:.2f}",
                "from": "{:%Y-%m-%d}",
                "to": "{:%Y-%m-%d}",
            },
            na_rep="",
        )
        .set_properties(subset=["from", "to"], **{"white-space": "nowrap"})
        .set_properties(subset=["notes"], **{"text-align": "left", "min-width": "280px"})
    )


def input_checks(data, monthly: pd.DataFrame, as_of: str = "") -> list[str]:
    """The data warnings and sanity checks of the input, one sentence each (or that there are none)."""
    given_as_of = bool(as_of) and pd.Timestamp(as_of) != data.default_as_of()
    data_warnings = quality.data_warnings(data, monthly, as_of_given=given_as_of)
    out = [f"**Data warning ({w['code'].replace('_', ' ')}):** {w['message']}." for w in data_warnings]
    out += [f"*Check:* {flag}." for flag in quality.sanity_flags(data, monthly)]
    return out or [
        "No data warnings: no zero-length or overlapping lines of the same plan, a full last month, "
        "and enough history for year-on-year rates."
    ]


@dataclass
class Headline:
    """The headline retention metrics: churn rates, and revenue retention when a year of history exists.

    Attributes
    ----------
    logo, revenue : dict
        :func:`cslab.metrics.logo_churn_rate` and :func:`cslab.metrics.revenue_churn`.
    kept : dict or None
        :func:`cslab.metrics.revenue_retention` (None on a history shorter than a year and a month).
    table : DataFrame
        The values as the report shows them.
    sentence : str
    """

    logo: dict
    revenue: dict
    kept: dict | None
    table: pd.DataFrame
    sentence: str


def headline_metrics(monthly: pd.DataFrame, currency: str = "USD") -> Headline:
    """Logo and revenue churn over the last 12 months, and NRR/GRR when the history allows them."""
    logo = metrics.logo_churn_rate(monthly, months=12)
    revenue = metrics.revenue_churn(monthly, months=12)
    rows = {
        "Logo churn (monthly)": pct(logo["monthly"], 2),
        "Logo churn (annual)": pct(logo["annual"]),
        "Gross MRR churn (monthly)": pct(revenue["gross_monthly"], 2),
        "Net MRR churn (monthly)": pct(revenue["net_monthly"], 2),
    }
    compounding = (
        f"Each month {pct(logo['monthly'], 2)} of customers stop paying, which compounds to "
        f"{pct(logo['annual'])} a year."
    )
    if quality.history_months(monthly) < quality.YEAR_ON_YEAR_MONTHS:
        sentence = (
            f"*Short history:* the book covers {quality.history_months(monthly)} months; NRR and GRR "
            f"need {quality.YEAR_ON_YEAR_MONTHS} (customers active a year ago, followed for 12 months), "
            f"so they are not reported. Each month {pct(logo['monthly'], 2)} of customers stopped paying "
            f"(pooled over the months there are), which would compound to {pct(logo['annual'])} a year."
        )
        return Headline(logo, revenue, None, pd.DataFrame({"value": rows}), sentence)
    kept = metrics.revenue_retention(monthly, months=12)
    rows.update(
        {
            "NRR (12 months)": pct(kept["nrr"]),
            "GRR (12 months)": pct(kept["grr"]),
            "Headwind": pct(kept["headwind"]),
            "Tailwind": pct(kept["tailwind"]),
        }
    )
    verdict = (
        "expansion more than covered what churn and contraction took"
        if kept["nrr"] >= 1
        else "expansion did not cover what churn and contraction took"
    )
    sentence = (
        f"**NRR was {pct(kept['nrr'])}**: {verdict} (headwind {pct(kept['headwind'])}, tailwind "
        f"{pct(kept['tailwind'])}, on {money(kept['start_mrr'], currency)} of starting MRR from "
        f"{kept['n_accounts']:,} accounts active in {kept['start_month']:%B %Y}). **GRR was "
        f"{pct(kept['grr'])}**: counting no account above what it paid a year ago, "
        f"{pct(1 - kept['grr'])} of that revenue is gone. " + compounding
    )
    return Headline(logo, revenue, kept, pd.DataFrame({"value": rows}), sentence)


def describe_bridge(monthly: pd.DataFrame, currency: str = "USD") -> tuple[pd.DataFrame | None, str, str]:
    """The MRR bridge of the last 12 months (or the months there are): ``(bridge or None, title, sentence)``."""
    end_month = monthly["month"].max()
    start_month = max(end_month - pd.DateOffset(months=12), monthly["month"].min())
    span = (end_month.year - start_month.year) * 12 + end_month.month - start_month.month
    if span == 0:
        mrr = monthly.loc[monthly["month"].eq(end_month), "mrr"].sum()
        return (
            None,
            "",
            (
                f"One month of data ({end_month:%B %Y}): a bridge needs a month before it to start "
                f"from. MRR on the analysis date is {money(mrr, currency)}."
            ),
        )
    bridge = metrics.mrr_bridge(monthly, start=start_month, end=end_month)
    steps = bridge.set_index("step")["amount"]
    gained = steps.get("new", 0) + steps.get("expansion", 0) + steps.get("reactivation", 0)
    lost = -(steps.get("contraction", 0) + steps.get("churn", 0))
    sentence = (
        f"Over the last {span} months MRR went from {money(steps.iloc[0], currency)} to "
        f"{money(steps.iloc[-1], currency)}: {money(gained, currency)} was added "
        f"({money(steps.get('new', 0), currency)} from new customers, "
        f"{money(steps.get('expansion', 0), currency)} from expansion) and {money(lost, currency)} "
        f"was lost ({money(-steps.get('churn', 0), currency)} to churn, "
        f"{money(-steps.get('contraction', 0), currency)} to contraction)."
    )
    return bridge, f"MRR bridge, {start_month:%b %Y} to {end_month:%b %Y}", sentence


def describe_quick_ratio(movements: pd.DataFrame, currency: str = "USD") -> str:
    """The quick ratio of the last 12 months (:func:`cslab.metrics.quick_ratio`), in words.

    Examples
    --------
    >>> moves = pd.DataFrame({"new": [30.0], "expansion": [10.0], "reactivation": [0.0],
    ...                       "contraction": [5.0], "churn": [11.0]})
    >>> describe_quick_ratio(moves)[:60]
    'In the last 1 months every USD 1 of MRR lost to churn and co'
    """
    quick = metrics.quick_ratio(movements, months=12)
    return (
        f"In the last {quick['months']} months every {currency} 1 of MRR lost to churn and contraction was "
        f"matched by {currency} {quick['ratio']:.2f} of new, expansion and reactivated MRR (the *quick "
        "ratio*; above 4 is healthy growth, below 1 means the book shrinks)."
    )


def describe_retention_trend(over_time: pd.DataFrame) -> str:
    """How trailing-12-month NRR and GRR moved (:func:`cslab.metrics.retention_over_time`)."""
    if len(over_time) < 2:
        return (
            "Fewer than 14 months of history: retention over time needs at least two points with 12 months behind them."
        )
    first, last = over_time.iloc[0], over_time.iloc[-1]
    trend = (
        "improved"
        if last["nrr"] > first["nrr"] + 0.005
        else ("eroded" if last["nrr"] < first["nrr"] - 0.005 else "held steady")
    )
    return (
        f"Trailing-12-month NRR {trend}: {pct(first['nrr'])} in {first['month']:%B %Y}, "
        f"{pct(last['nrr'])} in {last['month']:%B %Y}; GRR went from {pct(first['grr'])} to "
        f"{pct(last['grr'])}."
    )


def describe_cohorts(logo: pd.DataFrame, revenue: pd.DataFrame, period: str, min_cohort_size: int) -> list[str]:
    """What the cohort triangles say at one year of age, and which cohorts were left out for size."""
    unit = "quarters" if period == "Q" else "months"
    at = 4 if period == "Q" else 12
    out = []
    if at in logo.columns and logo[at].notna().any():
        logo_at, revenue_at = logo[at].dropna(), revenue[at].dropna()
        out.append(
            f"After {at} {unit}, cohorts kept between {pct(logo_at.min())} and {pct(logo_at.max())} of "
            f"their customers (mean {pct(logo_at.mean())}) and between {pct(revenue_at.min())} and "
            f"{pct(revenue_at.max())} of their starting revenue (mean {pct(revenue_at.mean())})."
        )
    dropped = logo.attrs.get("dropped_cohorts", [])
    out.append(
        f"{len(logo)} cohorts shown"
        + (
            f"; left out for having fewer than {min_cohort_size} accounts: {', '.join(map(str, dropped))}."
            if dropped
            else f"; none had fewer than {min_cohort_size} accounts."
        )
    )
    return out


@dataclass
class SurvivalSummary:
    """Kaplan–Meier survival of all customers (and by a segment), with what the report says of it."""

    overall: object
    groups: dict
    by: str | None
    logrank: dict | None
    km_12: float | None
    km_24: float | None
    median: float | None
    sentences: list = field(default_factory=list)
    cautions: list = field(default_factory=list)
    at_12_by_group: pd.DataFrame | None = None


def survival_summary(lifetimes: pd.DataFrame, segment_col: str = "") -> SurvivalSummary:
    """Kaplan–Meier curves overall and by ``segment_col`` (with a log-rank test), survival at 12 and
    24 months and the median lifetime, in words."""
    by = segment_col if segment_col and segment_col in lifetimes.columns else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        overall = survival.kaplan_meier(lifetimes)["all"]
        groups = survival.kaplan_meier(lifetimes, by=by) if by else {}
        logrank = survival.logrank_by(lifetimes, by) if by and lifetimes[by].nunique() > 1 else None
    at_times = survival.survival_at(overall, times=(12, 24))
    km_12, km_24 = at_times["survival"].get(12), at_times["survival"].get(24)
    median = survival.median_lifetime(overall)
    median = median["median"] if isinstance(median, dict) else median
    median_text = (
        f"half of customers have churned by month {median:.0f}"
        if median is not None
        else "more than half of customers are still active at the longest tenure observed, so the "
        "median lifetime is not reached yet"
    )
    sentences = [
        f"**{pct(km_12)} of customers are still active 12 months after their first payment** and "
        f"{pct(km_24)} after 24 months; {median_text}."
    ]
    at_12 = None
    if logrank is not None:
        at_12 = survival.survival_at(groups, times=(12,))
        sentences.append(
            f"By {by}, survival at 12 months ranges from {pct(at_12['survival'].min())} to "
            f"{pct(at_12['survival'].max())}. Log-rank test across {len(groups)} groups: "
            f"χ² = {logrank['test_statistic']:.1f}, p = {logrank['p_value']:.2g} — "
            + (
                "the segments' curves differ by more than chance."
                if logrank["p_value"] < 0.05
                else "no evidence that the segments' curves differ."
            )
        )
    return SurvivalSummary(
        overall,
        groups,
        by,
        logrank,
        km_12,
        km_24,
        median,
        sentences,
        [f"*Caution:* {w.message}" for w in caught],
        at_12,
    )


def fit_pooled_sbg(lifetimes: pd.DataFrame, monthly: pd.DataFrame | None, period: str = "M", min_cohort_size: int = 0):
    """The pooled shifted-beta-geometric fit: ``(pooled or None, cohort fits or None, why not or None)``.

    From the cohorts of the panel, or from a snapshot's censored durations when there is no panel
    (one pooled fit, by month: a snapshot has no signup dates).
    """
    n_churned = int(lifetimes["event"].sum())
    if n_churned < survival.MIN_GROUP_EVENTS:
        return (
            None,
            None,
            (
                f"**No projection:** {n_churned} customers churned, too few to fit the sBG model (at "
                f"least {survival.MIN_GROUP_EVENTS} are needed: the model learns how fast churn slows "
                "from the churns themselves). Lifetime values need the same fit and are left out."
            ),
        )
    if monthly is None:
        durations = retention.to_periods(lifetimes["duration"], lifetimes["event"], 1)
        return retention.ShiftedBetaGeometric().fit_censored(durations, lifetimes["event"]), None, None
    fits = retention.fit_cohorts(monthly, period=period, min_cohort_size=min_cohort_size)
    return fits["pooled"], fits, None


def describe_sbg(pooled, unit: str = "months") -> str:
    """What the pooled sBG's α and β mean for retention, in one sentence."""
    return (
        f"Pooled over all cohorts, **α = {pooled.alpha_:.2f}, β = {pooled.beta_:.2f}**: the average "
        f"customer churns with probability {pct(pooled.alpha_ / (pooled.alpha_ + pooled.beta_))} per "
        f"{unit[:-1]} at first; the retention rate rises from {pct(pooled.retention_rate(1))} in the "
        f"first {unit[:-1]} to {pct(pooled.retention_rate(8))} in the eighth, as the riskiest customers "
        "leave first."
    )


def projection_sample(projection: pd.DataFrame, n: int = 6) -> pd.DataFrame:
    """About ``n`` cohorts of a projection, evenly spread, for a readable figure."""
    shown = projection["cohort"].drop_duplicates().sort_values()
    shown = shown.iloc[:: max(1, projection["cohort"].nunique() // n)]
    return projection[projection["cohort"].isin(shown)]


def describe_projection(projection: pd.DataFrame, holdout: int, unit: str = "months") -> str | None:
    """How far the projection missed the held-out periods (None without held-out actuals)."""
    tail = projection.dropna(subset=["actual"])
    tail = tail[tail["held_out"]]
    if not len(tail):
        return None
    error = (tail["fitted"] - tail["actual"]).abs()
    return (
        f"On the {holdout} held-out {unit} of each cohort, the projection missed actual "
        f"survival by {pct(error.mean())} on average (at most {pct(error.max())}): "
        + (
            "close enough to trust the projection's shape."
            if error.mean() < 0.05
            else "treat the projection with caution."
        )
    )


def annual_contract_caveat(subscriptions: pd.DataFrame) -> str | None:
    """A caveat when more than a fifth of accounts are on annual contracts (survival falls in steps)."""
    if "billing_period_months" not in subscriptions:
        return None
    annual_share = (subscriptions.drop_duplicates("account_id")["billing_period_months"] >= 12).mean()
    if annual_share <= 0.2:
        return None
    return (
        f"*Caveat:* {pct(annual_share, 0)} of accounts are on annual contracts and can only "
        "churn at renewal, so their survival falls in steps every 12 months; the sBG model "
        "assumes one renewal decision per period and smooths those steps."
    )


def describe_lifetime_value(
    values: pd.DataFrame,
    monthly: pd.DataFrame,
    pooled,
    *,
    margin: float,
    discount_rate: float,
    period_months: int = 1,
    currency: str = "USD",
) -> str:
    """The lifetime value of a customer paying today's average MRR, and its spread across cohorts."""
    avg_mrr = active_in_month(monthly)["mrr"].mean()
    clv_new = retention.lifetime_value(avg_mrr, margin, pooled, discount_rate, period_months=period_months)
    return (
        f"A customer paying the current average of {money(avg_mrr, currency)} a month is worth about "
        f"**{money(clv_new, currency)}** in discounted gross margin over its expected lifetime "
        f"(pooled sBG, {pct(discount_rate, 0)} a year, {pct(margin, 0)} margin). "
        + (
            f"By cohort, the residual value of an active customer ranges from {money(values['clv'].min(), currency)} "
            f"({values.loc[values['clv'].idxmin(), 'cohort']}) to {money(values['clv'].max(), currency)} "
            f"({values.loc[values['clv'].idxmax(), 'cohort']}); across cohorts, value and MRR per "
            f"customer correlate at {values['clv'].corr(values['mrr_mean']):.2f}."
            if len(values) >= 3
            else f"With {len(values)} cohort{'s' * (len(values) != 1)}, there is no spread across cohorts to compare."
        )
    )


def next_steps(kept: dict | None, surv: SurvivalSummary, snapshot: bool = False) -> str:
    """What to look at next, as a Markdown list, from the retention figures."""
    if snapshot:
        notes = [
            "Revenue retention needs subscriptions with dates and MRR: ask for the billing export.",
            "Notebook 02 (churn drivers) can work from this table: which attributes go with churn.",
        ]
        return "\n".join(f"- {n}" for n in notes)
    notes = []
    if kept is None:
        notes.append(
            "Year-on-year revenue retention (NRR, GRR) needs 13 months of history: rerun the "
            "audit when the book has them."
        )
    elif kept["nrr"] < 1:
        notes.append(
            f"NRR is {pct(kept['nrr'])}: the base shrinks without new sales. Notebook 04 "
            "(expansion) shows who is ready to grow."
        )
    else:
        notes.append(
            f"NRR is {pct(kept['nrr'])}: expansion carries the book; check that it is not "
            "concentrated in a few accounts."
        )
    if kept is not None and kept["grr"] < 0.9:
        notes.append(
            f"GRR is {pct(kept['grr'])}, below the 90% that B2B companies commonly aim for: "
            "notebook 02 (churn drivers) shows why customers leave and who is at risk now."
        )
    if surv.logrank is not None and surv.logrank["p_value"] < 0.05:
        worst = surv.at_12_by_group["survival"].idxmin()
        notes.append(
            f"Survival differs by {surv.by}; the weakest group at 12 months is {worst} "
            f"({pct(surv.at_12_by_group['survival'].min())})."
        )
    notes.append(
        "Whether customer-success work changes any of this is notebook 03's question "
        "(adjusted for which accounts get attention, not a naive comparison)."
    )
    return "\n".join(f"- {n}" for n in notes)


def recorded_results(
    surv: SurvivalSummary,
    pooled,
    lifetimes: pd.DataFrame,
    *,
    headline: Headline | None = None,
    book: dict | None = None,
) -> dict:
    """Every key figure notebook 01 records for the audit (names as the README lists them)."""
    out = dict(
        km_survival_12=surv.km_12,
        km_survival_24=surv.km_24,
        median_lifetime_months=surv.median,
        sbg_alpha=pooled.alpha_ if pooled is not None else None,
        sbg_beta=pooled.beta_ if pooled is not None else None,
        n_accounts=len(lifetimes),
    )
    if headline is None:  # snapshot: no revenue, the active customers are those not churned
        out.update(n_active=int((lifetimes["event"] == 0).sum()))
        return out
    kept = headline.kept
    out.update(
        logo_churn_monthly=headline.logo["monthly"],
        logo_churn_annual=headline.logo["annual"],
        **{
            key: (kept[part] if kept is not None else None)
            for key, part in (
                ("grr_12m", "grr"),
                ("nrr_12m", "nrr"),
                ("headwind_12m", "headwind"),
                ("tailwind_12m", "tailwind"),
            )
        },
        n_accounts=book["n_accounts"],
        n_active=book["n_active"],
        mrr_end=book["mrr_end"],
    )
    return out
