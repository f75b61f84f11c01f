"""Causal building blocks for customer-success ROI: propensity weights, balance, weighted effects, E-values.

Customer-success attention is not random: CSMs give it to large accounts and to accounts that look at
risk, so "covered accounts churn less (or more)" is not an effect. These functions adjust for the
observed pre-treatment signals with inverse-probability weighting and say how strong an unmeasured
confounder would have to be to explain an estimate away (the E-value).

Programmes' total effects are estimated by :class:`cslab.programmes.ProgrammeEffects`; here
:func:`cs_roi` values one window's programme work against the window's cost with an account
bootstrap (estimate, percentile interval, replicate table); :func:`efficiency_ratios` gives the
ratios CS leaders track, each with its formula; :func:`cs_cost`, :func:`coverage` and
:func:`outcome_attainment` the rest of notebook ``03_cs_roi``. :func:`programme_effect` (adjusted for
the same month's signals: a direct effect) serves the effect of achieving a committed outcome, a state
rather than a delivery.

Examples
--------
>>> dataset, scoring = cslab.features.build_dataset(data, panel, horizon_months=1)  # doctest: +SKIP
>>> rows = person_months(dataset, panel, scoring)  # doctest: +SKIP
>>> model = ProgrammeEffects().fit(rows, ["onboarding", "qbr"]).plan_value("2025-01-01", "2025-12-31")  # doctest: +SKIP
>>> cs_roi(model, cost=1.2e6).roi  # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from cslab.errors import CSLabError
from cslab.features import label_of
from cslab.glm import ConvergenceError

__all__ = ["propensity_scores", "ipw_weights", "standardised_mean_differences", "weighted_hazard_ratio",
           "weighted_kaplan_meier", "e_value", "person_months", "initiation_weights", "programme_effect",
           "PROGRAMME_COVARIATES", "programme_covariates", "MIN_TREATED_ACCOUNTS", "MIN_CHURNED_ACCOUNTS", "common_support", "bootstrap_interval", "cs_cost", "revenue",
           "coverage", "outcome_attainment", "ROIEstimate", "cs_roi", "DEFAULT_GROSS_MARGIN",
           "DEFAULT_N_BOOTSTRAP", "monthly_cs_cost", "efficiency_ratios", "cost_window",
           "account_hours_cost", "describe_effect", "describe_roi", "sample_accounts"]


def propensity_scores(frame: pd.DataFrame, treated, covariates: list[str], C: float = 1.0) -> np.ndarray:
    """P(treated | pre-treatment covariates) from a regularised logistic regression.

    Numeric covariates are median-imputed and standardised, categories one-hot encoded. Only
    covariates measured *before* treatment may be passed: anything the treatment could change would
    absorb part of its effect.

    Examples
    --------
    >>> p = propensity_scores(accounts, accounts["onboarded"], ["segment", "seats", "employees"])  # doctest: +SKIP
    """
    numeric = [c for c in covariates if pd.api.types.is_numeric_dtype(frame[c])]
    categorical = [c for c in covariates if c not in numeric]
    encode = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="(missing)"),
                              OneHotEncoder(handle_unknown="ignore")), categorical),
    ])
    model = make_pipeline(encode, LogisticRegression(C=C, max_iter=2000))
    X = frame[covariates].astype({c: object for c in categorical})
    model.fit(X, np.asarray(treated, int))
    return model.predict_proba(X)[:, 1]


def ipw_weights(propensity, treated, stabilised: bool = True, trim: float = 0.01) -> np.ndarray:
    """Inverse-probability-of-treatment weights, stabilised and truncated.

    w = P(T = 1) / p for treated accounts and P(T = 0) / (1 - p) for the others (stabilised: the
    weighted groups keep their sizes). Weights beyond the ``trim`` and ``1 - trim`` quantiles are
    set to those quantiles, so a handful of accounts with extreme propensities cannot dominate.

    Examples
    --------
    >>> ipw_weights([0.5, 0.25, 0.5, 0.75], [1, 1, 0, 0], trim=0).round(3).tolist()
    [1.0, 2.0, 1.0, 2.0]
    """
    p = np.clip(np.asarray(propensity, float), 1e-6, 1 - 1e-6)
    t = np.asarray(treated).astype(bool)
    share = t.mean() if stabilised else 1.0
    w = np.where(t, share / p, (1 - share if stabilised else 1.0) / (1 - p))
    if trim:
        lo, hi = np.quantile(w, [trim, 1 - trim])
        w = np.clip(w, lo, hi)
    return w


def standardised_mean_differences(frame: pd.DataFrame, treated, covariates: list[str],
                                  weights=None) -> pd.Series:
    """Standardised mean difference of each covariate (each category level) between the groups.

    SMD = (mean treated − mean control) / sqrt((var treated + var control) / 2), weighted when
    ``weights`` are given; the pooled SD is the unweighted one, so before and after are comparable.
    Below 0.1 in absolute value is the usual mark of balance.

    Examples
    --------
    >>> df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    >>> round(float(standardised_mean_differences(df, [1, 1, 0, 0], ["x"])["x"]), 3)
    -2.828
    """
    t = np.asarray(treated).astype(bool)
    w = np.ones(len(frame)) if weights is None else np.asarray(weights, float)
    columns = {}
    for c in covariates:
        if pd.api.types.is_numeric_dtype(frame[c]):
            columns[c] = frame[c].astype(float).fillna(frame[c].median())
        else:
            for level, dummy in pd.get_dummies(frame[c].astype(str), prefix=c, prefix_sep="=").items():
                columns[level] = dummy.astype(float)
    out = {}
    for name, x in columns.items():
        x = x.to_numpy()
        sd = np.sqrt((x[t].var(ddof=1) + x[~t].var(ddof=1)) / 2)
        diff = np.average(x[t], weights=w[t]) - np.average(x[~t], weights=w[~t])
        out[name] = diff / sd if sd > 0 else 0.0
    return pd.Series(out, name="smd")


def weighted_hazard_ratio(durations, events, treated, weights=None) -> dict:
    """Marginal hazard ratio of treatment from a (weighted) Cox model with robust standard errors.

    Returns
    -------
    dict
        ``hr``, ``lower``, ``upper`` (95%), ``p``.
    """
    from lifelines import CoxPHFitter

    frame = pd.DataFrame({"duration": np.asarray(durations, float), "event": np.asarray(events, int),
                          "treated": np.asarray(treated, float),
                          "w": np.ones(len(durations)) if weights is None else np.asarray(weights, float)})
    fitter = CoxPHFitter().fit(frame, duration_col="duration", event_col="event", weights_col="w",
                               robust=True)
    row = fitter.summary.loc["treated"]
    return {"hr": float(row["exp(coef)"]), "lower": float(row["exp(coef) lower 95%"]),
            "upper": float(row["exp(coef) upper 95%"]), "p": float(row["p"])}


def weighted_kaplan_meier(durations, events, treated, weights=None, labels=("not covered", "covered")) -> dict:
    """Kaplan–Meier curves of the two groups, weighted (lifelines ``weights``) when weights are given.

    With propensity weights, lifelines' confidence bands are not valid (the naive variance ignores
    that the weights were estimated): read the curves, not their bands, and take intervals from a
    bootstrap that refits the weights.
    """
    from lifelines import KaplanMeierFitter

    t = np.asarray(treated).astype(bool)
    d, e = np.asarray(durations, float), np.asarray(events, int)
    w = np.ones(len(d)) if weights is None else np.asarray(weights, float)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*weights are not integers.*")  # said above
        warnings.filterwarnings("ignore", message="Mean of empty slice")  # lifelines, a group without events
        return {labels[int(group)]: KaplanMeierFitter().fit(d[t == group], e[t == group],
                                                            weights=w[t == group], label=labels[int(group)])
                for group in (False, True)}


def e_value(hr: float, lower: float | None = None, upper: float | None = None,
            rare_outcome: bool = True) -> dict:
    """E-value of a hazard ratio (VanderWeele & Ding 2017): how strong an unmeasured confounder would
    have to be, associated with both treatment and churn by this risk ratio, to explain it away.

    With a rare outcome (under about 15% over follow-up) the hazard ratio stands for a risk ratio;
    otherwise it is converted with RR ≈ (1 − 0.5^√HR) / (1 − 0.5^√(1/HR)). For a protective effect
    the ratio is inverted first. The E-value of the confidence limit nearer 1 is 1 when the interval
    includes 1.

    Examples
    --------
    >>> round(e_value(0.5)["estimate"], 3)
    3.414
    >>> e_value(0.8, 0.6, 1.05)["limit"]
    1.0
    """
    def as_rr(value: float) -> float:
        if rare_outcome:
            return value
        return (1 - 0.5 ** np.sqrt(value)) / (1 - 0.5 ** np.sqrt(1 / value))

    def ev(rr: float) -> float:
        rr = 1 / rr if rr < 1 else rr
        return float(rr + np.sqrt(rr * (rr - 1)))

    out = {"estimate": ev(as_rr(hr)), "limit": None}
    if lower is not None and upper is not None:
        if lower <= 1 <= upper:
            out["limit"] = 1.0
        else:
            out["limit"] = ev(as_rr(upper if hr < 1 else lower))
    return out


# ------------------------------------------------------------------------------------------------
# Programme effects on churn with time-varying treatment
# ------------------------------------------------------------------------------------------------
#: Fewest accounts that must have received a programme before its effect is estimated.
MIN_TREATED_ACCOUNTS = 20
#: Fewest churned accounts a programme-effect analysis needs.
MIN_CHURNED_ACCOUNTS = 30

#: The signals CSM attention follows besides usage, used when the data has them.
PROGRAMME_COVARIATES = ("seat_utilisation", "tickets_90d", "csat_90d", "tenure_months",
                        "outcomes_achieved_share", "employees", "seats", "has_csm")


def programme_covariates(rows: pd.DataFrame) -> list[str]:
    """The adjustment set of the data at hand: :data:`PROGRAMME_COVARIATES` present in ``rows``,
    plus the level and trend of every usage metric the data has, whatever it is called.

    A programme aimed at accounts whose usage fell is only comparable with untreated months once
    *that* usage signal is adjusted for, so no metric is left out for its name.

    Examples
    --------
    >>> programme_covariates(pd.DataFrame(columns=["tenure_months", "usage_wau", "usage_wau_trend"]))
    ['tenure_months', 'usage_wau', 'usage_wau_trend']
    """
    usage = sorted(c for c in rows.columns if str(c).startswith("usage_"))
    return [c for c in PROGRAMME_COVARIATES if c in rows] + usage


def person_months(dataset: pd.DataFrame, panel: pd.DataFrame | None = None,
                  scoring: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every account-month of a one-month-horizon dataset, in order, with the churn risk set marked.

    ``at_risk`` is true where churn in the next month is possible: monthly contracts every month,
    annual contracts in the month before renewal (they cannot leave in between). ``renewal`` marks the
    annual renewal rows, whose churn probability is of a whole year's decision. ``has_csm`` says
    whether the account has a CSM. With the ``panel``, ``expanded`` (1 = an expansion movement in the
    next month) and ``expansion_arr`` (its size, 12 x the MRR added) give the expansion outcome.

    Parameters
    ----------
    dataset : DataFrame
        :func:`cslab.features.build_dataset` with ``horizon_months=1``.
    panel : DataFrame, optional
        The monthly panel the dataset was built from.
    scoring : DataFrame, optional
        The scoring set of the same :func:`cslab.features.build_dataset` call: the last month,
        whose outcome is not known yet, appended with ``label`` missing (exposure and money need
        it; the models skip it).

    Examples
    --------
    >>> dataset, _ = features.build_dataset(data, panel, horizon_months=1)  # doctest: +SKIP
    >>> rows = person_months(dataset, panel)  # doctest: +SKIP
    """
    if scoring is not None and len(scoring):
        dataset = pd.concat([dataset, scoring.assign(label=np.nan)], ignore_index=True)
    rows = dataset.sort_values(["account_id", "observation_date"], kind="stable").reset_index(drop=True)
    if "csm_id" in rows:  # CSM coverage is a signal CSM attention follows
        rows["has_csm"] = rows["csm_id"].notna().astype(float)
    if "billing_period_months" in rows:
        annual = rows["billing_period_months"].fillna(1) >= 12
        rows["renewal"] = (annual & rows["months_to_renewal"].eq(1)).astype(float)
        rows["at_risk"] = ~annual | rows["renewal"].astype(bool)
    else:
        rows["renewal"], rows["at_risk"] = 0.0, True
    if panel is not None:
        # the movement of the month after each observation, keyed by the observation's month
        following = panel.loc[:, ["account_id", "month", "movement", "movement_mrr"]].copy()
        following["month"] = following["month"] - pd.DateOffset(months=1)
        month = rows["observation_date"].dt.to_period("M").dt.to_timestamp()
        nxt = pd.DataFrame({"account_id": rows["account_id"], "month": month}).merge(
            following, on=["account_id", "month"], how="left")
        rows["expanded"] = nxt["movement"].eq("expansion").astype(int).to_numpy()
        rows["expansion_arr"] = np.where(rows["expanded"] == 1, 12 * nxt["movement_mrr"].to_numpy(), 0.0)
    return rows


