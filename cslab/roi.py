"""Causal building blocks for customer-success ROI: propensity weights, balance, weighted effects, E-values.

Customer-success attention is not random: CSMs give it to large accounts and to accounts that look at
risk, so "covered accounts churn less (or more)" is not an effect. These functions adjust for the
observed pre-treatment signals with inverse-probability weighting and say how strong an unmeasured
confounder would have to be to explain an estimate away (the E-value).

The notebook that assembles them (``03_cs_roi``) and the money side (attributable ARR, cost, ROI with a
bootstrap interval) are still to come; see the project's issue tracker.
"""

from __future__ import annotations

import warnings

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

__all__ = ["propensity_scores", "ipw_weights", "standardised_mean_differences", "weighted_hazard_ratio",
           "weighted_kaplan_meier", "e_value", "person_months", "initiation_weights", "programme_effect",
           "PROGRAMME_COVARIATES"]


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
    -1.414
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
PROGRAMME_COVARIATES = ("seat_utilisation", "usage_logins_trend", "usage_active_users_trend",
                        "usage_features_used", "tickets_90d", "csat_90d", "tenure_months",
                        "outcomes_achieved_share", "employees", "seats", "has_csm")


def person_months(dataset: pd.DataFrame) -> pd.DataFrame:
    """Every account-month of a one-month-horizon dataset, in order, with the churn risk set marked.

    ``at_risk`` is true where churn in the next month is possible: monthly contracts every month,
    annual contracts in the month before renewal (they cannot leave in between). ``renewal`` marks the
    annual renewal rows, whose churn probability is of a whole year's decision. ``has_csm`` says
    whether the account has a CSM.

    Parameters
    ----------
    dataset : DataFrame
        :func:`cslab.features.build_dataset` with ``horizon_months=1``.
    """
    rows = dataset.sort_values(["account_id", "observation_date"], kind="stable").reset_index(drop=True)
    if "csm_id" in rows:  # CSM coverage is a signal CSM attention follows
        rows["has_csm"] = rows["csm_id"].notna().astype(float)
    if "billing_period_months" in rows:
        annual = rows["billing_period_months"].fillna(1) >= 12
        rows["renewal"] = (annual & rows["months_to_renewal"].eq(1)).astype(float)
        rows["at_risk"] = ~annual | rows["renewal"].astype(bool)
    else:
        rows["renewal"], rows["at_risk"] = 0.0, True
    return rows


def _design(rows: pd.DataFrame, covariates: list[str], categorical: list[str]) -> pd.DataFrame:
    """Numeric covariates winsorised at 1%/99% and median-filled with a missing flag; one-hot categories."""
    out = pd.DataFrame(index=rows.index)
    for c in covariates:
        x = rows[c].astype(float)
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
    return out.loc[:, out.std() > 0]


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
    with warnings.catch_warnings():
        # the cluster sandwich uses the weighted scores, which is what inverse-probability weights
        # need; statsmodels warns only that some other statistics ignore the weights
        warnings.filterwarnings("ignore", message="cov_type not fully supported")
        return model.fit(**kwargs)


