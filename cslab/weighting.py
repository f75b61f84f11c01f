"""Inverse-probability weighting and its diagnostics: propensities, weights, balance, weighted
survival and hazard ratios, common support, and the E-value.

Customer-success attention is not random: CSMs give it to large accounts and to accounts that look at
risk, so "covered accounts churn less (or more)" is not an effect. These functions adjust for the
observed pre-treatment signals with inverse-probability weighting, check the balance it achieves, and
say how strong an unmeasured confounder would have to be to explain an estimate away (the E-value).

Examples
--------
>>> round(e_value(0.5)["estimate"], 3)
3.414
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from cslab.data.panel import MISSING_LABEL

__all__ = [
    "propensity_scores",
    "ipw_weights",
    "standardised_mean_differences",
    "weighted_hazard_ratio",
    "weighted_kaplan_meier",
    "e_value",
    "common_support",
]


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
    encode = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value=MISSING_LABEL), OneHotEncoder(handle_unknown="ignore")
                ),
                categorical,
            ),
        ]
    )
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


def standardised_mean_differences(frame: pd.DataFrame, treated, covariates: list[str], weights=None) -> pd.Series:
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

    frame = pd.DataFrame(
        {
            "duration": np.asarray(durations, float),
            "event": np.asarray(events, int),
            "treated": np.asarray(treated, float),
            "w": np.ones(len(durations)) if weights is None else np.asarray(weights, float),
        }
    )
    fitter = CoxPHFitter().fit(frame, duration_col="duration", event_col="event", weights_col="w", robust=True)
    row = fitter.summary.loc["treated"]
    return {
        "hr": float(row["exp(coef)"]),
        "lower": float(row["exp(coef) lower 95%"]),
        "upper": float(row["exp(coef) upper 95%"]),
        "p": float(row["p"]),
    }


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
        return {
            labels[int(group)]: KaplanMeierFitter().fit(
                d[t == group], e[t == group], weights=w[t == group], label=labels[int(group)]
            )
            for group in (False, True)
        }


def e_value(hr: float, lower: float | None = None, upper: float | None = None, rare_outcome: bool = True) -> dict:
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
    return {
        "low": low,
        "high": high,
        "share_outside": float(outside.mean()),
        "share_started_outside": float(outside[started].mean()),
    }
