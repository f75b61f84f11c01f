"""What the expansion report (notebook 04) shows: NRR's parts, capacity, whitespace, the pipeline.

The analyses live in :mod:`cslab.expansion` (and the modules it re-exports); this module turns them
into what the report's cells display, so each cell is one call (and each call has a unit test). The
churn model behind the health bands is the churn-drivers report's when it left one in the audit's
working folder for the same data and design (:func:`churn_health`). Nothing here reads the data
files; figures are drawn with :mod:`cslab.plots` on axes it creates and returns.

Examples
--------
>>> from cslab.session import start  # doctest: +SKIP
>>> nb = start(globals(), "04_expansion_opportunity")  # doctest: +SKIP
>>> nrr = nrr_view(nb.monthly)  # doctest: +SKIP
>>> nrr["sentence"]  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import pandas as pd

from cslab import churn_report, drivers, expansion, features
from cslab.data.panel import label_missing
from cslab.features import label_of
from cslab.notebook import money, pct

__all__ = [
    "nrr_view",
    "NRR_FORMAT",
    "UTILISATION_FORMAT",
    "utilisation_view",
    "whitespace_view",
    "ExpansionStudy",
    "prepare",
    "plot_model",
    "model_sentence",
    "churn_health",
    "rank_pipeline",
    "pipeline_figures",
    "pipeline_sentences",
    "quarter_steps",
    "nrr_figures",
    "PIPELINE_LABELS",
    "PIPELINE_FORMAT",
]

_RATES = {
    "nrr": "NRR",
    "expansion_rate": "expansion",
    "contraction_rate": "contraction",
    "churn_rate": "churn",
    "reactivation_rate": "reactivation",
}
#: Display formats of :func:`nrr_view`'s ``shown`` table.
NRR_FORMAT = {**{c: "{:.1%}" for c in _RATES.values()}, "starting MRR": "{:,.0f}", "accounts": "{:,}"}
#: Display formats of :func:`cslab.expansion.seat_utilisation`.
UTILISATION_FORMAT = {c: "{:.0%}" for c in ["mean", "p10", "p25", "median", "p75", "p90", "share_at_capacity"]}
_GROUPS = ("segment", "cohort_year", "csm_id")


def nrr_view(monthly: pd.DataFrame) -> dict:
    """NRR's parts over the last 12 months, by segment, signup year and CSM, with sentences.

    Returns
    -------
    dict
        ``parts`` (:func:`cslab.expansion.nrr_components` at every month), ``latest`` (its last row,
        None when the book is shorter than 13 months), ``sentence``, ``by_group`` (the latest parts
        for each group of each breakdown, ``by`` naming the breakdown; empty without ``latest``),
        ``shown`` (the segment and signup-year rows labelled for display) and ``csm_sentence``
        (the spread of NRR across CSMs; empty without named CSMs).

    Examples
    --------
    >>> view = nrr_view(panel)  # doctest: +SKIP
    >>> view["latest"]["nrr"]  # doctest: +SKIP
    """
    parts = expansion.nrr_components(monthly)
    latest = parts.iloc[-1] if len(parts) else None
    view = {"parts": parts, "latest": latest, "by_group": pd.DataFrame(), "shown": pd.DataFrame(), "csm_sentence": ""}
    if latest is None:
        view["sentence"] = (
            f"*Short history:* the book covers {monthly['month'].nunique()} months; NRR and its parts need at "
            "least 13 (a year of history behind the starting cohort), so they are not reported. Utilisation, "
            "whitespace and the expansion model below use what there is."
        )
        return view
    needed = 1 - latest["nrr"] + latest["expansion_rate"]
    view["sentence"] = (
        f"In the 12 months to {latest['month']:%B %Y}, **NRR was {pct(latest['nrr'])}** = 100% "
        f"+ {pct(latest['expansion_rate'])} expansion − {pct(latest['contraction_rate'])} contraction "
        f"− {pct(latest['churn_rate'])} churn + {pct(latest['reactivation_rate'])} reactivation. "
        + (
            "Expansion more than covered the losses"
            if latest["nrr"] >= 1
            else f"To reach 100% without losing less, expansion would have to reach {pct(needed)} of starting "
            f"revenue, {needed / latest['expansion_rate']:.1f} times what it is"
            if latest["expansion_rate"] > 0
            else "There was no expansion at all."
        )
        + "."
    )
    breakdown = []
    for by in _GROUPS:
        if by in monthly or by in expansion.COHORT_COLUMNS:
            table = expansion.nrr_components(monthly, by=by)
            table = table[table["month"].eq(table["month"].max())].set_index(by)
            breakdown.append(table.drop(columns=["month", "start_month"]).assign(by=by))
    by_group = pd.concat(breakdown) if breakdown else pd.DataFrame()
    view["by_group"] = by_group
    shown = by_group[by_group["by"].ne("csm_id")] if len(by_group) else by_group
    names = {"segment": "segment", "cohort_year": "signup year"}
    shown.index = [f"{names.get(b, b)}: {g}" for g, b in zip(shown.index, shown["by"], strict=True)]
    view["shown"] = shown.drop(columns=["by", "grr"]).rename(
        columns={**_RATES, "start_mrr": "starting MRR", "n_accounts": "accounts"}
    )
    if "csm_id" in set(by_group.get("by", [])):
        named = by_group[by_group["by"].eq("csm_id")].drop(index=expansion.NO_CSM, errors="ignore")
        if len(named):
            view["csm_sentence"] = (
                f"By CSM (each CSM's book of a year ago), NRR ranges from {pct(named['nrr'].min())} to "
                f"{pct(named['nrr'].max())}; a book holds a median of {named['n_accounts'].median():.0f} "
                "accounts, so single churns move these figures: read them as conversation starters, not "
                "rankings. The full table is in `tables/nrr_components_by_group.csv`."
            )
    return view


def nrr_figures(latest: pd.Series | None) -> dict:
    """The recorded 12-month NRR and its parts (None each when the book is too short).

    Examples
    --------
    >>> nrr_figures(None)["nrr_12m"] is None
    True
    """
    return {
        f"{part}_12m": float(latest[column]) if latest is not None else None
        for part, column in (
            ("nrr", "nrr"),
            ("expansion_rate", "expansion_rate"),
            ("contraction_rate", "contraction_rate"),
            ("churn_rate", "churn_rate"),
            ("reactivation_rate", "reactivation_rate"),
        )
    }


def utilisation_view(monthly: pd.DataFrame, threshold: float) -> dict:
    """Seat utilisation of today's accounts: per account, by segment, the share at capacity, a sentence.

    Returns
    -------
    dict
        ``capacity`` (:func:`cslab.expansion.at_capacity`), ``utilisation``
        (:func:`cslab.expansion.seat_utilisation` by segment when known), ``measured`` (any account
        with seats and active users), ``share_at_capacity`` (None when not measured) and
        ``sentence``.

    Examples
    --------
    >>> view = utilisation_view(panel, 0.9)  # doctest: +SKIP
    """
    capacity = expansion.at_capacity(monthly, threshold=threshold)
    utilisation = expansion.seat_utilisation(
        monthly, threshold=threshold, by="segment" if "segment" in monthly else None
    )
    measured = bool(capacity["seat_utilisation"].notna().any())
    view = {"capacity": capacity, "utilisation": utilisation, "measured": measured, "share_at_capacity": None}
    if measured:
        share = float(utilisation.loc["all", "share_at_capacity"])
        low = float((capacity["seat_utilisation"] < 0.5).mean())
        view["share_at_capacity"] = share
        view["sentence"] = (
            f"**{pct(share)} of active accounts are at capacity** "
            f"({int(utilisation.loc['all', 'n_at_capacity']):,} accounts); {pct(low)} use fewer "
            "than half their seats."
        )
    else:
        view["sentence"] = (
            "No seats or no usage metric in the active-users role: utilisation cannot be measured (the "
            "subscriptions' `seats` and a metric such as WAU, MAU or active seats would make it possible; "
            "set its role with `-p metric_roles=active_users=METRIC` when its name does not say it)."
        )
    return view


def whitespace_view(data, monthly: pd.DataFrame) -> dict:
    """Product adoption by segment, each account's whitespace, and the most promising gap.

    Returns
    -------
    dict
        ``adoption`` (share of today's accounts running each product, by segment; None without a
        product or plan column), ``gaps`` and ``summary`` (:func:`cslab.expansion.whitespace`; an
        empty table and None without products), ``top_gap`` (the product with the most expected
        adopters among its gaps, None without gaps) and ``sentence`` ("" when there is nothing to
        say).

    Examples
    --------
    >>> view = whitespace_view(data, panel)  # doctest: +SKIP
    >>> view["top_gap"]  # doctest: +SKIP
    """
    view = {"adoption": None, "gaps": pd.DataFrame(), "summary": None, "top_gap": None, "sentence": ""}
    try:
        owned = expansion.product_matrix(data, monthly.attrs.get("as_of"))
    except ValueError as error:
        view["sentence"] = f"No whitespace: {error}."
        return view
    last = monthly[monthly["month"].eq(monthly["month"].max()) & monthly["active"]].set_index("account_id")
    owned = owned.reindex(last.index, fill_value=False)
    groups = label_missing(last["segment"]) if "segment" in last else pd.Series("all", index=last.index)
    view["adoption"] = owned.groupby(groups).mean()
    gaps, summary = expansion.whitespace(data, monthly)
    view.update(gaps=gaps, summary=summary)
    if len(gaps):
        # the gap most likely to close: the product with the most expected adopters among its gaps
        top_gap = (
            gaps.groupby("product")["peer_adoption"].agg(["size", "mean", "sum"]).sort_values("sum", ascending=False)
        )
        best = top_gap.iloc[0]
        view["top_gap"] = top_gap.index[0]
        view["sentence"] = (
            f"The most promising gap is **{top_gap.index[0]}**: {int(best['size']):,} active accounts lack it, "
            f"and on average {pct(best['mean'])} of their peers run it."
            + (
                " Peer adoption of every product is low in this book (at most "
                f"{pct(gaps['peer_adoption'].max())}): whitespace here is thin, and seats are the likelier lever."
                if gaps["peer_adoption"].max() < 0.2
                else ""
            )
        )
    return view


@dataclass
class ExpansionStudy:
    """The expansion data set, its feasible test months, the fitted model, and why it may stop."""

    dataset: pd.DataFrame
    scoring: pd.DataFrame
    test_months: int = 0
    fitted: dict | None = None
    notes: list = field(default_factory=list)
    stop: str = ""


def prepare(session, *, horizon_months: int, test_months: int, shap_sample: int) -> ExpansionStudy:
    """Build the expansion data set, shorten the test to what the book allows, and fit the model.

    ``stop`` says why the model cannot be fitted: too few observation dates, or fewer than
    :data:`cslab.drivers.MIN_EVENTS` accounts expanding in the training period.

    Examples
    --------
    >>> study = prepare(nb, horizon_months=3, test_months=6, shap_sample=500)  # doctest: +SKIP
    >>> study.fitted["evaluation"]["auc"]  # doctest: +SKIP
    """
    dataset, scoring = features.build_dataset(
        session.data, session.monthly, horizon_months=horizon_months, target="expansion"
    )
    study = ExpansionStudy(dataset, scoring)
    study.test_months = months = drivers.feasible_test_months(dataset, test_months, horizon_months)
    if months == 0:
        study.stop = (
            f"{dataset['observation_date'].nunique() if len(dataset) else 0} observation dates with a "
            f"fully observed {horizon_months}-month label: too few to train on earlier months and test "
            f"on later ones; at least {horizon_months + 2} are needed. NRR, utilisation and whitespace "
            "above still hold"
        )
        return study
    if months < test_months:
        study.notes.append(
            f"*Short history:* {months} test month{'s' if months != 1 else ''} instead of {test_months}."
        )
    train, _ = drivers.time_split(dataset, test_months=months, horizon_months=horizon_months)
    expanded = int(train.loc[train["label"].eq(1), "account_id"].nunique())
    if expanded < drivers.MIN_EVENTS:
        study.stop = (
            f"{expanded} accounts expanded in the training period: too few to model who will expand; "
            f"at least {drivers.MIN_EVENTS} are needed. NRR, utilisation and whitespace above still hold"
        )
        return study
    study.fitted = expansion.fit_expansion(
        dataset, test_months=months, horizon_months=horizon_months, shap_sample=shap_sample
    )
    return study


def plot_model(fitted: dict):
    """The expansion model's calibration curve beside its SHAP importance."""
    import matplotlib.pyplot as plt

    from cslab import plots

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), gridspec_kw={"width_ratios": [1, 1.4]})
    plots.plot_calibration({"trees": fitted["evaluation"]["calibration"]}, ax=axes[0], event="expansion")
    plots.plot_importance(
        fitted["importance"].rename(index=label_of), ax=axes[1], top=12, title="What drives expansion (SHAP)"
    )
    fig.tight_layout()
    return fig


