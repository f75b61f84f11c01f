"""Survival of customers: account lifetimes, Kaplan–Meier curves and log-rank tests (lifelines).

Durations are in months on the panel's discrete clock: an account that pays from its first month
and churns (stops paying) in month ``t`` of its tenure has ``duration = t`` and ``event = 1``; an
account still paying in the last month observed, at tenure ``t``, has ``duration = t`` and
``event = 0`` (right-censored: it is known to have lasted beyond ``t``). So "survival at 12" is the
share of customers still paying 12 months after their first payment.
"""

from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test

from cslab.errors import StatisticalWarning

__all__ = ["account_lifetimes", "kaplan_meier", "survival_at", "median_lifetime", "logrank_by",
           "MIN_GROUP_SIZE", "MIN_GROUP_EVENTS"]

MIN_GROUP_SIZE = 30
MIN_GROUP_EVENTS = 5


def account_lifetimes(panel: pd.DataFrame) -> pd.DataFrame:
    """One row per account that ever paid: its first lifetime's duration and whether it churned.

    Only the first lifetime counts: an account that churns and later returns is a churn at its
    first churn (a reactivation does not start a second life here). Churn is timed as in the panel,
    at the end of the paid period.

    Parameters
    ----------
    panel : DataFrame
        The monthly account panel (:func:`cslab.panel`).

    Returns
    -------
    DataFrame
        ``account_id``, ``cohort_month``, ``duration`` (months), ``event`` (1 = churned), ``mrr``
        (first month's MRR) and the account attributes (as in its first paid month).

    Examples
    --------
    >>> lifetimes = account_lifetimes(cslab.panel(cslab.load("data/demo")))  # doctest: +SKIP
    >>> lifetimes[["duration", "event"]].describe()  # doctest: +SKIP
    """
    paid = panel[panel["tenure_months"].notna()]
    first_churn = paid[paid["movement"].eq("churn")].groupby("account_id")["tenure_months"].min()
    last = paid.groupby("account_id")["tenure_months"].max()
    first = paid[paid["tenure_months"].eq(0)].drop_duplicates("account_id").set_index("account_id")
    event = first_churn.reindex(last.index).notna()
    out = pd.DataFrame({
        "account_id": last.index,
        "duration": np.where(event, first_churn.reindex(last.index), last).astype(float),
        "event": event.astype(int).to_numpy(),
    })
    skip = {"month", "movement", "movement_mrr", "tenure_months", "lifetime", "active", "seats"}
    skip |= {c for c in first.columns if c.startswith(("usage_", "cs_", "outcomes_"))
             or c in {"tickets", "csat"}}
    attributes = first[[c for c in first.columns if c not in skip]]
    return out.join(attributes, on="account_id").reset_index(drop=True)


def _check_groups(lifetimes: pd.DataFrame, by: str | None) -> None:
    groups = lifetimes.groupby(by) if by else [("all", lifetimes)]
    for name, group in groups:
        if len(group) < MIN_GROUP_SIZE or group["event"].sum() < MIN_GROUP_EVENTS:
            warnings.warn(f"{by or 'all'}={name}: {len(group)} customers, {int(group['event'].sum())} "
                          f"churned; at least {MIN_GROUP_SIZE} customers and {MIN_GROUP_EVENTS} churns "
                          "are needed for a stable survival curve", StatisticalWarning, stacklevel=3)