def _design(rows: pd.DataFrame, covariates: list[str], categorical: list[str]) -> pd.DataFrame:
    """Numeric covariates winsorised at 1%/99% and median-filled with a missing flag; one-hot categories."""
    out = pd.DataFrame(index=rows.index)
    for c in covariates:
        x = rows[c].astype(float)
        if x.isna().all():  # e.g. trends at tenure 0: nothing to adjust for
            continue
        lo, hi = x.quantile([0.01, 0.99])
        x = x.clip(lo, hi)
        # a missing trend only means a young account, which the tenure bands already say; a flag
        # for it would separate months without churn and stall the fit
        if x.isna().any() and not c.endswith("_trend"):
            out[f"{c}_missing"] = x.isna().astype(float)
        x = x.fillna(x.median())
        sd = x.std()
        out[c] = (x - x.mean()) / sd if sd > 0 else 0.0  # z-scores keep the GLM's iterations stable
    for c in categorical:
        dummies = pd.get_dummies(rows[c].astype(str), prefix=c, prefix_sep="=", drop_first=True, dtype=float)
        out = out.join(dummies)
    out = out.loc[:, out.std() > 0]
    # copies make the GLM singular: the missing flags of usage metrics recorded together, a metric
    # logged in minutes and in hours; keep the first of each such pair
    corr = np.abs(np.corrcoef(out.to_numpy(dtype=float), rowvar=False)) if out.shape[1] > 1 else np.zeros((1, 1))
    copy = (np.triu(np.nan_to_num(corr), k=1) > 0.999).any(axis=0)
    return out.loc[:, ~copy]