def model_sentence(study: ExpansionStudy, horizon_months: int) -> str:
    """How often accounts expanded, and how well the model ranks them on the test months."""
    ev, dataset = study.fitted["evaluation"], study.dataset
    return (
        f"{len(dataset):,} observations, **{pct(dataset['label'].mean())} expanded within {horizon_months} "
        f"months**. On the {len(study.fitted['test']):,} test observations the model reaches **ROC AUC "
        f"{ev['auc']:.3f}** and a top-decile lift of {ev['top_decile_lift']:.1f} (the 10% highest scores "
        f"expand {ev['top_decile_lift']:.1f} times as often as average); calibration error "
        f"{pct(ev['calibration_error'])}. The strongest signals: "
        f"{', '.join(label_of(f) for f in study.fitted['importance'].index[:5])}."
    )


def churn_health(session, *, test_months: int, bands, work_dir: str = "") -> dict:
    """Each of today's accounts' churn health band, from the churn-drivers report's model when it can.

    The churn model is the one notebook 02 left in ``work_dir``
    (:func:`cslab.drivers.save_shared_model`) when it was fitted on the same data, analysis date and
    design (horizon, test months, one observation a month, no minimum tenure:
    :func:`cslab.churn_report.model_context`); otherwise it is refitted here, the same way.

    Returns
    -------
    dict
        ``band`` (Series of "red"/"yellow"/"green" indexed by account_id), ``reused`` (bool) and
        ``note`` (a sentence saying where the model comes from; "" when run alone).

    Examples
    --------
    >>> health = churn_health(nb, test_months=6, bands=(85, 95), work_dir="")  # doctest: +SKIP
    """
    horizon = session.params["horizon_months"]
    churn_set, churn_scoring = features.build_dataset(session.data, session.monthly, horizon_months=horizon)
    context = churn_report.model_context(session, test_months=test_months)
    model, why = drivers.load_shared_model(work_dir, "churn_model", context)
    reused = model is not None
    if reused:
        note = (
            "The health bands come from the churn model of the churn-drivers report (same data, analysis "
            "date and design), reused from this audit's working folder."
        )
    else:
        train, _ = drivers.time_split(churn_set, test_months=test_months, horizon_months=horizon)
        model = drivers.ChurnModel("trees").fit(train)
        note = f"The churn model is refitted here: {why}." if why else ""
    health = drivers.health_scores(model.predict_proba(churn_scoring), bands=tuple(bands))
    return {
        "band": pd.Series(health["band"].to_numpy(), index=churn_scoring["account_id"]),
        "reused": reused,
        "note": note,
    }


