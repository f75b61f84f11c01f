"""What the churn-drivers report (notebook 02) shows: its data set, tables, figures and sentences.

The analyses live in :mod:`cslab.drivers` and :mod:`cslab.features`; this module turns them into
what the report's cells display, so each cell is one call (and each call has a unit test). Nothing
here reads files; figures are drawn with :mod:`cslab.plots` on axes it creates and returns.

Examples
--------
>>> from cslab.session import start  # doctest: +SKIP
>>> nb = start(globals(), "02_churn_drivers")  # doctest: +SKIP
>>> study = prepare(nb)  # doctest: +SKIP
>>> models = compare_models(study.train, study.test)  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cslab import drivers, features
from cslab.errors import StatisticalWarning
from cslab.features import label_of
from cslab.notebook import money, pct

__all__ = [
    "ChurnStudy",
    "prepare",
    "decile_spread",
    "plot_decile_spread",
    "decile_sentence",
    "ModelComparison",
    "compare_models",
    "model_table",
    "format_measure",
    "model_sentence",
    "plot_dependence_row",
    "driver_sentence",
    "impact_table",
    "cox_summary",
    "health_view",
    "at_risk_view",
    "model_context",
    "MIN_DECILE_ROWS",
]

#: Fewest observations a decile bin needs to count in a feature's spread (a bin of a few tied values
#: is no spread).
MIN_DECILE_ROWS = 30


@dataclass
class ChurnStudy:
    """The modelling data of the report: observations, today's accounts, the train/test split.

    Attributes
    ----------
    dataset, scoring, train, test : DataFrame
        :func:`cslab.features.build_dataset` (or ``snapshot_dataset``) and its split.
    test_months : int or None
        Test months the book allows (None in snapshot mode).
    numeric, categorical : list of str
        Feature columns of the training rows.
    notes : list of str
        Sentences describing the data set, in order.
    stop : str
        Why the report cannot go on (empty when it can).
    """

    dataset: pd.DataFrame
    scoring: pd.DataFrame | None = None
    train: pd.DataFrame | None = None
    test: pd.DataFrame | None = None
    test_months: int | None = None
    numeric: list = field(default_factory=list)
    categorical: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    stop: str = ""


def prepare(session) -> ChurnStudy:
    """Build the observation data set of a session and split it for testing.

    Subscription books: one observation per active account and month-end, tested on the latest
    ``test_months`` (shortened when the book is short) after a gap of one horizon. Customer
    snapshots: a stratified random quarter. ``stop`` says why the report cannot go on: too few
    observation dates, churned accounts in training, or churned observations in the test.

    Parameters
    ----------
    session : cslab.session.Session
        Of notebook 02 (its ``params``, ``data``, ``monthly``, ``screen``, ``snapshot``).

    Returns
    -------
    ChurnStudy

    Examples
    --------
    >>> study = prepare(nb)  # doctest: +SKIP
    >>> study.stop or len(study.train)  # doctest: +SKIP
    """
    p = session.params
    horizon = p["horizon_months"]
    if session.snapshot:
        dataset = features.snapshot_dataset(session.screen.apply(session.data.customers))
        train, test = drivers.stratified_split(dataset, test_size=0.25, seed=0)
        study = ChurnStudy(dataset, dataset[dataset["label"].eq(0)].copy(), train, test)
        study.notes.append(
            f"Snapshot mode: one row per customer, **{len(dataset):,} customers**, of whom "
            f"{pct(dataset['label'].mean())} churned. With no dates to order by, the models are tested on "
            "a **stratified random quarter** of the customers (not on later months, as they would be with "
            "a subscription history). The tenure column is not used as a feature: for a churned customer "
            "it is the time of churn itself."
        )
    else:
        dataset, scoring = features.build_dataset(
            session.data,
            session.monthly,
            horizon_months=horizon,
            observation_step=p["observation_step"],
            min_tenure_months=p["min_tenure_months"],
        )
        study = ChurnStudy(dataset, scoring)
        asked = p["test_months"]
        study.test_months = drivers.feasible_test_months(dataset, asked, horizon)
        if study.test_months == 0:
            n_dates = dataset["observation_date"].nunique() if len(dataset) else 0
            study.stop = (
                f"{n_dates} observation dates with a fully observed {horizon}-month label: too few "
                f"to train on earlier months and test on later ones; at least {horizon + 2} are "
                f"needed (a book of {horizon * 2 + 2} complete months or more)"
            )
            return study
        study.train, study.test = drivers.time_split(dataset, test_months=study.test_months, horizon_months=horizon)
        train, test, months = study.train, study.test, study.test_months
        if months < asked:
            study.notes.append(
                f"*Short history:* the book allows {months} test month{'s' if months != 1 else ''} "
                f"instead of {asked}; the test figures below rest on fewer observations."
            )
        step = p["observation_step"]
        study.notes.append(
            f"Every {step if step > 1 else ''} month-end from "
            f"{dataset['observation_date'].min():%B %Y} to {dataset['observation_date'].max():%B %Y}, each "
            f"account active on that date is one observation: **{len(dataset):,} observations** of "
            f"{dataset['account_id'].nunique():,} accounts. Features use only data up to the observation "
            f"date; the label says whether the account churned in the {horizon} months after it. "
            f"**{pct(dataset['label'].mean())} of observations churned within {horizon} months** "
            f"(the base rate). The models learn on observations up to {train['observation_date'].max():%B %Y} "
            f"and are tested on the {months} months from {test['observation_date'].min():%B %Y}; the "
            f"{horizon}-month gap between them keeps training labels from seeing the test period."
        )
    train, test = study.train, study.test
    study.numeric, study.categorical = features.feature_columns(train)
    study.notes.append(
        f"{len(study.numeric)} numeric and {len(study.categorical)} categorical features: "
        + ", ".join(label_of(f) for f in study.numeric + study.categorical)
        + "."
    )
    # a model needs churners to learn from and, on the later months, churners to be judged on
    churned_train = int(train.loc[train["label"].eq(1), "account_id"].nunique())
    churned_test = int(test["label"].sum())
    if churned_train < drivers.MIN_EVENTS:
        study.stop = (
            f"{churned_train} churned accounts in the training period: too few to model drivers; "
            f"at least {drivers.MIN_EVENTS} are needed"
        )
    elif churned_test < 5 or churned_test == len(test):
        study.stop = (
            f"{churned_test} churned observations among the {len(test):,} of the test period: too "
            "few to judge a model on data it has not seen; at least 5 churned and 5 staying "
            "observations are needed"
        )
    return study


def decile_spread(dataset: pd.DataFrame, numeric: list[str], top: int = 6) -> dict[str, pd.DataFrame]:
    """Churn by decile of the ``top`` numeric features whose deciles' churn rates differ most.

    The spread is measured over bins of at least :data:`MIN_DECILE_ROWS` observations (or the
    largest bin, in a small book); features with fewer than three such bins are left out.

    Returns
    -------
    dict
        Feature -> :func:`cslab.features.churn_by_decile`, widest spread first.

    Examples
    --------
    >>> spread = decile_spread(dataset, ["seat_utilisation", "tickets_90d"])  # doctest: +SKIP
    """
    spread = {}
    for feature in numeric:
        table = features.churn_by_decile(dataset, feature)
        solid = _solid(table)
        if len(solid) > 2:
            spread[feature] = (solid["churn_rate"].max() - solid["churn_rate"].min(), table)
    shown = sorted(spread, key=lambda f: spread[f][0], reverse=True)[:top]
    return {feature: spread[feature][1] for feature in shown}


def _solid(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["n"] >= min(MIN_DECILE_ROWS, table["n"].max())]


def plot_decile_spread(spread: dict[str, pd.DataFrame], base_rate: float):
    """Two rows of three panels: churn by decile of each feature of :func:`decile_spread`."""
    import matplotlib.pyplot as plt

    from cslab import plots

    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5))
    for ax, (feature, table) in zip(axes.ravel(), spread.items(), strict=False):
        plots.plot_churn_by_decile(table, ax=ax, base_rate=base_rate, title=label_of(feature))
    for ax in axes.ravel()[len(spread) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def decile_sentence(spread: dict[str, pd.DataFrame]) -> str:
    """The feature with the widest spread, and its range of churn rates.

    Examples
    --------
    >>> t = pd.DataFrame({"n": [40, 40, 40], "churn_rate": [0.1, 0.2, 0.3]})
    >>> decile_sentence({"tickets_90d": t})[:45]
    'The widest spread is in **tickets (90 days)**'
    """
    best = next(iter(spread))
    t = _solid(spread[best])
    return (
        f"The widest spread is in **{label_of(best)}**: churn runs from {pct(t['churn_rate'].min())} to "
        f"{pct(t['churn_rate'].max())} across its deciles (bins of at least {MIN_DECILE_ROWS} observations)."
    )


@dataclass
class ModelComparison:
    """The logistic and trees churn models, fitted on the training rows and judged on the test rows."""

    logistic: drivers.ChurnModel
    trees: drivers.ChurnModel
    ev_logistic: dict
    ev_trees: dict
    backtest: pd.DataFrame
    cautions: list = field(default_factory=list)


def compare_models(train: pd.DataFrame, test: pd.DataFrame) -> ModelComparison:
    """Fit both churn models on ``train``, evaluate them on ``test``; warnings become cautions.

    Examples
    --------
    >>> models = compare_models(train, test)  # doctest: +SKIP
    >>> models.ev_trees["auc"]  # doctest: +SKIP
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StatisticalWarning)
        logistic = drivers.ChurnModel("logistic").fit(train)
        trees = drivers.ChurnModel("trees").fit(train)
    p_logistic, p_trees = logistic.predict_proba(test), trees.predict_proba(test)
    backtest = test[["account_id", "observation_date", "label"]].assign(score=p_trees)
    return ModelComparison(
        logistic,
        trees,
        drivers.evaluate(test["label"], p_logistic),
        drivers.evaluate(test["label"], p_trees),
        backtest,
        [f"*Caution:* {w.message}" for w in caught],
    )


