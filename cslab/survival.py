"""Survival of customers: account lifetimes, Kaplan–Meier curves and log-rank tests (lifelines).

Durations are in months on the panel's discrete clock (month-end snapshots, churn counted at the
end of the paid period). An account whose first paid month is tenure 0 and that churns in month
``t`` of its tenure (the first month-end at which it no longer pays) paid for ``t`` months:
``duration = t``, ``event = 1``. An account still paying in the panel's last month, at tenure
``t``, is known to have survived every month-end up to ``t`` and nothing beyond: ``duration = t``,
``event = 0`` (right-censored). So "survival at 12" is the share of customers still paying
12 months after their first payment.

Snapshot mode: every function that takes ``lifetimes`` also takes a customers table with
``duration`` and ``event`` columns (:func:`cslab.load_customers` with ``duration_col``); durations
are then in the table's own unit.

Examples
--------
>>> from cslab import survival
>>> lifetimes = survival.account_lifetimes(cslab.panel(cslab.load("data/demo")))  # doctest: +SKIP
>>> fitter = survival.kaplan_meier(lifetimes)["all"]  # doctest: +SKIP
>>> survival.survival_at(fitter, times=(12, 24))  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test
from lifelines.utils import median_survival_times

from cslab.data.panel import label_missing
from cslab.errors import StatisticalWarning

__all__ = [
    "account_lifetimes",
    "kaplan_meier",
    "survival_at",
    "median_lifetime",
    "logrank_by",
    "MIN_GROUP_SIZE",
    "MIN_GROUP_EVENTS",
]

#: Below these (customers, churns) per group, estimates come with a StatisticalWarning.
MIN_GROUP_SIZE = 30
MIN_GROUP_EVENTS = 5

# monthly activity columns of the panel: not attributes of an account's start
_ACTIVITY = ("usage_", "cs_", "outcomes_")
_PANEL_ONLY = {"month", "movement", "movement_mrr", "tenure_months", "lifetime", "active", "seats", "tickets", "csat"}


def account_lifetimes(panel: pd.DataFrame) -> pd.DataFrame:
    """One row per account that ever paid: its first lifetime's duration and whether it churned.

    * duration = months from the account's ``cohort_month`` (its first paid month) to its first
      churn, which is the number of months it paid before leaving; for an account that has not
      churned, its tenure in the panel's last month (right-censored: it lasted at least that long);
    * event = 1 if the account churned in its first lifetime, else 0.

    Only the first lifetime counts: an account that churns and later returns is a churn at its
    first churn (a reactivation does not start a second life here). Churn is timed as in the
    panel, at the end of the paid period. Accounts that never paid (only $0 months) are left out.

    Parameters
    ----------
    panel : DataFrame
        The monthly account panel (:func:`cslab.panel`).

    Returns
    -------
    DataFrame
        ``account_id``, ``duration`` (months, float), ``event`` (1 = churned), then the account's
        columns as in its first paid month: ``cohort_month``, ``mrr`` (first month's MRR), ``plan``
        and ``billing_period_months`` when present, and the account attributes (``segment``, ...).
        Monthly activity columns (usage, tickets, CS activities, outcomes) are left out.

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
    out = pd.DataFrame(
        {
            "account_id": last.index,
            "duration": np.where(event, first_churn.reindex(last.index), last).astype(float),
            "event": event.astype(int).to_numpy(),
        }
    )
    attributes = [c for c in first.columns if c not in _PANEL_ONLY and not c.startswith(_ACTIVITY)]
    return out.join(first[attributes], on="account_id").reset_index(drop=True)


def _checked(lifetimes: pd.DataFrame) -> pd.DataFrame:
    """The lifetimes, or a clear error when durations or events are missing."""
    missing = [c for c in ("duration", "event") if c not in lifetimes]
    if missing:
        raise ValueError(
            f"survival analysis needs a {' and an '.join(missing)} column (a snapshot "
            "customers table needs duration_col when it is loaded)"
        )
    bad = lifetimes["duration"].isna() | lifetimes["event"].isna()
    if bad.any():
        raise ValueError(f"{int(bad.sum())} rows have no duration or no event")
    return lifetimes


def _group_keys(lifetimes: pd.DataFrame, by: str) -> pd.Series:
    """Group labels as text; missing values form the group "(missing)"."""
    return label_missing(lifetimes[by]).astype(str)


def _check_groups(lifetimes: pd.DataFrame, by: str | None, what: str) -> None:
    """One StatisticalWarning naming every group too small for a stable estimate."""
    keys = _group_keys(lifetimes, by) if by else pd.Series("all", index=lifetimes.index)
    counts = lifetimes["event"].astype(int).groupby(keys).agg(["size", "sum"])
    small = counts[(counts["size"] < MIN_GROUP_SIZE) | (counts["sum"] < MIN_GROUP_EVENTS)]
    if len(small):
        groups = "; ".join(
            f"{by or 'all'}={name}: {int(row['size'])} customers, {int(row['sum'])} churned"
            for name, row in small.iterrows()
        )
        warnings.warn(
            f"{what} rests on small groups ({groups}); at least {MIN_GROUP_SIZE} "
            f"customers and {MIN_GROUP_EVENTS} churns per group are needed for a stable "
            "estimate",
            StatisticalWarning,
            stacklevel=3,
        )


def kaplan_meier(lifetimes: pd.DataFrame, by: str | None = None, alpha: float = 0.05) -> dict[str, KaplanMeierFitter]:
    """Kaplan–Meier survival curves, overall or one per group.

    The product-limit estimate: S(t) = product over the churn times t_i <= t of (1 − d_i / n_i),
    where d_i customers churned at t_i out of the n_i still at risk (observed at least until
    t_i). A censored customer counts among those at risk until its last observed month, then
    drops out without counting as a churn. Confidence bands from lifelines (exponential
    Greenwood).

    Parameters
    ----------
    lifetimes : DataFrame
        ``duration`` and ``event`` (:func:`account_lifetimes`, or a snapshot customers table).
    by : str, optional
        Column to split by (e.g. ``segment``); missing values form a group "(missing)".
    alpha : float, default 0.05
        1 − confidence level of the bands.

    Returns
    -------
    dict
        Group name -> fitted ``KaplanMeierFitter`` labelled with that name (key ``"all"``
        without ``by``). Warns (:class:`~cslab.errors.StatisticalWarning`) when a group has
        fewer than ``MIN_GROUP_SIZE`` customers or ``MIN_GROUP_EVENTS`` churns.

    Examples
    --------
    >>> fitters = kaplan_meier(lifetimes, by="segment")  # doctest: +SKIP
    >>> fitters["SMB"].survival_function_.tail(1)  # doctest: +SKIP
    """
    _check_groups(_checked(lifetimes), by, "Kaplan–Meier")
    if by is None:
        return {"all": KaplanMeierFitter(alpha=alpha).fit(lifetimes["duration"], lifetimes["event"], label="all")}
    return {
        name: KaplanMeierFitter(alpha=alpha).fit(group["duration"], group["event"], label=name)
        for name, group in lifetimes.groupby(_group_keys(lifetimes, by), sort=True)
    }


def survival_at(
    fitters: KaplanMeierFitter | Mapping[str, KaplanMeierFitter], times: tuple[float, ...] = (12, 24)
) -> pd.DataFrame:
    """Survival and its confidence band at given times; NaN beyond the last observed time.

    The Kaplan–Meier curve is a step function: survival at t is its value at the last churn time
    at or before t. Beyond the longest duration observed (churned or censored) nothing is known,
    so the answer is NaN rather than the last value carried forward.

    Parameters
    ----------
    fitters : KaplanMeierFitter or dict of them
        One fitted curve, or the dict returned by :func:`kaplan_meier`.
    times : tuple of float, default (12, 24)

    Returns
    -------
    DataFrame
        ``survival``, ``lower``, ``upper``: indexed by ``time`` for one fitter; for a dict,
        indexed by ``group`` (with a ``time`` column when several times are asked).

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
        for t, s in zip(times, sf):  # a handful of times, not accounts
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
    """Median lifetime: the first time at which survival falls to 50% or below, with its CI.

    Returns ``{"median": None, ...}`` when survival never falls to 50% (not reached): the honest
    answer, not infinity and not the last time observed. The bounds come from where the
    confidence band crosses 50% (lifelines' ``median_survival_times``); a bound is None where
    the band does not cross it.

    Parameters
    ----------
    fitter : KaplanMeierFitter

    Returns
    -------
    dict
        ``median``, ``lower``, ``upper`` (months, or None).

    Examples
    --------
    >>> median_lifetime(kaplan_meier(lifetimes)["all"])  # doctest: +SKIP
    {'median': None, 'lower': 31.0, 'upper': None}
    """

    def finite(value):
        value = float(value)
        return value if np.isfinite(value) else None

    ci = median_survival_times(fitter.confidence_interval_survival_function_)
    return {
        "median": finite(fitter.median_survival_time_),
        "lower": finite(ci.iloc[0, 0]),
        "upper": finite(ci.iloc[0, 1]),
    }


def logrank_by(lifetimes: pd.DataFrame, by: str) -> dict:
    """Multivariate log-rank test: do the survival curves of the groups differ by more than chance?

    At every churn time, each group's observed churns are compared with those expected if all
    groups shared one curve (expected = churns at that time x the group's share of those at
    risk); the statistic sums the squared differences (weighted by their covariance) and is
    chi-squared with (number of groups − 1) degrees of freedom under the null.

    Parameters
    ----------
    lifetimes : DataFrame
        ``duration``, ``event`` and the ``by`` column.
    by : str
        Column defining the groups (missing values form "(missing)").

    Returns
    -------
    dict
        ``test_statistic`` (chi-squared), ``p_value``, ``degrees_of_freedom``, ``groups``.
        Warns (:class:`~cslab.errors.StatisticalWarning`) when a group has fewer than
        ``MIN_GROUP_SIZE`` customers or ``MIN_GROUP_EVENTS`` churns.

    Examples
    --------
    >>> logrank_by(lifetimes, "segment")["p_value"] < 0.05  # doctest: +SKIP
    True
    """
    keys = _group_keys(_checked(lifetimes), by)
    if keys.nunique() < 2:
        raise ValueError(f"the log-rank test needs at least two groups of {by}; found {keys.nunique()}")
    _check_groups(lifetimes, by, "the log-rank test")
    result = multivariate_logrank_test(lifetimes["duration"], keys, lifetimes["event"])
    return {
        "test_statistic": float(result.test_statistic),
        "p_value": float(result.p_value),
        "degrees_of_freedom": int(result.degrees_of_freedom),
        "groups": sorted(keys.unique().tolist()),
    }