#: Column labels of the pipeline table as displayed.
PIPELINE_LABELS = {
    "arr": "ARR",
    "relative_uplift": "uplift / ARR",
    "expected_uplift_arr": "uplift ARR",
    "expected_expansion_arr": "expected ARR",
    "health_band": "health",
    "whitespace_products": "whitespace",
    "reasons": "why (top three)",
}
#: Display formats of the labelled pipeline table.
PIPELINE_FORMAT = {
    "ARR": "{:,.0f}",
    "probability": "{:.0%}",
    "uplift / ARR": "{:.1%}",
    "uplift ARR": "{:,.0f}",
    "expected ARR": "{:,.0f}",
}
_SHOWN = (
    "account_id",
    "name",
    "segment",
    "arr",
    "probability",
    "relative_uplift",
    "expected_uplift_arr",
    "expected_expansion_arr",
    "health_band",
    "action",
    "reasons",
    "whitespace_products",
)


def rank_pipeline(
    session,
    study: ExpansionStudy,
    band: pd.Series,
    whitespace: pd.Series | None,
    *,
    capacity_threshold: float,
    min_probability: float,
    shap_sample: int,
    shown: int = 15,
) -> dict:
    """The ranked pipeline: every active account's expected expansion ARR, action and reasons.

    Reasons (:func:`cslab.expansion.expansion_reasons`) are given for the ``shap_sample`` accounts
    at the top, against their features at the latest observation date.

    Returns
    -------
    dict
        ``table`` (:func:`cslab.expansion.opportunities` with reasons), ``uplift``
        (:func:`cslab.expansion.expected_uplift`), ``by_band`` (expected expansion ARR and accounts
        per health band) and ``shown`` (the first ``shown`` rows, labelled for display).

    Examples
    --------
    >>> ranked = rank_pipeline(nb, study, health["band"], ws["summary"], capacity_threshold=0.9,
    ...                        min_probability=0.15, shap_sample=500)  # doctest: +SKIP
    """
    model, scoring, dataset = study.fitted["model"], study.scoring, study.dataset
    uplift = expansion.expected_uplift(session.monthly, threshold=capacity_threshold)
    table = expansion.opportunities(
        scoring, model.predict_proba(scoring), uplift, band, whitespace=whitespace, min_probability=min_probability
    )
    to_explain = scoring.set_index("account_id").loc[table["account_id"].head(shap_sample)].reset_index()
    previous = dataset[dataset["observation_date"].eq(dataset["observation_date"].max())]
    why = expansion.expansion_reasons(model, to_explain, previous=previous)
    table["reasons"] = table["account_id"].map(pd.Series(why.to_numpy(), index=to_explain["account_id"])).fillna("")
    by_band = table.groupby("health_band").agg(
        expected_expansion_arr=("expected_expansion_arr", "sum"), accounts=("account_id", "size")
    )
    top = table.head(shown)
    columns = [c for c in _SHOWN if c in top and top[c].astype(str).str.len().gt(0).any()]
    return {"table": table, "uplift": uplift, "by_band": by_band, "shown": top[columns].rename(columns=PIPELINE_LABELS)}