def initiation_weights(rows: pd.DataFrame, treated: pd.Series, covariates: list[str],
                       categorical: list[str], trim: float = 0.01) -> tuple[np.ndarray, pd.DataFrame]:
    """Stabilised inverse-probability weights for starting a programme, month by month.

    Among account-months not yet treated, a logistic model gives the probability of starting the
    programme from the signals of the month before (pre-treatment). Each month's weight factor is
    P(start) / p for starters and (1 − P(start)) / (1 − p) for the others; an account's weight is the
    running product, frozen once it has started (a marginal structural model's weights). Weights are
    truncated at the ``trim`` and ``1 − trim`` quantiles.

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
    folds = GroupKFold(n_splits=5) if account[at_risk].nunique() >= 5 else 2
    candidates = {
        "logistic": make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000)),
        "boosted trees": HistGradientBoostingClassifier(learning_rate=0.05, max_iter=150, max_leaf_nodes=8,
                                                        min_samples_leaf=100, l2_regularization=1.0,
                                                        random_state=0),
    }
    best = None
    for name, model in candidates.items():
        p_try = cross_val_predict(model, X, started, cv=folds, groups=account[at_risk],
                                  method="predict_proba")[:, 1]
        p_try = np.clip(p_try, 1e-3, 1 - 1e-3)
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


def programme_effect(rows: pd.DataFrame, programme: str, others: list[str] | None = None,
                     covariates: list[str] | None = None, categorical: tuple[str, ...] = ("segment",),
                     trim: float = 0.01, treated: pd.Series | None = None) -> dict:
    """Naive and adjusted effect of a CS programme on churn, as hazard ratios.

    Treatment switches on in the month after an account's first activity of the programme, so the
    time before it is not credited to it (no immortal-time bias). The naive hazard ratio compares
    treated and untreated account-months with no adjustment. The adjusted one is doubly robust: a
    discrete-time proportional-hazards model (cloglog) weighted by stabilised initiation weights
    (:func:`initiation_weights`) and adjusted for the same signals, for the other programmes' status and
    for annual renewals, with standard errors clustered by account.

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

    Returns
    -------
    dict
        ``naive_hr``, ``hr``, ``hr_low``, ``hr_high``, ``p_value``, ``max_smd_before``,
        ``max_smd_after``, ``evalue``, ``evalue_limit``, ``n_treated_accounts``, ``n_rows``,
        ``balance`` (DataFrame of SMDs before and after weighting).
    """
    covariates = [c for c in (covariates or PROGRAMME_COVARIATES) if c in rows]
    categorical = [c for c in categorical if c in rows]
    if treated is None:
        column = f"cs_{programme}_count"
        if column not in rows:
            raise ValueError(f"no activities of type {programme!r}")
        treated = rows[column].gt(0)
    elif "outcomes_achieved_share" in covariates and programme.startswith("outcome"):
        covariates = [c for c in covariates if c != "outcomes_achieved_share"]
    # Positivity: where a programme is never given (no CSM, no QBR), there is nothing to compare;
    # the estimate is for the kinds of accounts that do receive it, and says so.
    population = pd.Series(True, index=rows.index)
    restricted = []
    for c in [c for c in covariates + categorical if rows[c].nunique(dropna=True) <= 5]:
        levels = rows.loc[treated, c].dropna().unique()
        keep = rows[c].isin(levels) | rows[c].isna()
        if not keep.all():
            population &= keep
            restricted.append(f"{c} in {sorted(map(str, levels))}")
    rows = rows[population]
    treated = treated[population]
    weights, decisions = initiation_weights(rows, treated, covariates, categorical, trim)
    balance_on = [c for c in decisions.columns if c not in {"started", "p", "factor"}
                  and decisions[c].nunique(dropna=True) > 1]
    balance_before = standardised_mean_differences(decisions, decisions["started"], balance_on)
    # balance under the inverse-probability weights of each decision (what the propensity model
    # achieves; the analysis then truncates the cumulative weights at the `trim` quantiles)
    balance_after = standardised_mean_differences(decisions, decisions["started"], balance_on,
                                                  weights=1 / np.where(decisions["started"] == 1,
                                                                       decisions["p"], 1 - decisions["p"]))
    risk = rows["at_risk"].to_numpy()
    outcome_rows, weights = rows[risk], weights[risk]
    status = treated[risk].astype(float)
    naive = _cloglog(outcome_rows["label"], status.to_frame(programme), groups=outcome_rows["account_id"])
    X = _design(outcome_rows, covariates, categorical)
    X.insert(0, programme, status)
    for other in others or []:
        if other != programme and f"cs_{other}_count" in outcome_rows:
            X[f"{other}_status"] = outcome_rows[f"cs_{other}_count"].gt(0).astype(float)
    X["renewal"] = outcome_rows["renewal"]
    # the baseline hazard of a discrete-time model: one level per tenure band
    bands = pd.cut(outcome_rows["tenure_months"], [-1, 2, 5, 11, 23, np.inf],
                   labels=["0-2", "3-5", "6-11", "12-23", "24+"])
    X = X.join(pd.get_dummies(bands, prefix="tenure", drop_first=True, dtype=float))
    X = X.loc[:, X.std() > 0]
    fit = _cloglog(outcome_rows["label"], X, weights=weights, groups=outcome_rows["account_id"])
    coef, (low, high) = fit.params[programme], fit.conf_int().loc[programme]
    hr, hr_low, hr_high = float(np.exp(coef)), float(np.exp(low)), float(np.exp(high))
    if not (np.isfinite([hr, hr_low, hr_high]).all() and hr > 0):
        raise CSLabError(f"the effect model for {programme!r} did not converge (hazard ratio {hr}); "
                         "too few churns among treated accounts, or treatment separates churners")
    rare = rows["label"].mean() < 0.15
    ev = e_value(hr, hr_low, hr_high, rare_outcome=rare)
    return {
        "naive_hr": float(np.exp(naive.params[programme])), "hr": hr, "hr_low": hr_low, "hr_high": hr_high,
        "p_value": float(fit.pvalues[programme]), "max_smd_before": float(balance_before.abs().max()),
        "max_smd_after": float(balance_after.abs().max()), "evalue": ev["estimate"],
        "evalue_limit": ev["limit"], "n_treated_accounts": int(rows.loc[treated, "account_id"].nunique()),
        "n_rows": int(len(outcome_rows)), "population": "; ".join(restricted) or "all accounts",
        "propensity_model": decisions.attrs.get("propensity_model"),
        "balance": pd.DataFrame({"before": balance_before, "after": balance_after}),
    }