_MEASURES = ("auc", "top_decile_lift", "brier", "calibration_error")


def format_measure(value) -> str:
    """A cell of :func:`model_table`: yes/no flags as they are, measures to three decimals.

    Examples
    --------
    >>> format_measure(0.81234), format_measure(True)
    ('0.812', True)
    """
    return value if isinstance(value, (bool, np.bool_)) else f"{value:.3f}"


def model_table(models: ModelComparison) -> pd.DataFrame:
    """Both models' test measures side by side (and whether isotonic calibration was applied)."""
    return pd.DataFrame(
        {
            "logistic regression": [models.ev_logistic[k] for k in _MEASURES] + [models.logistic.calibrated_],
            "gradient-boosted trees": [models.ev_trees[k] for k in _MEASURES] + [models.trees.calibrated_],
        },
        index=["ROC AUC", "top-decile lift", "Brier score", "calibration error", "isotonic calibration applied"],
    )


def model_sentence(models: ModelComparison) -> str:
    """How well the trees rank and score churn on the test rows, against the logistic baseline."""
    ev, ev_logistic = models.ev_trees, models.ev_logistic
    better = "trees" if ev["auc"] >= ev_logistic["auc"] else "logistic regression"
    return (
        f"On the test observations the trees model reaches **AUC {ev['auc']:.3f}** (logistic "
        f"{ev_logistic['auc']:.3f}): the {better} rank churners better. The 10% of accounts the trees "
        f"score highest churn **{ev['top_decile_lift']:.1f} times** as often as average. Brier score "
        f"{ev['brier']:.4f} against {ev['base_rate'] * (1 - ev['base_rate']):.4f} for "
        "always predicting the base rate."
    )