def pipeline_figures(table: pd.DataFrame) -> dict:
    """The recorded pipeline figures: expected expansion ARR in total, on green, healthy and red
    accounts, the ARR to stabilise first, and the accounts to expand and to stabilise.

    The total counts every account, red ones included: it is not a headline; the pipeline is the
    healthy (green and yellow) accounts' part.

    Examples
    --------
    >>> t = pd.DataFrame({"expected_expansion_arr": [30.0, 20.0, 10.0], "arr": [100.0, 200.0, 50.0],
    ...                   "health_band": ["green", "red", "yellow"], "action": ["expand", "x", "nurture"]})
    >>> f = pipeline_figures(t)
    >>> f["pipeline_expected_arr_healthy"], f["pipeline_expected_arr_red"], f["n_opportunities"]
    (40.0, 20.0, 1)
    """
    red, healthy = table[table["health_band"].eq("red")], table[table["health_band"].ne("red")]
    green = table.loc[table["health_band"].eq("green"), "expected_expansion_arr"]
    return {
        "pipeline_expected_arr": float(table["expected_expansion_arr"].sum()),
        "pipeline_expected_arr_green": float(green.sum()) if len(green) else 0.0,
        "pipeline_expected_arr_healthy": float(healthy["expected_expansion_arr"].sum()),
        "pipeline_expected_arr_red": float(red["expected_expansion_arr"].sum()),
        "arr_stabilise_first": float(red["arr"].sum()),
        "n_opportunities": int(table["action"].eq("expand").sum()),
        "n_stabilise_first": len(red),
    }


