"""Workshop scenarios: presets of the synthetic generator, each a small book with a story and its truth.

Each scenario is a :class:`~cslab.data.synth.BookParams` preset with a story told in plain words and
the bands its *realised* metrics land in, measured with the kit's own functions on the written
tables (the same definitions the audit uses):

==================== ===================================================================================
``leaky-smb``         SMB-heavy, monthly contracts: monthly logo churn at least 3%, NRR below 90%
``expansion-led``     enterprise-leaning, annual contracts that grow: NRR at least 110%, monthly logo
                      churn at most 1%
``under-invested-cs`` a thin CS team: CS cost 7% of revenue or less (near 5%), onboarding reaches at most
                      a quarter of new accounts
``hidden-risk``       NRR at or above 100% while the latest signup cohorts churn faster in their first
                      months (at least 1.5 times the cohorts of the year before)
==================== ===================================================================================

``truth.json`` of a scenario book carries, besides the generator's planted truth, a ``scenario``
entry: its name, title, story, the bands, the realised metrics and whether each lands in its band.

Examples
--------
>>> sorted(SCENARIOS)
['expansion-led', 'hidden-risk', 'leaky-smb', 'under-invested-cs']
>>> book = write_scenario("leaky-smb", "/tmp/leaky", n_accounts=600)  # doctest: +SKIP
>>> book.truth["scenario"]["realised"]["logo_churn_monthly"]  # doctest: +SKIP
0.037
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cslab.data.synth import BookParams, SyntheticBook, generate

__all__ = [
    "Scenario",
    "SCENARIOS",
    "SCENARIO_ACCOUNTS",
    "SCENARIO_MONTHS",
    "generate_scenario",
    "write_scenario",
    "realised_metrics",
    "early_churn_by_cohort",
    "in_band",
]

#: Default size of a scenario book: small enough for a laptop, large enough for every notebook.
SCENARIO_ACCOUNTS = 800
SCENARIO_MONTHS = 36


@dataclass(frozen=True)
class Scenario:
    """A preset of the generator with its story and the bands its realised metrics fall in.

    ``bands`` maps a key of :func:`realised_metrics` to ``(low, high)`` (either may be None), both
    inclusive. ``accounts``: the default size of its book.
    """

    name: str
    title: str
    story: str
    params: BookParams
    bands: dict = field(default_factory=dict)
    questions: tuple[str, ...] = ()
    accounts: int = SCENARIO_ACCOUNTS


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario(
            "leaky-smb",
            "A leaky SMB book",
            "Nine customers in ten are small businesses (no enterprise at all) on monthly contracts. They sign up "
            "easily and leave easily: more than 3% of customers leave every month, so about a third are gone within "
            "a year, and the few who grow cannot make up for it. Net revenue retention stays well below "
            "90%: the book must replace a large part of its revenue every year just to stand still.",
            BookParams(
                segment_share=(0.92, 0.08, 0.0),
                churn_base=(-3.2, -3.6, -4.1),
                annual_share=(0.05, 0.3, 0.8),
                expansion_base=(-5.5, -5.2, -4.9),
            ),
            bands={"logo_churn_monthly": (0.03, None), "nrr_12m": (None, 0.90)},
            questions=(
                "What would halving monthly churn do to annual churn?",
                "Is this a CS problem, a product problem or a targeting problem?",
            ),
        ),
        Scenario(
            "expansion-led",
            "An expansion-led enterprise book",
            "Mid-market and enterprise customers on annual contracts: fewer than 1% leave in a typical "
            "month, and those who stay add seats, upgrade and buy add-ons. Net revenue retention is "
            "about 115%: last year's customers pay more this year than they did then, so the book grows "
            "even without new customers. Gross revenue retention stays below 100%, as it always does: "
            "the growth is expansion, not the absence of churn.",
            BookParams(
                segment_share=(0.3, 0.45, 0.25),
                churn_base=(-5.4, -5.6, -5.8),
                annual_share=(0.4, 0.8, 0.95),
                expansion_base=(-3.4, -3.2, -3.0),
                accounts_per_csm=10,
            ),
            bands={"nrr_12m": (1.10, None), "logo_churn_monthly": (None, 0.01)},
            questions=(
                "GRR is below 100% here too: where does NRR above 100% come from?",
                "Which accounts would you give your best CSMs?",
            ),
            # so few churn that 800 accounts leave notebook 02 fewer than 30 churns to learn from
            accounts=1600,
        ),
        Scenario(
            "under-invested-cs",
            "An under-invested CS team",
            "The same kind of book as the demo, served by a thin customer-success team: CS costs about 5% "
            "of recurring revenue (10-25% is typical in SaaS), few accounts have a named CSM, and "
            "onboarding reaches fewer than a quarter of new customers. Churn is higher and net revenue "
            "retention lower than a well-served book of the same customers would show.",
            BookParams(csm_share=(0.05, 0.3, 0.6), accounts_per_csm=30, onboarding_rate=(0.05, 0.15, 0.3)),
            bands={"cs_cost_share": (None, 0.07), "onboarding_share": (None, 0.25)},
            questions=(
                "What does CS cost per customer here, and what would 15% of revenue buy?",
                "Which programme would you fund first, and how would you know it worked?",
            ),
        ),
        Scenario(
            "hidden-risk",
            "Hidden risk behind a healthy NRR",
            "The headline looks fine: net revenue retention is above 100% because the older customers "
            "expand. But every recent signup cohort churns faster than the one before in its first "
            "months (a change of product, market or sales targeting), and those cohorts are not in the "
            "NRR yet: it follows the customers of a year ago. The cohort triangle and the early churn of "
            "the latest cohorts show what the headline hides.",
            BookParams(
                segment_share=(0.4, 0.4, 0.2),
                churn_base=(-5.0, -5.2, -5.4),
                expansion_base=(-3.4, -3.1, -2.8),
                cohort_drift=0.25,
                drift_from=0.4,
                accounts_per_csm=12,
            ),
            bands={"nrr_12m": (1.0, None), "early_churn_trend": (1.5, None)},
            questions=(
                "Which number on the audit's index page would have warned you?",
                "How long before this shows up in NRR?",
            ),
        ),
    ]
}

#: What each realised metric is, for truth.json and the README.
METRIC_MEANINGS = {
    "logo_churn_monthly": "monthly logo churn pooled over the last 12 months (metrics.logo_churn_rate)",
    "logo_churn_annual": "1 - (1 - monthly)^12",
    "nrr_12m": "net revenue retention of the accounts active 12 months before the end (metrics.revenue_retention)",
    "grr_12m": "gross revenue retention, same cohort, each account capped at 100%",
    "cs_cost_share": "CS cost of the last 12 months / recurring revenue billed in them (roi.cs_cost, roi.revenue)",
    "onboarding_share": "share of the accounts that signed up in the last 12 months given onboarding",
    "early_churn_latest": "monthly churn over the first 6 months of the latest 6 signup cohorts that reached age 6",
    "early_churn_before": "the same, for the 12 signup cohorts before them",
    "early_churn_trend": "early_churn_latest / early_churn_before: above 1, newer customers leave faster",
}


def early_churn_by_cohort(panel: pd.DataFrame, age: int = 6, group: int = 6) -> pd.DataFrame:
    """Monthly-equivalent churn over each signup cohort's first ``age`` months, cohorts in groups.

    For a group of monthly signup cohorts, ``retained`` = customers active at age ``age`` / the
    cohorts' customers, and ``monthly_churn`` = 1 − retained^(1/age): the constant monthly churn
    that would leave that many. Only cohorts that reached age ``age`` by the panel's last month count;
    groups of ``group`` cohorts are cut from the latest back (the earliest group may be shorter).

    Parameters
    ----------
    panel : DataFrame
        The monthly account panel.
    age : int, default 6
        Months since first payment at which retention is read.
    group : int, default 6
        Monthly cohorts per group.

    Returns
    -------
    DataFrame
        One row per group, earliest first: ``first_cohort``, ``last_cohort``, ``customers``,
        ``retained`` and ``monthly_churn``.

    Examples
    --------
    >>> early_churn_by_cohort(cslab.panel(cslab.load("data/demo")))  # doctest: +SKIP
    """
    from cslab import metrics

    table = metrics.cohort_table(panel, period="M", kind="logo", values="count")
    if age not in table.columns:
        return pd.DataFrame(columns=["first_cohort", "last_cohort", "customers", "retained", "monthly_churn"])
    sizes = pd.Series(table.attrs["cohort_sizes"]).reindex(table.index)
    reached = table[age].notna()
    kept, sizes = table.loc[reached, age], sizes[reached]
    from_latest = (len(kept) - 1 - np.arange(len(kept))) // group  # 0 = the latest group
    key = from_latest.max(initial=0) - from_latest  # 0 = the earliest group
    labels = kept.index.to_series()
    out = pd.DataFrame(
        {
            "first_cohort": labels.groupby(key).first(),
            "last_cohort": labels.groupby(key).last(),
            "customers": sizes.groupby(key).sum().astype(int),
            "retained": kept.groupby(key).sum() / sizes.groupby(key).sum(),
        }
    ).reset_index(drop=True)
    out["monthly_churn"] = 1 - out["retained"] ** (1 / age)
    return out


def realised_metrics(data, panel: pd.DataFrame) -> dict:
    """The metrics a scenario's bands are stated in, measured on a book with the kit's functions.

    See ``METRIC_MEANINGS`` for each key. Every rate is over the 12 months up to the panel's last
    month.

    Examples
    --------
    >>> data = cslab.load("/tmp/leaky")  # doctest: +SKIP
    >>> realised_metrics(data, cslab.panel(data))["nrr_12m"]  # doctest: +SKIP
    """
    from cslab import metrics, roi

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small-sample notes do not change the figures
        logo = metrics.logo_churn_rate(panel, months=12)
        kept = metrics.revenue_retention(panel, months=12)
        as_of = pd.Timestamp(panel.attrs["as_of"])
        start = as_of - pd.DateOffset(months=12)
        billed = roi.revenue(panel, start, as_of)
        cost = roi.cs_cost(data, start, as_of)["total"] if data.cs_costs is not None else float("nan")
        groups = early_churn_by_cohort(panel)
    onboarding = float("nan")
    if data.cs_activities is not None and data.accounts is not None and "signup_date" in data.accounts:
        recent = data.accounts.loc[data.accounts["signup_date"] > start, "account_id"]
        acts = data.cs_activities
        onboarded = acts.loc[acts["activity_type"].eq("onboarding"), "account_id"]
        onboarding = float(recent.isin(onboarded).mean()) if len(recent) else float("nan")
    latest = float(groups["monthly_churn"].iloc[-1]) if len(groups) else float("nan")
    before, nan = groups.iloc[-3:-1], float("nan")  # the 12 cohorts before the latest 6
    kept_before = (before["retained"] * before["customers"]).sum() / before["customers"].sum() if len(before) else nan
    before = float(1 - kept_before ** (1 / 6)) if len(groups) > 1 else nan
    return {
        "logo_churn_monthly": logo["monthly"],
        "logo_churn_annual": logo["annual"],
        "nrr_12m": kept["nrr"],
        "grr_12m": kept["grr"],
        "cs_cost_share": cost / billed if billed else float("nan"),
        "onboarding_share": onboarding,
        "early_churn_latest": latest,
        "early_churn_before": before,
        "early_churn_trend": latest / before if before > 0 else float("nan"),
    }


def in_band(value: float, band: tuple) -> bool:
    """Whether ``value`` lies in ``(low, high)``, bounds inclusive, None meaning open.

    Examples
    --------
    >>> in_band(0.035, (0.03, None)), in_band(0.95, (None, 0.90))
    (True, False)
    """
    low, high = band
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return (low is None or value >= low) and (high is None or value <= high)


def _scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None


def generate_scenario(
    name: str, n_accounts: int | None = None, n_months: int = SCENARIO_MONTHS, seed: int = 42
) -> SyntheticBook:
    """Generate a scenario's book (tables and planted truth; the realised metrics need the written
    tables, see :func:`write_scenario`). ``n_accounts``: default the scenario's own size (800;
    expansion-led 1,600).

    Examples
    --------
    >>> book = generate_scenario("expansion-led", n_accounts=300, n_months=24, seed=1)  # doctest: +SKIP
    >>> book.truth["scenario"]["name"]  # doctest: +SKIP
    'expansion-led'
    """
    scenario = _scenario(name)
    book = generate(n_accounts or scenario.accounts, n_months, seed, params=scenario.params)
    book.truth["scenario"] = {
        "name": scenario.name,
        "title": scenario.title,
        "story": scenario.story,
        "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(scenario.params).items()},
        "bands": {k: list(v) for k, v in scenario.bands.items()},
        "meanings": {k: METRIC_MEANINGS[k] for k in METRIC_MEANINGS},
        "questions": list(scenario.questions),
    }
    return book


def write_scenario(
    name: str, out_dir: str | Path, n_accounts: int | None = None, n_months: int = SCENARIO_MONTHS, seed: int = 42
) -> SyntheticBook:
    """Generate a scenario's book, write it, measure it, and add what was measured to ``truth.json``.

    ``truth["scenario"]["realised"]`` holds :func:`realised_metrics` of the written book and
    ``truth["scenario"]["in_band"]`` whether each banded metric landed in its band.

    Examples
    --------
    >>> book = write_scenario("hidden-risk", "/tmp/hidden", n_accounts=600, seed=3)  # doctest: +SKIP
    >>> book.truth["scenario"]["in_band"]  # doctest: +SKIP
    {'nrr_12m': True, 'early_churn_trend': True}
    """
    import cslab

    book = generate_scenario(name, n_accounts, n_months, seed)
    folder = book.write(out_dir)
    data = cslab.load(folder)
    realised = realised_metrics(data, cslab.panel(data))
    story = book.truth["scenario"]
    story["realised"] = {
        k: (None if isinstance(v, float) and math.isnan(v) else round(float(v), 6)) for k, v in realised.items()
    }
    story["in_band"] = {k: in_band(realised[k], tuple(v)) for k, v in SCENARIOS[name].bands.items()}
    (Path(folder) / "truth.json").write_text(json.dumps(book.truth, indent=2))
    return book