def plot_dependence_row(explained: dict, ranking: pd.Series, model, top: int = 3):
    """SHAP dependence plots of the ``top`` strongest numeric drivers, side by side."""
    import matplotlib.pyplot as plt

    from cslab import plots

    shown = [f for f in ranking.index if f in model.numeric_][:top]
    fig, axes = plt.subplots(1, len(shown), figsize=(4.6 * len(shown), 3.4))
    for ax, feature in zip(np.atleast_1d(axes), shown, strict=True):
        plots.plot_dependence(explained["values"], explained["rows"], feature, ax=ax, title=label_of(feature))
    fig.tight_layout()
    return fig


def driver_sentence(
    ranking: pd.Series, impact: pd.DataFrame, numeric: list[str], horizon_months: int, top: int = 5
) -> str:
    """The ``top`` strongest drivers, each with its retention impact in words.

    Examples
    --------
    >>> impact = pd.DataFrame({"feature": ["tickets_90d"], "change": [0.02], "move": ["+1 SD (3)"],
    ...                        "baseline": [0.05]})
    >>> print(driver_sentence(pd.Series([1.0], index=["tickets_90d"]), impact, ["tickets_90d"], 3))
    ... # doctest: +NORMALIZE_WHITESPACE
    The five strongest drivers, and their retention impact (average over the test accounts, from a
    baseline of 5.0%):
    <BLANKLINE>
    1. **tickets (90 days)**: moving it by one standard deviation (+1 SD (3)) changes the predicted
    3-month churn by +2.0 points.
    """
    lines = []
    for rank, feature in enumerate(ranking.index[:top], start=1):
        row = impact[impact["feature"].eq(feature)]
        if len(row):
            change = row["change"].iloc[0]
            how = (
                f"moving it by one standard deviation ({row['move'].iloc[0]}) changes the predicted "
                f"{horizon_months}-month churn by {change * 100:+.1f} points"
                if feature in numeric
                else f"going from {row['move'].iloc[0].replace(' -> ', ' to ')} adds {change * 100:.1f} "
                "points of predicted churn"
            )
        else:
            how = "its effect is spread across levels too rare to compare"
        lines.append(f"{rank}. **{label_of(feature)}**: {how}.")
    return (
        "The five strongest drivers, and their retention impact (average over the test accounts, "
        f"from a baseline of {pct(impact['baseline'].iloc[0])}):\n\n" + "\n".join(lines)
    )