def _cloglog(y, X: pd.DataFrame, weights=None, groups=None):
    """Discrete-time proportional hazards: a binomial GLM with complementary log-log link.

    exp(coef) is a hazard ratio of the grouped-time proportional-hazards model, exact for monthly
    data (a Cox model's tie handling is not, when churn at annual renewals is far from rare).
    Standard errors are clustered by account.
    """
    import statsmodels.api as sm

    family = sm.families.Binomial(link=sm.families.links.CLogLog())
    model = sm.GLM(np.asarray(y, float), sm.add_constant(X, has_constant="add"), family=family,
                   var_weights=None if weights is None else np.asarray(weights, float))
    kwargs = {"cov_type": "cluster", "cov_kwds": {"groups": pd.factorize(groups)[0]}} if groups is not None else {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # the cluster sandwich uses the weighted scores, which is what inverse-probability weights
        # need; statsmodels warns only that some other statistics ignore the weights
        warnings.filterwarnings("ignore", message="cov_type not fully supported")
        fit = model.fit(**kwargs)
    for item in caught:
        if "separation" in str(item.message).lower():
            raise CSLabError("a signal separates the months with and without the event perfectly: too "
                             "few events to estimate the effect")
        warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
    return fit


def initiation_weights(rows: pd.DataFrame, treated: pd.Series, covariates: list[str],
                       categorical: list[str], trim: float = 0.01,
                       propensity_model: str | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """Stabilised inverse-probability weights for starting a programme, month by month.

    Among account-months not yet treated, a logistic model gives the probability of starting the
    programme from the signals of the month before (pre-treatment). Each month's weight factor is
    P(start) / p for starters and (1 − P(start)) / (1 − p) for the others; an account's weight is the
    running product, frozen once it has started (a marginal structural model's weights). Weights are
    truncated at the ``trim`` and ``1 − trim`` quantiles.

    ``propensity_model`` ("logistic" or "boosted trees") skips the choice by balance: a bootstrap
    replicate keeps the model chosen on the data.

    Returns
    -------
    (weights, decisions)
        Weights per row of ``rows``, and the initiation decisions (``started``, ``p``, ``factor`` and
        the lagged signals as the propensity model saw them) for balance checks.
    """
    account = rows["account_id"]
    status = treated.astype(bool)
    before = status.groupby(account, sort=False).shift(1, fill_value=False).astype(bool)
    lagged = rows[covariates].groupby(account, sort=False).shift(1).fillna(rows[covariates])
    lagged[categorical] = rows[categorical]
    starts = status & ~before
    # Decisions are taken only while the programme is actually started: onboarding at signup, say.
    # Beyond the tenure where 99% of starts happened, staying untreated is no longer a decision.
    window = rows.loc[starts, "tenure_months"].quantile(0.99) if starts.any() else 0
    at_risk = ~before & (rows["tenure_months"] <= window)
    X = _design(lagged[at_risk].assign(**{c: lagged.loc[at_risk, c] for c in categorical}),
                covariates, categorical)
    started = status[at_risk].astype(int)
    # CSMs act on thresholds ("usage below 45%", "three tickets"): boosted trees find them where a
    # linear propensity model would leave the groups unbalanced
    # Two candidate propensity models, each scored out of fold (a model scored on its own training
    # rows separates starters from the rest on noise, and its weights then unbalance what they
    # should balance); the one that balances the signals better is kept: a propensity model is
    # judged by the balance it achieves, not by its fit.
    # a replicate with a fixed model needs only its predictions: three folds are enough there
    n_folds = 3 if propensity_model is not None else 5
    folds = GroupKFold(n_splits=n_folds) if account[at_risk].nunique() >= n_folds else 2
    candidates = {
        "logistic": make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000)),
        "boosted trees": HistGradientBoostingClassifier(learning_rate=0.05, max_iter=150, max_leaf_nodes=8,
                                                        min_samples_leaf=100, l2_regularization=1.0,
                                                        random_state=0),
    }
    if propensity_model is not None:
        candidates = {propensity_model: candidates[propensity_model]}
    best = None
    for name, model in candidates.items():
        p_try = cross_val_predict(model, X, started, cv=folds, groups=account[at_risk],
                                  method="predict_proba")[:, 1]
        p_try = np.clip(p_try, 1e-3, 1 - 1e-3)
        if len(candidates) == 1:
            best = (0.0, name, p_try)
            break
        used = p_try > 0.005
        smd = standardised_mean_differences(X[used], started[used], list(X.columns),
                                            weights=1 / np.where(started[used] == 1, p_try[used], 1 - p_try[used]))
        if best is None or smd.abs().max() < best[0]:
            best = (smd.abs().max(), name, p_try)
    _, chosen, p = best
    # Where the programme practically never starts (a QBR off its schedule, an escalation without
    # tickets) staying untreated is no decision: those months get no weight factor and no say in
    # the balance check.
    decision = pd.Series(p > 0.005, index=X.index)
    share = started[decision].mean()
    factor = pd.Series(1.0, index=rows.index)
    factor[at_risk] = np.where(~decision, 1.0, np.where(started == 1, share / p, (1 - share) / (1 - p)))
    weights = factor.groupby(account, sort=False).cumprod().to_numpy()
    if trim:
        lo, hi = np.quantile(weights, [trim, 1 - trim])
        weights = np.clip(weights, lo, hi)
    # the signals as the propensity model saw them (winsorised at 1%/99%): a few huge accounts
    # should not decide whether the groups look alike
    decisions = X.assign(started=started.to_numpy(), p=p,
                         factor=factor[at_risk].to_numpy())[decision.to_numpy()]
    decisions.attrs["propensity_model"] = chosen
    return weights, decisions


def _treatment(rows: pd.DataFrame, programme: str, treated: pd.Series | None) -> pd.Series:
    """Time-varying treatment status: on from the month after the programme's first activity."""
    if treated is not None:
        return treated.astype(bool)
    column = f"cs_{programme}_count"
    if column not in rows:
        raise ValueError(f"no activities of type {programme!r}")
    return rows[column].gt(0)


def _outcome_design(rows: pd.DataFrame, status: pd.Series, programme: str, others: list[str],
                    covariates: list[str], categorical: list[str]) -> pd.DataFrame:
    """The outcome model's columns: treatment, signals, other programmes, renewal, tenure bands."""
    X = _design(rows, covariates, categorical)
    X.insert(0, programme, status.astype(float).to_numpy())
    for other in others:
        if other != programme and f"cs_{other}_count" in rows:
            X[f"{other}_status"] = rows[f"cs_{other}_count"].gt(0).astype(float)
    X["renewal"] = rows["renewal"]
    # the baseline hazard of a discrete-time model: one level per tenure band
    bands = pd.cut(rows["tenure_months"], [-1, 2, 5, 11, 23, np.inf], labels=["0-2", "3-5", "6-11", "12-23", "24+"])
    X = X.join(pd.get_dummies(bands, prefix="tenure", drop_first=True, dtype=float))
    return X.loc[:, (X.std() > 0) | (X.columns == programme)]


def _predict(fit, X: pd.DataFrame, programme: str, status: float | None = None) -> np.ndarray:
    """Monthly event probabilities of the fitted cloglog model, optionally with treatment set."""
    import statsmodels.api as sm

    if status is not None:
        X = X.assign(**{programme: status})
    exog = sm.add_constant(X, has_constant="add")[fit.model.exog_names]
    return np.asarray(fit.predict(exog))


def _ratio(fit, programme: str, what: str) -> tuple[float, float, float]:
    coef, (low, high) = fit.params[programme], fit.conf_int().loc[programme]
    hr, hr_low, hr_high = float(np.exp(coef)), float(np.exp(low)), float(np.exp(high))
    if not (np.isfinite([hr, hr_low, hr_high]).all() and hr > 0 and hr_high < 1e6):
        raise CSLabError(f"the {what} model for {programme!r} did not converge (hazard ratio {hr:.3g}); "
                         "too few events among treated accounts, or treatment separates them")
    return hr, hr_low, hr_high