def pipeline_sentences(
    ranked: dict, *, horizon_months: int, min_probability: float, currency: str = "USD", shown: int = 15
) -> list[str]:
    """What the pipeline holds, what sits apart on red accounts, and how the uplift scales with ARR."""
    table, uplift, by_band = ranked["table"], ranked["uplift"], ranked["by_band"]
    usd = partial(money, currency=currency)
    figures = pipeline_figures(table)
    healthy = table[table["health_band"].ne("red")]
    to_expand = table[table["action"].eq("expand")]
    out = [
        f"**Pipeline to expand: {usd(figures['pipeline_expected_arr_healthy'])} of expected expansion ARR over the "
        f"next {horizon_months} months** across {len(healthy):,} green and yellow accounts (green "
        f"{usd(by_band['expected_expansion_arr'].get('green', 0))}, yellow "
        f"{usd(by_band['expected_expansion_arr'].get('yellow', 0))}); **{len(to_expand):,} of them** have at least "
        f"a {pct(min_probability, 0)} chance of expanding ({usd(to_expand['expected_expansion_arr'].sum())} expected).",
        f"**Apart, to stabilise first: {figures['n_stabilise_first']:,} red accounts holding "
        f"{usd(figures['arr_stabilise_first'])} of current ARR.** They are not pushed to expand, and the "
        f"{usd(figures['pipeline_expected_arr_red'])} of expansion their scores would suggest is not counted "
        "in the pipeline. The full list is in `tables/expansion_opportunities.csv`.",
    ]
    sized = uplift[uplift["relative_uplift"].notna()]
    if len(sized):
        top = table.head(shown)
        out.append(
            f"The uplift scales with each account's ARR: comparable expansions added a median "
            f"{pct(sized['relative_uplift'].median())} of the account's MRR (from "
            f"{pct(sized['relative_uplift'].min())} to {pct(sized['relative_uplift'].max())} across segments, "
            f"plans and seat caps), so among the {shown} "
            f"accounts at the top of the list the uplift runs from {usd(top['expected_uplift_arr'].min())} to "
            f"{usd(top['expected_uplift_arr'].max())} of ARR, for accounts of {usd(top['arr'].min())} to "
            f"{usd(top['arr'].max())}."
            + (
                f" {len(uplift) - len(sized):,} accounts without MRR get the median amount of comparable expansions "
                "instead."
                if len(sized) < len(uplift)
                else ""
            )
        )
    return out