def impact_table(impact: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """:func:`cslab.drivers.retention_impact` for display: the change in points, rounded."""
    return (
        impact.head(top)
        .assign(change=(impact["change"].head(top) * 100).round(2))
        .rename(columns={"change": "change in predicted churn (points)"})
    )


def cox_summary(study: ChurnStudy, snapshot: bool, sample: int = 8000) -> dict:
    """The Cox model on the training rows: hazard ratios, test concordance and a sentence.

    Returns
    -------
    dict
        ``fitter``, ``c_index`` (concordance on the test rows), ``hazards`` (the 12 largest hazard
        ratios in either direction, with their 95% interval and p-value) and ``sentence``.

    Examples
    --------
    >>> cox = cox_summary(study, snapshot=False, sample=2000)  # doctest: +SKIP
    """
    from lifelines.utils import concordance_index

    duration = "duration" if snapshot else "months_to_event"
    cox_train = study.train.dropna(subset=[duration]) if snapshot else study.train
    fitter, design = drivers.fit_cox(
        cox_train,
        duration_col=duration,
        event_col="label",
        cluster_col=None if snapshot else "account_id",
        sample=sample,
    )
    cox_test = study.test.dropna(subset=[duration]) if snapshot else study.test
    c_index = concordance_index(cox_test[duration], -fitter.predict_partial_hazard(design(cox_test)), cox_test["label"])
    hazards = fitter.summary[["exp(coef)", "exp(coef) lower 95%", "exp(coef) upper 95%", "p"]]
    hazards = hazards.reindex(hazards["exp(coef)"].apply(np.log).abs().sort_values(ascending=False).index).head(12)
    sentence = (
        f"Concordance on the test observations: **{c_index:.3f}**. The largest hazard ratio is for "
        f"**{hazards.index[0]}** ({hazards['exp(coef)'].iloc[0]:.2f} per standard deviation or against "
        "the most common level). "
        + (f"Note: {fitter.ph_note}." if fitter.ph_note else "The proportional-hazards check flags no feature.")
    )
    hazards = hazards.rename(
        columns={"exp(coef)": "hazard ratio", "exp(coef) lower 95%": "lower 95%", "exp(coef) upper 95%": "upper 95%"}
    )
    return {"fitter": fitter, "c_index": float(c_index), "hazards": hazards, "sentence": sentence}


def health_view(model, scoring: pd.DataFrame, bands: tuple[float, float], snapshot: bool, horizon_months: int) -> dict:
    """Today's churn probabilities, health scores, the accounts and ARR per band, and a sentence.

    Returns
    -------
    dict
        ``p_now``, ``health`` (:func:`cslab.drivers.health_scores`), ``bands``
        (:func:`cslab.drivers.band_summary`), ``shown`` (the same for display: counts only in
        snapshot mode, where there is no revenue) and ``sentence``.

    Examples
    --------
    >>> view = health_view(trees, scoring, (85, 95), snapshot=False, horizon_months=3)  # doctest: +SKIP
    """
    p_now = model.predict_proba(scoring)
    health = drivers.health_scores(p_now, bands=tuple(bands))
    table = drivers.band_summary(health, scoring["arr"] if "arr" in scoring else None)
    within = "" if snapshot else f" within {horizon_months} months"
    sentence = (
        f"Red (score below {bands[0]}, i.e. more than {100 - bands[0]}% chance of churning{within}): "
        f"**{table.loc['red', 'n_accounts']:,} accounts** ({pct(table.loc['red', 'share_accounts'])})"
        + (f", holding {pct(table.loc['red', 'share_arr'])} of ARR." if not snapshot else ".")
        + f" Green (from {bands[1]} on): {pct(table.loc['green', 'share_accounts'])} of accounts."
    )
    return {
        "p_now": p_now,
        "health": health,
        "sentence": sentence,
        "bands": table,
        "shown": table[["n_accounts", "share_accounts"]] if snapshot else table,
    }


_AT_RISK_LABELS = {
    "account_id": "account",
    "arr": "ARR",
    "churn_probability": "churn risk",
    "arr_at_risk": "ARR at risk",
    "health_score": "health",
    "top_reasons": "why (top three reasons)",
}


def at_risk_view(
    model,
    study: ChurnStudy,
    p_now,
    health: pd.DataFrame,
    *,
    snapshot: bool,
    segment_col: str,
    shap_sample: int,
    horizon_months: int,
    currency: str = "USD",
    shown: int = 15,
) -> dict:
    """The at-risk list: accounts ranked by ARR at risk, reasons for the riskiest, and a sentence.

    Reasons (:func:`cslab.drivers.reasons`) are computed for the ``shap_sample`` accounts with the
    most ARR at risk (highest probability without ARR), against their features at the latest
    observation date.

    Returns
    -------
    dict
        ``table`` (:func:`cslab.drivers.at_risk_table`, every account), ``shown`` (its first
        ``shown`` rows, columns labelled for display), ``arr_at_risk`` (None in snapshot mode),
        ``n_red`` and ``sentence``.

    Examples
    --------
    >>> view = at_risk_view(trees, study, p_now, health, snapshot=False, segment_col="segment",
    ...                     shap_sample=300, horizon_months=3)  # doctest: +SKIP
    """
    scoring = study.scoring.reset_index(drop=True)
    order = np.argsort(-(scoring["arr"].to_numpy() * p_now if "arr" in scoring else p_now))
    to_explain = scoring.iloc[order[:shap_sample]]
    why_shap = drivers.explain(model, to_explain, sample=len(to_explain))
    previous, back = None, None
    if not snapshot:
        back = study.dataset["observation_date"].max()
        previous = study.dataset[study.dataset["observation_date"].eq(back)]
    why = drivers.reasons(why_shap["values"], to_explain, previous=previous)
    extra = ("name", segment_col, "plan", "csm_id") if segment_col else ("name", "plan", "csm_id")
    table = drivers.at_risk_table(scoring, p_now, health, why, extra=extra)
    top = table.head(shown).copy()
    columns = [
        c
        for c in (
            "account_id",
            "name",
            segment_col,
            "arr",
            "churn_probability",
            "arr_at_risk",
            "health_score",
            "band",
            "top_reasons",
        )
        if c in top and top[c].notna().any()
    ]
    arr_at_risk = float(table["arr_at_risk"].sum()) if not snapshot else None
    n_red = int((table["band"] == "red").sum())
    if snapshot:
        sentence = (
            f"{n_red} customers are red. Without revenue, the list is ranked by churn probability. "
            "In snapshot mode these customers' scores come from a model that learned from most of them "
            "(three quarters of the table trained it): treat the ranking as a description of who looks "
            "like past churners, not as an out-of-sample forecast."
        )
    else:
        sentence = (
            f"Across the {len(table):,} active accounts, the expected ARR lost to churn over the next "
            f"{horizon_months} months is **{money(arr_at_risk, currency)}**; the {shown} accounts above "
            f"carry {money(top['arr_at_risk'].sum(), currency)} of it. Reasons are computed for the "
            f"{len(to_explain):,} accounts most at risk."
            + (f" 'Down from' compares with {back:%B %Y}." if previous is not None else "")
        )
    return {
        "table": table,
        "shown": top[columns].rename(columns=_AT_RISK_LABELS),
        "arr_at_risk": arr_at_risk,
        "n_red": n_red,
        "sentence": sentence,
    }


def model_context(
    session, *, test_months: int | None, observation_step: int = 1, min_tenure_months: int = 0
) -> dict[str, Any]:
    """What a churn model fitted in a session depends on, to tell whether another notebook may reuse it.

    The data (folder, its size and MRR, the analysis date), the attribute screen and metric roles,
    and the design of the data set (horizon, test months, observation step, minimum tenure). Two
    notebooks whose contexts are equal fit the same model on the same rows.

    Examples
    --------
    >>> model_context(nb, test_months=6)["horizon_months"]  # doctest: +SKIP
    3
    """
    from cslab.config import DEMO_DIR

    p, subs = session.params, session.data.subscriptions
    return {
        "data_dir": str(Path(p.get("data_dir") or DEMO_DIR).resolve()),
        "as_of": str(pd.Timestamp(session.monthly.attrs.get("as_of")).date()),
        "n_subscription_lines": int(len(subs)),
        "total_mrr": round(float(subs["mrr"].sum()), 6),
        "metric_roles": p.get("metric_roles", ""),
        "include_attributes": p.get("include_attributes", ""),
        "exclude_attributes": p.get("exclude_attributes", ""),
        "horizon_months": int(p["horizon_months"]),
        "test_months": test_months,
        "observation_step": int(observation_step),
        "min_tenure_months": int(min_tenure_months),
    }