def programme_effect(rows: pd.DataFrame, programme: str, others: list[str] | None = None,
                     covariates: list[str] | None = None, categorical: tuple[str, ...] = ("segment",),
                     trim: float = 0.01, treated: pd.Series | None = None, window_months: int = 12,
                     propensity_model: str | None = None, details: bool = True) -> dict:
    """Naive and adjusted effect of a CS programme on churn (and expansion), and the ARR it moved.

    Treatment switches on in the month after an account's first activity of the programme, so the
    time before it is not credited to it (no immortal-time bias). The naive hazard ratio compares
    treated and untreated account-months with no adjustment. The adjusted one is doubly robust: a
    discrete-time proportional-hazards model (cloglog) weighted by stabilised initiation weights
    (:func:`initiation_weights`) and adjusted for the same signals, for the other programmes' status and
    for annual renewals, with standard errors clustered by account. When ``rows`` carry the expansion
    outcome (:func:`person_months` with the panel), the same weights and design give the effect on the
    monthly chance of expanding.

    Money over the last ``window_months`` observation months, from the adjusted models: for every
    treated account-month, retained ARR = ARR x (churn probability had it not been treated − churn
    probability as treated), and expansion ARR = (expansion probability as treated − had it not been)
    x the median expansion of its segment; both summed. Each month's probability is conditional on
    the account being there, so an averted churn is counted in the month it would have happened.

    Assumptions (say them with the number): no unmeasured confounder of who gets the programme and
    who churns (the E-value measures how strong one would have to be), positivity (every kind of
    account could have received it), and signals that the programme does not itself change.

    Parameters
    ----------
    rows : DataFrame
        :func:`person_months` (every account-month; the churn risk set is marked there).
    programme : str
        An activity type; its status is ``cs_<programme>_count > 0``.
    others : list of str, optional
        Other programmes whose status enters the outcome model.
    treated : Series of bool, optional
        Another time-varying "treatment" than a programme, under the name ``programme``: e.g. a
        committed outcome achieved (``rows["outcomes_achieved_share"] > 0``). Its own measure is then
        left out of the signals.
    window_months : int
        The money window: the latest observation months.
    propensity_model : str, optional
        Fix the propensity model ("logistic" or "boosted trees") instead of choosing it by balance.
    details : bool
        Also return the balance table, the propensity decisions and the standardised survival curves
        (a bootstrap replicate needs only the numbers).

    Returns
    -------
    dict
        ``naive_hr``, ``hr``, ``hr_low``, ``hr_high``, ``p_value``, ``max_smd_before``,
        ``max_smd_after``, ``evalue``, ``evalue_limit``, ``n_treated_accounts``, ``n_rows``,
        ``population``, ``propensity_model``, ``retained_arr``, ``n_treated_window`` and, with the
        expansion outcome, ``naive_expansion_hr``, ``expansion_hr`` (``_low``, ``_high``),
        ``expansion_arr``, ``expansion_rate_treated`` / ``expansion_rate_untreated`` (12-month
        chance of expanding of the treated accounts in the window, as treated and had they not been);
        with ``details``: ``balance``, ``decisions``, ``curves``.

    Examples
    --------
    >>> effect = programme_effect(person_months(dataset, panel), "onboarding")  # doctest: +SKIP
    >>> round(effect["hr"], 2), round(effect["hr_low"], 2), round(effect["hr_high"], 2)  # doctest: +SKIP
    (0.66, 0.54, 0.79)
    """
    covariates = [c for c in (covariates or programme_covariates(rows)) if c in rows]
    categorical = [c for c in categorical if c in rows]
    given = treated is not None
    treated = _treatment(rows, programme, treated)
    if given and programme.startswith("outcome"):
        covariates = [c for c in covariates if c != "outcomes_achieved_share"]
    if given and programme in {"csm", "csm_coverage"}:
        covariates = [c for c in covariates if c != "has_csm"]
    n_treated = int(rows.loc[treated, "account_id"].nunique())
    if n_treated < MIN_TREATED_ACCOUNTS:
        raise CSLabError(f"{n_treated} accounts received {programme.replace('_', ' ')}: too few to estimate "
                         f"its effect; at least {MIN_TREATED_ACCOUNTS} are needed")
    # Positivity: where a programme is never given (no CSM, no QBR), there is nothing to compare;
    # the estimate is for the kinds of accounts that do receive it, and says so.
    population = pd.Series(True, index=rows.index)
    restricted = []
    for c in [c for c in covariates + categorical if rows[c].nunique(dropna=True) <= 5]:
        levels = rows.loc[treated, c].dropna().unique()
        keep = rows[c].isin(levels) | rows[c].isna()
        if not keep.all():
            population &= keep
            restricted.append(f"{label_of(c) if c != 'has_csm' else 'has a CSM'}: "
                              f"{', '.join(sorted(_level(v) for v in levels))}")
    rows, treated = rows[population], treated[population]
    weights, decisions = initiation_weights(rows, treated, covariates, categorical, trim, propensity_model)
    others = list(others or [])
    window = rows["observation_date"] > rows["observation_date"].max() - pd.DateOffset(months=window_months)

    # -- churn -----------------------------------------------------------------------------------
    risk = rows["at_risk"].to_numpy()
    churn_rows, churn_w = rows[risk], weights[risk]
    status = treated[risk].astype(float)
    naive = _cloglog(churn_rows["label"], status.to_frame(programme), groups=churn_rows["account_id"]) \
        if details else None
    # one design for every active month (the expansion risk set); the churn risk set is a subset
    X_all = _outcome_design(rows, treated.astype(float), programme, others, covariates, categorical)
    X = X_all[risk]
    X = X.loc[:, (X.std() > 0) | (X.columns == programme)]
    fit = _cloglog(churn_rows["label"], X, weights=churn_w, groups=churn_rows["account_id"])
    hr, hr_low, hr_high = _ratio(fit, programme, "churn")
    rare = rows["label"].mean() < 0.15
    ev = e_value(hr, hr_low, hr_high, rare_outcome=rare)
    counted = (status.to_numpy() == 1) & window[risk].to_numpy()
    p_treated = _predict(fit, X[counted], programme)
    p_untreated = _predict(fit, X[counted], programme, 0.0)
    out = {
        "naive_hr": float(np.exp(naive.params[programme])) if details else None, "hr": hr, "hr_low": hr_low, "hr_high": hr_high,
        "p_value": float(fit.pvalues[programme]), "evalue": ev["estimate"], "evalue_limit": ev["limit"],
        "n_treated_accounts": int(rows.loc[treated, "account_id"].nunique()), "n_rows": int(len(churn_rows)),
        "population": "; ".join(restricted) or "all accounts",
        "propensity_model": decisions.attrs.get("propensity_model"),
        "retained_arr": float((churn_rows["arr"].to_numpy()[counted] * (p_untreated - p_treated)).sum()),
        "n_treated_window": int(churn_rows.loc[treated[risk].to_numpy() & window[risk].to_numpy(),
                                               "account_id"].nunique()),
    }

    # -- expansion -------------------------------------------------------------------------------
    if "expanded" in rows:
        status_all = treated.astype(float)
        Xe = X_all
        naive_e = _cloglog(rows["expanded"], status_all.to_frame(programme), groups=rows["account_id"]) \
            if details else None
        fit_e = _cloglog(rows["expanded"], Xe, weights=weights, groups=rows["account_id"])
        e_hr, e_low, e_high = _ratio(fit_e, programme, "expansion")
        on = treated.to_numpy() & window.to_numpy()
        q1, q0 = _predict(fit_e, Xe[on], programme), _predict(fit_e, Xe[on], programme, 0.0)
        typical = _typical_expansion(rows)
        amount = rows.loc[on, "segment"].map(typical["by_segment"]).fillna(typical["all"]).to_numpy() \
            if "segment" in rows else np.full(on.sum(), typical["all"])
        account = rows.loc[on, "account_id"].to_numpy()
        rate = lambda q: float((1 - pd.Series(1 - q).groupby(account).prod()).mean()) if len(q) else float("nan")
        out.update(naive_expansion_hr=float(np.exp(naive_e.params[programme])) if details else None,
                   expansion_hr=e_hr,
                   expansion_hr_low=e_low, expansion_hr_high=e_high,
                   expansion_arr=float(((q1 - q0) * amount).sum()),
                   expansion_rate_treated=rate(q1), expansion_rate_untreated=rate(q0))
    if details:
        balance_on = [c for c in decisions.columns if c not in {"started", "p", "factor"}
                      and decisions[c].nunique(dropna=True) > 1]
        before = standardised_mean_differences(decisions, decisions["started"], balance_on)
        # balance under each decision's inverse-probability weights (what the propensity model
        # achieves; the analysis then truncates the cumulative weights at the `trim` quantiles)
        after = standardised_mean_differences(decisions, decisions["started"], balance_on,
                                              weights=1 / np.where(decisions["started"] == 1,
                                                                   decisions["p"], 1 - decisions["p"]))
        out.update(max_smd_before=float(before.abs().max()), max_smd_after=float(after.abs().max()),
                   balance=pd.DataFrame({"before": before, "after": after}), decisions=decisions,
                   curves=_standardised_survival(fit, X, churn_rows, rows, programme))
    return out


