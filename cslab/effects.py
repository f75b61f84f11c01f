"""The person-month rows of CS programme analyses, and the effect of one state (a direct effect).

:func:`person_months` turns the one-month-horizon dataset into every account-month with its churn
risk set marked; :func:`programme_covariates` lists the signals adjusted for; :func:`sample_accounts`
draws the accounts a large book is analysed on. :func:`programme_effect` (adjusted for the same
month's signals: a direct effect) serves the effect of achieving a committed outcome, a state rather
than a delivery; programmes' total effects are :class:`cslab.programmes.ProgrammeEffects`.

Examples
--------
>>> dataset, scoring = cslab.features.build_dataset(data, panel, horizon_months=1)  # doctest: +SKIP
>>> rows = person_months(dataset, panel, scoring)  # doctest: +SKIP
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cslab.errors import CSLabError
from cslab.features import label_of
from cslab.weighting import e_value, standardised_mean_differences

__all__ = [
    "MIN_TREATED_ACCOUNTS",
    "MIN_CHURNED_ACCOUNTS",
    "PROGRAMME_COVARIATES",
    "programme_covariates",
    "person_months",
    "initiation_weights",
    "programme_effect",
    "sample_accounts",
]


#: Fewest accounts that must have received a programme before its effect is estimated.
MIN_TREATED_ACCOUNTS = 20
#: Fewest churned accounts a programme-effect analysis needs.
MIN_CHURNED_ACCOUNTS = 30

#: The signals CSM attention follows besides usage, used when the data has them.
PROGRAMME_COVARIATES = (
    "seat_utilisation",
    "tickets_90d",
    "csat_90d",
    "tenure_months",
    "outcomes_achieved_share",
    "employees",
    "seats",
    "has_csm",
)


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


def person_months(
    dataset: pd.DataFrame, panel: pd.DataFrame | None = None, scoring: pd.DataFrame | None = None
) -> pd.DataFrame:
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
            following, on=["account_id", "month"], how="left"
        )
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
    model = sm.GLM(
        np.asarray(y, float),
        sm.add_constant(X, has_constant="add"),
        family=family,
        var_weights=None if weights is None else np.asarray(weights, float),
    )
    kwargs = {"cov_type": "cluster", "cov_kwds": {"groups": pd.factorize(groups)[0]}} if groups is not None else {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # the cluster sandwich uses the weighted scores, which is what inverse-probability weights
        # need; statsmodels warns only that some other statistics ignore the weights
        warnings.filterwarnings("ignore", message="cov_type not fully supported")
        fit = model.fit(**kwargs)
    for item in caught:
        if "separation" in str(item.message).lower():
            raise CSLabError(
                "a signal separates the months with and without the event perfectly: too "
                "few events to estimate the effect"
            )
        warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
    return fit


def initiation_weights(
    rows: pd.DataFrame,
    treated: pd.Series,
    covariates: list[str],
    categorical: list[str],
    trim: float = 0.01,
    propensity_model: str | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
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
    X = _design(lagged[at_risk].assign(**{c: lagged.loc[at_risk, c] for c in categorical}), covariates, categorical)
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
        "boosted trees": HistGradientBoostingClassifier(
            learning_rate=0.05,
            max_iter=150,
            max_leaf_nodes=8,
            min_samples_leaf=100,
            l2_regularization=1.0,
            random_state=0,
        ),
    }
    if propensity_model is not None:
        candidates = {propensity_model: candidates[propensity_model]}
    best = None
    for name, model in candidates.items():
        p_try = cross_val_predict(model, X, started, cv=folds, groups=account[at_risk], method="predict_proba")[:, 1]
        p_try = np.clip(p_try, 1e-3, 1 - 1e-3)
        if len(candidates) == 1:
            best = (0.0, name, p_try)
            break
        used = p_try > 0.005
        smd = standardised_mean_differences(
            X[used],
            started[used],
            list(X.columns),
            weights=1 / np.where(started[used] == 1, p_try[used], 1 - p_try[used]),
        )
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
    decisions = X.assign(started=started.to_numpy(), p=p, factor=factor[at_risk].to_numpy())[decision.to_numpy()]
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


def _outcome_design(
    rows: pd.DataFrame,
    status: pd.Series,
    programme: str,
    others: list[str],
    covariates: list[str],
    categorical: list[str],
) -> pd.DataFrame:
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
        raise CSLabError(
            f"the {what} model for {programme!r} did not converge (hazard ratio {hr:.3g}); "
            "too few events among treated accounts, or treatment separates them"
        )
    return hr, hr_low, hr_high


def programme_effect(
    rows: pd.DataFrame,
    programme: str,
    others: list[str] | None = None,
    covariates: list[str] | None = None,
    categorical: tuple[str, ...] = ("segment",),
    trim: float = 0.01,
    treated: pd.Series | None = None,
    window_months: int = 12,
    propensity_model: str | None = None,
    details: bool = True,
) -> dict:
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
        raise CSLabError(
            f"{n_treated} accounts received {programme.replace('_', ' ')}: too few to estimate "
            f"its effect; at least {MIN_TREATED_ACCOUNTS} are needed"
        )
    # Positivity: where a programme is never given (no CSM, no QBR), there is nothing to compare;
    # the estimate is for the kinds of accounts that do receive it, and says so.
    population = pd.Series(True, index=rows.index)
    restricted = []
    for c in [c for c in covariates + categorical if rows[c].nunique(dropna=True) <= 5]:
        levels = rows.loc[treated, c].dropna().unique()
        keep = rows[c].isin(levels) | rows[c].isna()
        if not keep.all():
            population &= keep
            restricted.append(
                f"{label_of(c) if c != 'has_csm' else 'has a CSM'}: {', '.join(sorted(_level(v) for v in levels))}"
            )
    rows, treated = rows[population], treated[population]
    weights, decisions = initiation_weights(rows, treated, covariates, categorical, trim, propensity_model)
    others = list(others or [])
    window = rows["observation_date"] > rows["observation_date"].max() - pd.DateOffset(months=window_months)

    # -- churn -----------------------------------------------------------------------------------
    risk = rows["at_risk"].to_numpy()
    churn_rows, churn_w = rows[risk], weights[risk]
    status = treated[risk].astype(float)
    naive = (
        _cloglog(churn_rows["label"], status.to_frame(programme), groups=churn_rows["account_id"]) if details else None
    )
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
        "naive_hr": float(np.exp(naive.params[programme])) if details else None,
        "hr": hr,
        "hr_low": hr_low,
        "hr_high": hr_high,
        "p_value": float(fit.pvalues[programme]),
        "evalue": ev["estimate"],
        "evalue_limit": ev["limit"],
        "n_treated_accounts": int(rows.loc[treated, "account_id"].nunique()),
        "n_rows": int(len(churn_rows)),
        "population": "; ".join(restricted) or "all accounts",
        "propensity_model": decisions.attrs.get("propensity_model"),
        "retained_arr": float((churn_rows["arr"].to_numpy()[counted] * (p_untreated - p_treated)).sum()),
        "n_treated_window": int(
            churn_rows.loc[treated[risk].to_numpy() & window[risk].to_numpy(), "account_id"].nunique()
        ),
    }

    # -- expansion -------------------------------------------------------------------------------
    if "expanded" in rows:
        status_all = treated.astype(float)
        Xe = X_all
        naive_e = (
            _cloglog(rows["expanded"], status_all.to_frame(programme), groups=rows["account_id"]) if details else None
        )
        fit_e = _cloglog(rows["expanded"], Xe, weights=weights, groups=rows["account_id"])
        e_hr, e_low, e_high = _ratio(fit_e, programme, "expansion")
        on = treated.to_numpy() & window.to_numpy()
        q1, q0 = _predict(fit_e, Xe[on], programme), _predict(fit_e, Xe[on], programme, 0.0)
        typical = _typical_expansion(rows)
        amount = (
            rows.loc[on, "segment"].map(typical["by_segment"]).fillna(typical["all"]).to_numpy()
            if "segment" in rows
            else np.full(on.sum(), typical["all"])
        )
        account = rows.loc[on, "account_id"].to_numpy()

        def rate(q):  # an account's chance of at least one event over its months, averaged
            return float((1 - pd.Series(1 - q).groupby(account).prod()).mean()) if len(q) else float("nan")

        out.update(
            naive_expansion_hr=float(np.exp(naive_e.params[programme])) if details else None,
            expansion_hr=e_hr,
            expansion_hr_low=e_low,
            expansion_hr_high=e_high,
            expansion_arr=float(((q1 - q0) * amount).sum()),
            expansion_rate_treated=rate(q1),
            expansion_rate_untreated=rate(q0),
        )
    if details:
        balance_on = [
            c
            for c in decisions.columns
            if c not in {"started", "p", "factor"} and decisions[c].nunique(dropna=True) > 1
        ]
        before = standardised_mean_differences(decisions, decisions["started"], balance_on)
        # balance under each decision's inverse-probability weights (what the propensity model
        # achieves; the analysis then truncates the cumulative weights at the `trim` quantiles)
        after = standardised_mean_differences(
            decisions,
            decisions["started"],
            balance_on,
            weights=1 / np.where(decisions["started"] == 1, decisions["p"], 1 - decisions["p"]),
        )
        out.update(
            max_smd_before=float(before.abs().max()),
            max_smd_after=float(after.abs().max()),
            balance=pd.DataFrame({"before": before, "after": after}),
            decisions=decisions,
            curves=_standardised_survival(fit, X, churn_rows, rows, programme),
        )
    return out


def _level(value) -> str:
    return {1.0: "yes", 0.0: "no"}.get(value, str(value)) if isinstance(value, float) else str(value)


def _typical_expansion(rows: pd.DataFrame) -> dict:
    """Median size of past expansions (ARR), by segment and overall."""
    past = rows[rows.get("expanded", 0) == 1]
    overall = float(past["expansion_arr"].median()) if len(past) else 0.0
    by_segment = past.groupby("segment")["expansion_arr"].median() if "segment" in past else pd.Series(dtype=float)
    return {"all": overall, "by_segment": by_segment}


def _standardised_survival(
    fit, X: pd.DataFrame, churn_rows: pd.DataFrame, rows: pd.DataFrame, programme: str
) -> pd.DataFrame:
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