def kaplan_meier(lifetimes: pd.DataFrame, by: str | None = None,
                 alpha: float = 0.05) -> dict[str, KaplanMeierFitter]:
    """Kaplan–Meier survival curves, overall or one per group.

    The product-limit estimate S(t) = Π over churn times t_i <= t of (1 - d_i / n_i), with d_i
    customers churning at t_i out of n_i still at risk; confidence bands from lifelines
    (exponential Greenwood).

    Parameters
    ----------
    lifetimes : DataFrame
        ``duration`` and ``event`` (:func:`account_lifetimes`, or a snapshot customers table).
    by : str, optional
        Column to split by (e.g. ``segment``); missing values form a group "(missing)".
    alpha : float
        1 - confidence level of the bands.

    Returns
    -------
    dict
        Group name -> fitted ``KaplanMeierFitter`` (key ``"all"`` without ``by``).

    Examples
    --------
    >>> fitters = kaplan_meier(lifetimes, by="segment")  # doctest: +SKIP
    """
    _check_groups(lifetimes, by)
    if by is None:
        return {"all": KaplanMeierFitter(alpha=alpha).fit(lifetimes["duration"], lifetimes["event"],
                                                          label="all")}
    keys = lifetimes[by].astype(object).where(lifetimes[by].notna(), "(missing)")
    return {str(name): KaplanMeierFitter(alpha=alpha).fit(group["duration"], group["event"],
                                                          label=str(name))
            for name, group in lifetimes.groupby(keys, sort=True)}


def survival_at(fitters: KaplanMeierFitter | Mapping[str, KaplanMeierFitter],
                times: tuple[float, ...] = (12, 24)) -> pd.DataFrame:
    """Survival and its confidence band at given times; NaN beyond the last observed time.

    Returns
    -------
    DataFrame
        Indexed by time for one fitter, by (group, time) for several, with ``survival``,
        ``lower`` and ``upper``.

    Examples
    --------
    >>> survival_at(kaplan_meier(lifetimes)["all"], times=(12, 24))  # doctest: +SKIP
    """
    if isinstance(fitters, KaplanMeierFitter):
        fitter = fitters
        horizon = fitter.durations.max()
        sf = fitter.survival_function_at_times(list(times)).to_numpy()
        band = fitter.confidence_interval_survival_function_
        rows = []
        for t, s in zip(times, sf):
            if t > horizon:  # not observed that long: no extrapolation
                rows.append((t, np.nan, np.nan, np.nan))
                continue
            at = band[band.index <= t].iloc[-1]
            rows.append((t, float(s), float(at.iloc[0]), float(at.iloc[1])))
        return pd.DataFrame(rows, columns=["time", "survival", "lower", "upper"]).set_index("time")
    parts = {name: survival_at(f, times) for name, f in fitters.items()}
    frame = pd.concat(parts, names=["group", "time"])
    return frame.reset_index("time") if len(times) > 1 else frame.droplevel("time")


def median_lifetime(fitter: KaplanMeierFitter) -> dict[str, float | None]:
    """Months until half of the customers have churned, with its confidence interval.

    Returns ``{"median": None, ...}`` when survival never falls to 50% (not reached): the honest
    answer, not infinity and not the last time observed.

    Examples
    --------
    >>> median_lifetime(kaplan_meier(lifetimes)["all"])  # doctest: +SKIP
    {'median': None, 'lower': None, 'upper': None}
    """
    from lifelines.utils import median_survival_times

    def finite(value):
        value = float(value)
        return None if not np.isfinite(value) else value

    median = finite(fitter.median_survival_time_)
    ci = median_survival_times(fitter.confidence_interval_survival_function_)
    return {"median": median, "lower": finite(ci.iloc[0, 0]), "upper": finite(ci.iloc[0, 1])}


def logrank_by(lifetimes: pd.DataFrame, by: str) -> dict:
    """Multivariate log-rank test: do the survival curves of the groups differ by more than chance?

    Returns
    -------
    dict
        ``test_statistic`` (chi-squared), ``p_value``, ``degrees_of_freedom``, ``groups``.

    Examples
    --------
    >>> logrank_by(lifetimes, "segment")["p_value"] < 0.05  # doctest: +SKIP
    True
    """
    keys = lifetimes[by].astype(object).where(lifetimes[by].notna(), "(missing)").astype(str)
    result = multivariate_logrank_test(lifetimes["duration"], keys, lifetimes["event"])
    return {"test_statistic": float(result.test_statistic), "p_value": float(result.p_value),
            "degrees_of_freedom": int(result.degrees_of_freedom),
            "groups": sorted(keys.unique().tolist())}