def common_support(decisions: pd.DataFrame) -> dict:
    """The propensity range both groups cover, and the share of decisions outside it.

    Weighting can only compare like with like where starters and non-starters share propensities;
    outside ``[low, high]`` (the higher of the two minima to the lower of the two maxima) one group
    has no counterpart and the estimate extrapolates.

    Parameters
    ----------
    decisions : DataFrame
        ``started`` (0/1) and ``p``, as in ``programme_effect(...)["decisions"]``.

    Examples
    --------
    >>> d = pd.DataFrame({"started": [1, 1, 0, 0], "p": [0.2, 0.9, 0.1, 0.5]})
    >>> common_support(d)
    {'low': 0.2, 'high': 0.5, 'share_outside': 0.5, 'share_started_outside': 0.5}
    """
    started = decisions["started"].astype(bool)
    p = decisions["p"]
    low = float(max(p[started].min(), p[~started].min()))
    high = float(min(p[started].max(), p[~started].max()))
    outside = (p < low) | (p > high)
    return {"low": low, "high": high, "share_outside": float(outside.mean()),
            "share_started_outside": float(outside[started].mean())}


def _level(value) -> str:
    return {1.0: "yes", 0.0: "no"}.get(value, str(value)) if isinstance(value, float) else str(value)


def _typical_expansion(rows: pd.DataFrame) -> dict:
    """Median size of past expansions (ARR), by segment and overall."""
    past = rows[rows.get("expanded", 0) == 1]
    overall = float(past["expansion_arr"].median()) if len(past) else 0.0
    by_segment = past.groupby("segment")["expansion_arr"].median() if "segment" in past else pd.Series(dtype=float)
    return {"all": overall, "by_segment": by_segment}


def _standardised_survival(fit, X: pd.DataFrame, churn_rows: pd.DataFrame, rows: pd.DataFrame,
                           programme: str) -> pd.DataFrame:
    """Survival by tenure had every account been treated, and had none: the outcome model averaged
    over the population's account-months at each tenure (months outside the churn risk set, such as
    the middle of an annual contract, have hazard 0)."""
    tenure_all = rows["tenure_months"].astype(int)
    n_at = tenure_all.value_counts()
    tenure = churn_rows["tenure_months"].astype(int)
    curves = {}
    for name, value in (("treated", 1.0), ("not treated", 0.0)):
        hazard = pd.Series(_predict(fit, X, programme, value), index=churn_rows.index).groupby(tenure).sum()
        mean_hazard = (hazard.reindex(n_at.index, fill_value=0.0) / n_at).sort_index()
        keep = n_at.sort_index() >= 30  # thin tails would make the curves jumpy
        curves[name] = (1 - mean_hazard[keep]).cumprod()
    out = pd.DataFrame(curves)
    out.index.name = "tenure_months"
    return out


# ------------------------------------------------------------------------------------------------
# Bootstrap intervals
# ------------------------------------------------------------------------------------------------
def bootstrap_interval(values, estimate: float, level: float = 0.95) -> tuple[float, float]:
    """Interval of an estimate from its bootstrap replicates.

    With fewer than 200 replicates, the normal interval from the bootstrap standard error (a few
    dozen replicates estimate a standard error well, but not the tails a percentile interval needs);
    from 200 on, the percentile interval.

    Examples
    --------
    >>> [round(limit, 2) for limit in bootstrap_interval([1.0, 2.0, 3.0], 2.0)]
    [0.04, 3.96]
    """
    from scipy.stats import norm

    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return float("nan"), float("nan")
    if len(values) >= 200:
        low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
        return float(low), float(high)
    half = norm.ppf((1 + level) / 2) * values.std(ddof=1)
    return round(float(estimate - half), 12), round(float(estimate + half), 12)


# ------------------------------------------------------------------------------------------------
# Money: cost, revenue, magic number, coverage
# ------------------------------------------------------------------------------------------------
def cs_cost(data, start, end, hourly_cost: float = 0.0, annual_cost_per_csm: float = 0.0) -> dict:
    """What customer success cost in the months after ``start`` up to ``end``.

    Total cost, from the best source present: the ``cs_costs`` table (what was spent), else
    ``annual_cost_per_csm`` x the CSMs named in ``accounts.csm_id`` x the window's share of a year,
    else activity hours x ``hourly_cost`` (which misses time not logged as an activity). The cost of
    each programme is always its activities' hours x ``hourly_cost`` (when hours are recorded).

    Returns
    -------
    dict
        ``total``, ``source`` (in words), ``by_programme`` (Series), ``hours`` (Series),
        ``csm_headcount`` (or None).

    Examples
    --------
    >>> cs_cost(data, "2024-12-31", "2025-12-31", hourly_cost=75)["total"]  # doctest: +SKIP
    """
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    activities = data.cs_activities
    if activities is not None and "hours" in activities:
        inside = activities[(activities["date"] > start) & (activities["date"] <= end)]
        hours = inside.groupby("activity_type")["hours"].sum()
    else:
        hours = pd.Series(dtype=float)
    by_programme = hours * hourly_cost
    months = (end.year - start.year) * 12 + end.month - start.month
    headcount = None
    accounts = data.accounts
    if accounts is not None and "csm_id" in accounts:
        headcount = int(accounts["csm_id"].nunique())
    costs = getattr(data, "cs_costs", None)
    if costs is not None and len(costs):
        month = costs["month"].dt.to_period("M").dt.to_timestamp()
        inside = costs[(month > start.to_period("M").to_timestamp()) & (month <= end.to_period("M").to_timestamp())]
        total, source = float(inside["cost"].sum()), "the cs_costs table"
        if "csm_headcount" in inside and inside["csm_headcount"].notna().any():
            headcount = int(round(inside["csm_headcount"].mean()))
    elif annual_cost_per_csm and headcount:
        total = annual_cost_per_csm * headcount * months / 12
        source = f"{headcount} CSMs x {annual_cost_per_csm:,.0f} a year"
    else:
        total, source = float(by_programme.sum()), "activity hours x the hourly cost"
    return {"total": total, "source": source, "by_programme": by_programme, "hours": hours,
            "csm_headcount": headcount, "months": months}