def quarter_steps(
    table: pd.DataFrame,
    *,
    measured: bool,
    top_gap: str | None,
    min_probability: float,
    currency: str = "USD",
    first: int = 20,
) -> str:
    """What to do this quarter, as a numbered list: call, offer seats, cross-sell, stabilise.

    Examples
    --------
    >>> t = pd.DataFrame({"expected_expansion_arr": [30.0, 20.0], "arr": [100.0, 200.0],
    ...                   "health_band": ["green", "red"], "action": ["expand", "stabilise before expanding"],
    ...                   "probability": [0.3, 0.4], "at_capacity": [True, False]})
    >>> print(quarter_steps(t, measured=True, top_gap=None, min_probability=0.15))
    ... # doctest: +NORMALIZE_WHITESPACE
    1. **Call the top 1 'expand' accounts** (USD 30 of expected ARR, USD 100 of current ARR): start with
    the reasons listed for each.
    2. **Offer seats to the 1 healthy accounts at capacity** (USD 100 of ARR): they cannot grow without buying.
    3. **Stabilise before expanding**: 1 red accounts, 1 of them with a high expansion score: fix adoption and
    support first (the churn-drivers report lists why each is at risk).
    """
    usd = partial(money, currency=currency)
    calls = table[table["action"].eq("expand")].head(first)
    red = table[table["health_band"].eq("red")]
    steps = [
        f"**Call the top {len(calls)} 'expand' accounts** ({usd(calls['expected_expansion_arr'].sum())} of "
        f"expected ARR, {usd(calls['arr'].sum())} of current ARR): start with the reasons listed for each."
    ]
    if measured and "at_capacity" in table:
        full_healthy = table[table["at_capacity"].eq(True) & table["health_band"].ne("red")]
        steps.append(
            f"**Offer seats to the {len(full_healthy):,} healthy accounts at capacity** "
            f"({usd(full_healthy['arr'].sum())} of ARR): they cannot grow without buying."
        )
    if top_gap is not None:
        steps.append(
            f"**Cross-sell {top_gap}** where peers already run it; the whitespace table lists "
            "the accounts and the adoption among their peers."
        )
    hot_red = red[red["probability"] >= min_probability]
    steps.append(
        f"**Stabilise before expanding**: {len(red):,} red accounts"
        + (f", {len(hot_red):,} of them with a high expansion score" if len(hot_red) else "")
        + ": fix adoption and support first (the churn-drivers report lists why each is at risk)."
    )
    return "\n".join(f"{k}. {s}" for k, s in enumerate(steps, 1))