def revenue(panel: pd.DataFrame, start, end) -> float:
    """Recurring revenue billed in the months after ``start`` up to ``end`` (sum of monthly MRR)."""
    start, end = pd.Timestamp(start).to_period("M").to_timestamp(), pd.Timestamp(end).to_period("M").to_timestamp()
    inside = panel[(panel["month"] > start) & (panel["month"] <= end)]
    return float(inside["mrr"].sum())


def coverage(panel: pd.DataFrame) -> pd.DataFrame:
    """Active accounts and ARR per CSM in the panel's last month (accounts without a CSM as "(none)").

    Examples
    --------
    >>> coverage(panel).head()  # doctest: +SKIP
    """
    last = panel[(panel["month"] == panel["month"].max()) & panel["active"]]
    csm = last["csm_id"].astype(object).where(last["csm_id"].notna(), "(none)") if "csm_id" in last \
        else pd.Series("(none)", index=last.index)
    out = last.groupby(csm).agg(accounts=("account_id", "size"), arr=("mrr", lambda m: 12 * m.sum()))
    out.index.name = "csm_id"
    return out.sort_values("arr", ascending=False)


# ------------------------------------------------------------------------------------------------
# Required outcomes
# ------------------------------------------------------------------------------------------------
def outcome_attainment(data, panel: pd.DataFrame, as_of=None) -> dict:
    """How often customers reach the outcomes they committed to, how fast, and the ARR on them.

    * attainment rate = outcomes achieved by ``as_of`` / outcomes due by ``as_of`` (target date
      passed; without target dates, all committed ones);
    * time to first achieved outcome: Kaplan–Meier from an account's first commitment to its first
      achievement, censored at ``as_of`` (lifelines), as a median in months;
    * share of ARR on active accounts with at least one achieved outcome.

    Examples
    --------
    >>> outcome_attainment(data, panel)["attainment_rate"]  # doctest: +SKIP
    """
    from lifelines import KaplanMeierFitter

    as_of = pd.Timestamp(as_of) if as_of is not None else panel.attrs.get("as_of", panel["month"].max())
    outcomes = data.outcomes
    outcomes = outcomes[outcomes["committed_date"] <= as_of]
    achieved = outcomes["achieved_date"].notna() & (outcomes["achieved_date"] <= as_of) \
        if "achieved_date" in outcomes else pd.Series(False, index=outcomes.index)
    due = outcomes["target_date"].fillna(as_of) <= as_of if "target_date" in outcomes \
        else pd.Series(True, index=outcomes.index)
    per_account = pd.DataFrame({"account_id": outcomes["account_id"], "committed": outcomes["committed_date"],
                                "achieved": outcomes["achieved_date"].where(achieved)}).groupby("account_id").min()
    reached = per_account["achieved"].notna()
    months = ((per_account["achieved"].where(reached, as_of) - per_account["committed"]).dt.days / 30.4375).clip(lower=0)
    fitter = KaplanMeierFitter().fit(months, reached.astype(int), label="first achieved outcome")
    median = float(fitter.median_survival_time_)
    last = panel[(panel["month"] == panel["month"].max()) & panel["active"]]
    with_outcome = last["account_id"].isin(outcomes.loc[achieved, "account_id"])
    return {
        "attainment_rate": float(achieved[due].mean()) if due.any() else float("nan"),
        "n_due": int(due.sum()), "n_achieved": int((achieved & due).sum()),
        "median_months_to_first": median if np.isfinite(median) else None,
        "time_to_first": fitter,
        "arr_share_with_outcome": float(last.loc[with_outcome, "mrr"].sum() / last["mrr"].sum()) if len(last) else float("nan"),
    }


# ------------------------------------------------------------------------------------------------
# ROI of the deliveries of one window: estimate, percentile interval, replicate table
# ------------------------------------------------------------------------------------------------
#: Gross margin used when the caller gives none: a typical SaaS subscription gross margin.
DEFAULT_GROSS_MARGIN = 0.80
#: Bootstrap replicates by default (percentile intervals need at least 200).
DEFAULT_N_BOOTSTRAP = 200


@dataclass
class ROIEstimate:
    """What CS returned over one window, with its interval and every bootstrap replicate.

    Attributes
    ----------
    effects : DataFrame
        Per programme: exposure type, naive / total / direct hazard ratios, the total effect's
        bootstrap percentile interval (``hr_low``, ``hr_high``), the expansion hazard ratio and its
        interval, the value of the window's deliveries of that programme alone and its interval,
        balance and E-values.
    value, value_low, value_high : float
        Gross-margin value of all the window's deliveries (joint counterfactual).
    retained, expansion : float
        Its two parts: churn averted and expansion added.
    cost, cost_low, cost_high : float
        CS cost of the same window (an interval only when it is estimated from hours).
    roi, roi_low, roi_high : float
        (value − cost) / cost.
    replicates : DataFrame
        One row per replicate: ``replicate``, ``value``, ``retained``, ``expansion``, ``cost``,
        ``roi``, ``failed`` (why, or empty), and per programme ``hr_P``, ``expansion_hr_P``,
        ``value_P``, ``model_P`` (the propensity model chosen in that replicate).
    n_bootstrap, n_failed : int
    value_window, cost_window : str
        ``"YYYY-MM to YYYY-MM"``; the value is counted over ``horizon_months`` after each account's
        first delivery in ``value_window``.
    """

    effects: pd.DataFrame
    value: float
    value_low: float
    value_high: float
    retained: float
    expansion: float
    cost: float
    cost_low: float
    cost_high: float
    roi: float
    roi_low: float
    roi_high: float
    replicates: pd.DataFrame
    n_bootstrap: int
    n_failed: int
    value_window: str
    cost_window: str
    horizon_months: int
    gross_margin: float
    accounts_valued: int
    seconds: float = 0.0


def _one_replicate(model, seeds, gross_margin: float, account_cost) -> list[dict]:
    out = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        n = model._n_accounts
        freq = rng.multinomial(n, np.full(n, 1.0 / n)).astype(float)
        record, value = {"failed": ""}, None
        with np.errstate(all="ignore"):
            estimates = model.replicate(freq)
        if estimates["failed"]:
            record["failed"] = "; ".join(f"{p}: {why}" for p, why in estimates["failed"].items())
        for p, e in estimates["programmes"].items():
            record.update({f"hr_{p}": e["hr"], f"expansion_hr_{p}": e.get("expansion_hr", np.nan),
                           f"model_{p}": e["propensity_model"]})
        if not estimates["failed"]:
            try:
                with np.errstate(all="ignore"):
                    value = model.value(estimates, freq, gross_margin)
            except (ConvergenceError, np.linalg.LinAlgError) as error:
                record["failed"] = f"value: {error}"
                value = None
        if value is not None:
            record.update(value=value["total"], retained=value["retained"], expansion=value["expansion"],
                          **{f"value_{p}": v for p, v in value["by_programme"].items()})
        if account_cost is not None:  # the sampled accounts' cost stands for all accounts'
            record["cost"] = float(freq @ account_cost) / model.sample_fraction_
        out.append(record)
    return out


def cs_roi(model, cost: float, *, account_cost=None, gross_margin: float = DEFAULT_GROSS_MARGIN,
           n_bootstrap: int = DEFAULT_N_BOOTSTRAP, seed: int = 0, level: float = 0.95, n_jobs: int = 1,
           progress: bool = False) -> ROIEstimate:
    """The ROI of CS over one window: value of the window's deliveries against the window's cost.

    ``model`` is a fitted :class:`cslab.programmes.ProgrammeEffects` on which
    :meth:`~cslab.programmes.ProgrammeEffects.plan_value` was called for the cost window. The
    accounts are resampled with replacement ``n_bootstrap`` times (as frequency weights, so memory
    stays at one design whatever the number of replicates or workers); every stage is refitted in
    each replicate, including the choice of propensity model; a replicate where a model fails is
    counted in ``n_failed`` and its reason kept in the replicate table, never silently dropped (the
    intervals use the replicates that succeeded). Intervals are bootstrap percentiles from 200
    replicates on, else normal intervals from the bootstrap standard error.

    Parameters
    ----------
    cost : float
        CS cost of the window.
    account_cost : array, optional
        Cost per account (model order, ``model._n_accounts``) when the cost is estimated from
        activity hours: each replicate then re-adds the cost of its accounts, so the interval carries
        the cost's uncertainty too.
    gross_margin : float
        Share of revenue kept after the cost of serving it; value is margin, not revenue.
    n_jobs : int
        Worker processes (joblib); replicates are split in chunks, each worker holds one copy of
        the design (memory-mapped, read-only).
    progress : bool
        Show a progress bar (tqdm; a widget in JupyterLab), unless the environment variable
        ``CSLAB_BATCH`` is set (the audit sets it: nobody watches a report being made).

    Examples
    --------
    >>> model = ProgrammeEffects().fit(rows, programmes).plan_value("2025-01-01", "2025-12-31")  # doctest: +SKIP
    >>> result = cs_roi(model, cost=1.2e6, n_bootstrap=200)  # doctest: +SKIP
    >>> result.roi, result.roi_low, result.roi_high  # doctest: +SKIP
    """
    import time

    started = time.perf_counter()
    if not 0 < gross_margin <= 1:
        raise ValueError("gross_margin must be in (0, 1]")
    point = model.value(gross_margin=gross_margin)
    account_cost = None if account_cost is None else np.asarray(account_cost, float)
    seeds = np.random.SeedSequence(seed).spawn(n_bootstrap)
    chunk = max(1, min(25, n_bootstrap // max(1, 4 * n_jobs)))
    chunks = [seeds[i:i + chunk] for i in range(0, n_bootstrap, chunk)]
    bar = None
    if progress and n_bootstrap and not os.environ.get("CSLAB_BATCH"):
        from tqdm.auto import tqdm

        bar = tqdm(total=n_bootstrap, desc="bootstrap replicates", leave=False)
    records = []
    if n_jobs == 1:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):  # small matrices: BLAS threads cost more than they give
            for part in chunks:
                records += _one_replicate(model, part, gross_margin, account_cost)
                bar is not None and bar.update(len(part))
    else:
        from joblib import Parallel, delayed

        runs = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_one_replicate)(model, part, gross_margin, account_cost) for part in chunks)
        for part, run in zip(chunks, runs):
            records += run
            bar is not None and bar.update(len(part))
    if bar is not None:
        bar.close()
    boot = pd.DataFrame(records)
    boot.insert(0, "replicate", np.arange(len(boot)))
    if "cost" not in boot:
        boot["cost"] = cost
    if "value" not in boot:
        boot["value"] = np.nan
    boot["roi"] = (boot["value"] - boot["cost"]) / boot["cost"]
    n_failed = int((boot["failed"] != "").sum()) if len(boot) else 0

    def interval(column, estimate, ratio=False):
        if column not in boot or not len(boot):
            return float("nan"), float("nan")
        if ratio:  # hazard ratios: on the log scale, so a normal interval never goes below 0
            if estimate is None or not np.isfinite(float(estimate)) or float(estimate) <= 0:
                return float("nan"), float("nan")
            with np.errstate(divide="ignore", invalid="ignore"):
                low, high = bootstrap_interval(np.log(boot[column].astype(float)), float(np.log(estimate)), level)
            return float(np.exp(low)), float(np.exp(high))
        return bootstrap_interval(boot[column], estimate, level)

    roi_point = (point["total"] - cost) / cost if cost else float("nan")
    effects = model.summary.copy()
    for p in effects.index:
        effects.loc[p, "hr_low"], effects.loc[p, "hr_high"] = interval(f"hr_{p}", effects.loc[p, "hr"], True)
        effects.loc[p, "expansion_hr_low"], effects.loc[p, "expansion_hr_high"] = interval(
            f"expansion_hr_{p}", effects.loc[p, "expansion_hr"], True)
        effects.loc[p, "value"] = point["by_programme"].get(p, np.nan)
        effects.loc[p, "value_low"], effects.loc[p, "value_high"] = interval(f"value_{p}", effects.loc[p, "value"])
        models = boot.get(f"model_{p}")
        effects.loc[p, "propensity_model_share"] = float(models.eq(effects.loc[p, "propensity_model"]).mean()) \
            if models is not None else np.nan
    if not n_bootstrap:  # no replicates: the model's interval (clustered by account) for the effects
        effects["hr_low"], effects["hr_high"] = effects["hr_low_model"], effects["hr_high_model"]
    rare = float(model._label[model._fit_rows].mean()) < 0.15  # as the point estimate's E-value
    for p in effects.index:  # the E-value of the interval the report shows
        low, high = float(effects.loc[p, "hr_low"]), float(effects.loc[p, "hr_high"])
        if np.isfinite([low, high]).all():
            effects.loc[p, "evalue_limit"] = e_value(float(effects.loc[p, "hr"]), low, high,
                                                     rare_outcome=rare)["limit"]
    value_low, value_high = interval("value", point["total"])
    cost_low, cost_high = interval("cost", cost) if account_cost is not None else (cost, cost)
    roi_low, roi_high = interval("roi", roi_point)
    start, end = model.value_plan_["window"]
    window = f"{start.strftime('%Y-%m')} to {end.strftime('%Y-%m')}"
    return ROIEstimate(effects=effects, value=point["total"], value_low=value_low, value_high=value_high,
                       retained=point["retained"], expansion=point["expansion"], cost=float(cost),
                       cost_low=cost_low, cost_high=cost_high, roi=roi_point, roi_low=roi_low,
                       roi_high=roi_high, replicates=boot, n_bootstrap=int(n_bootstrap), n_failed=n_failed,
                       value_window=window, cost_window=window, horizon_months=model.value_plan_["H"],
                       gross_margin=gross_margin, accounts_valued=point["accounts"],
                       seconds=time.perf_counter() - started)


# ------------------------------------------------------------------------------------------------
# Efficiency ratios, each with its formula
# ------------------------------------------------------------------------------------------------
def monthly_cs_cost(data, months, hourly_cost: float = 0.0, annual_cost_per_csm: float = 0.0) -> pd.Series:
    """CS cost of each month (first-of-month index), from the best source present (as
    :func:`cs_cost`): the ``cs_costs`` table, else CSMs × ``annual_cost_per_csm`` / 12, else activity
    hours × ``hourly_cost``. Months the source does not cover are missing (NaN), not zero.

    Examples
    --------
    >>> monthly_cs_cost(data, panel["month"].unique())  # doctest: +SKIP
    """
    index = pd.DatetimeIndex(sorted(pd.to_datetime(pd.Series(months)).dt.to_period("M").dt.to_timestamp().unique()))
    costs = getattr(data, "cs_costs", None)
    if costs is not None and len(costs):
        month = costs["month"].dt.to_period("M").dt.to_timestamp()
        return costs.groupby(month)["cost"].sum().reindex(index)
    accounts = data.accounts
    if annual_cost_per_csm and accounts is not None and "csm_id" in accounts and accounts["csm_id"].notna().any():
        return pd.Series(annual_cost_per_csm * accounts["csm_id"].nunique() / 12, index=index)
    activities = data.cs_activities
    if activities is not None and "hours" in activities and hourly_cost:
        month = activities["date"].dt.to_period("M").dt.to_timestamp()
        spent = (activities["hours"] * hourly_cost).groupby(month).sum()
        first = month.min()
        return spent.reindex(index).where(index >= first).fillna(0.0).where(index >= first)
    return pd.Series(np.nan, index=index)


def efficiency_ratios(panel: pd.DataFrame, monthly_cost: pd.Series, *, months: int = 12,
                      cost_lag_months: int = 3) -> dict:
    """Two ratios of what CS spending goes with, each with its formula (neither is an effect).

    * **CS efficiency ratio** = ARR the customers of ``months`` ago pay now (retained and expanded:
      NRR × their starting ARR) / CS cost of ``months`` months ending ``cost_lag_months`` before the
      end month (spending comes before the revenue it may keep).
    * **SaaS magic number, on CS cost** = (recurring revenue of the last quarter − of the quarter
      before) × 4 / CS cost of the quarter before: the usual form, with CS cost where the original
      has sales and marketing. Only where both quarters of revenue and the earlier quarter's cost
      exist.

    Returns
    -------
    dict
        ``cs_efficiency_ratio``, ``retained_expanded_arr``, ``efficiency_cost``,
        ``efficiency_cost_window``, ``saas_magic_number``, ``quarter``, ``quarter_revenue``,
        ``previous_quarter_revenue``, ``previous_quarter_cost``, ``formulas`` (in words), ``notes``.

    Examples
    --------
    >>> efficiency_ratios(panel, monthly_cs_cost(data, panel["month"]))["cs_efficiency_ratio"]  # doctest: +SKIP
    """
    from cslab.metrics import revenue_retention

    out = {"formulas": {
        "cs_efficiency_ratio": f"ARR now of the customers of {months} months ago (NRR x their starting ARR) / "
                               f"CS cost of the {months} months ending {cost_lag_months} months earlier",
        "saas_magic_number": "(recurring revenue of the last quarter - of the quarter before) x 4 / "
                             "CS cost of the quarter before"}, "notes": []}
    end = pd.Timestamp(panel["month"].max()).to_period("M")
    cost = monthly_cost.copy()
    cost.index = pd.DatetimeIndex(cost.index).to_period("M")
    try:
        kept = revenue_retention(panel, months=months)
        arr = 12 * kept["start_mrr"] * kept["nrr"]
    except ValueError as error:
        arr = None
        out["notes"].append(f"no efficiency ratio: {error}")
    last = end - cost_lag_months
    window = pd.period_range(last - months + 1, last, freq="M")
    spent = cost.reindex(window)
    out.update(retained_expanded_arr=arr, efficiency_cost_window=f"{window[0]} to {window[-1]}",
               efficiency_cost=float(spent.sum()) if spent.notna().all() else None)
    if arr is not None and out["efficiency_cost"]:
        out["cs_efficiency_ratio"] = arr / out["efficiency_cost"]
    else:
        out["cs_efficiency_ratio"] = None
        if arr is not None:
            out["notes"].append(f"no efficiency ratio: the CS cost of {window[0]} to {window[-1]} is not in the data")
    # quarters: the last three complete months and the three before
    revenue_by_month = panel.groupby(panel["month"].dt.to_period("M"))["mrr"].sum()
    quarter = pd.period_range(end - 2, end, freq="M")
    before = pd.period_range(end - 5, end - 3, freq="M")
    have = revenue_by_month.reindex(quarter.append(before)).notna().all()
    q_cost = cost.reindex(before)
    if have and q_cost.notna().all() and q_cost.sum() > 0:
        rev_q, rev_b = float(revenue_by_month.reindex(quarter).sum()), float(revenue_by_month.reindex(before).sum())
        out.update(saas_magic_number=(rev_q - rev_b) * 4 / float(q_cost.sum()), quarter=f"{quarter[0]} to {quarter[-1]}",
                   quarter_revenue=rev_q, previous_quarter_revenue=rev_b, previous_quarter_cost=float(q_cost.sum()))
    else:
        out["saas_magic_number"] = None
        out["notes"].append("no SaaS magic number: it needs two quarters of revenue and the earlier quarter's CS cost")
    return out


def sample_accounts(panel: pd.DataFrame, max_accounts: int | None, seed: int = 0) -> tuple[pd.DataFrame, int]:
    """A random sample of ``max_accounts`` accounts of the panel (all their months), and the number
    of accounts of the whole panel.

    On a large book the person-month features are built for the sample only, which bounds memory;
    :meth:`cslab.programmes.ProgrammeEffects.fit` scales values back up (``book_accounts``).

    Examples
    --------
    >>> panel = pd.DataFrame({"account_id": list("AABBCC"), "mrr": range(6)})
    >>> sample, total = sample_accounts(panel, 2, seed=1)
    >>> sample["account_id"].nunique(), total
    (2, 3)
    """
    accounts = panel["account_id"].unique()
    if not max_accounts or len(accounts) <= max_accounts:
        return panel, len(accounts)
    keep = np.random.default_rng(seed).choice(accounts, int(max_accounts), replace=False)
    sample = panel[panel["account_id"].isin(keep)].reset_index(drop=True)
    sample.attrs = dict(panel.attrs)
    return sample, len(accounts)


def cost_window(as_of, months: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last calendar month (first-of-month) of the ``months`` months up to ``as_of``'s month.

    Examples
    --------
    >>> cost_window("2025-12-31", 12)
    (Timestamp('2025-01-01 00:00:00'), Timestamp('2025-12-01 00:00:00'))
    """
    end = pd.Timestamp(as_of).to_period("M")
    return (end - months + 1).to_timestamp(), end.to_timestamp()


def account_hours_cost(data, account_ids, start, end, hourly_cost: float) -> np.ndarray:
    """Activity hours × ``hourly_cost`` of each account (in ``account_ids`` order) in the calendar
    months ``start`` to ``end``: the cost the bootstrap resamples when cost comes from hours."""
    acts = data.cs_activities
    if acts is None or "hours" not in acts:
        return np.zeros(len(account_ids))
    month = acts["date"].dt.to_period("M").dt.to_timestamp()
    inside = acts[(month >= pd.Timestamp(start)) & (month <= pd.Timestamp(end))]
    spent = inside.groupby("account_id")["hours"].sum() * hourly_cost
    return spent.reindex(account_ids).fillna(0.0).to_numpy(float)


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
    direct_text = (f"the direct effect (this month's signals held fixed) {direct:.2f}" if np.isfinite(direct)
                   else "the direct effect (this month's signals held fixed) could not be estimated")
    return (f"{verdict}; the naive comparison said {float(effect['naive_hr']):.2f}, {direct_text}. "
            f"Signals after weighting: largest SMD "
            f"{float(effect['max_smd_after']):.2f}, {balanced}. Population: {effect['population']}.")


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
    verdict = ("every unit spent on CS came back with more, in gross margin" if result.roi_low > 0 else
               "the programmes evaluated did not return CS's cost in gross margin over the horizon"
               if result.roi_high < 0 else
               "the interval includes breaking even (0), so these data cannot tell whether CS pays for itself")
    failed = f", {result.n_failed} failed" if result.n_failed else ""
    return (f"**ROI = {result.roi:.2f}** (95% {result.roi_low:.2f} to {result.roi_high:.2f}, "
            f"{result.n_bootstrap} bootstrap replicates{failed}): {verdict}. Programmes whose own value "
            "interval lies above zero: "
            + (", ".join(p.replace("_", " ") for p in result.effects.index
                         if float(result.effects.loc[p, "value_low"]) > 0) or "none") + ".")
