"""Where retention is heading: the shifted-beta-geometric (sBG) model and cohort projections.

The sBG model of Fader & Hardie (2007, "How to Project Customer Retention", *Journal of Interactive
Marketing* 21(1)) treats each customer as having a constant probability θ of churning at each
renewal, with θ beta(α, β)-distributed across customers. Its survival function and retention rates
are closed-form:

* P(T = t) = B(α + 1, β + t − 1) / B(α, β)   (the customer's last period is t)
* S(t) = B(α, β + t) / B(α, β)               (still a customer after t renewals)
* r(t) = S(t) / S(t − 1) = (β + t − 1) / (α + β + t − 1)  (retention rises with age: the riskiest leave first)

Parameters are estimated by maximum likelihood (scipy), from the number of customers alive at the
start of each period of one cohort, or from individual right-censored durations (cohorts observed for
different lengths of time). The discounted expected residual lifetime (DERL) of Fader & Hardie (2010,
"Customer-Base Valuation in a Contractual Setting: The Perils of Ignoring Heterogeneity", *Marketing
Science* 29(1)) turns the fit into lifetime value.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import betaln, hyp2f1

from cslab.data.panel import active_in_month
from cslab.errors import StatisticalWarning

__all__ = [
    "ShiftedBetaGeometric",
    "period_discount_rate",
    "to_periods",
    "cohort_periods",
    "cohort_survival_table",
    "fit_cohorts",
    "project_cohorts",
    "lifetime_value",
    "lifetime_value_by_cohort",
]

MIN_CUSTOMERS = 30


class ShiftedBetaGeometric:
    """The shifted-beta-geometric model of customer retention (Fader & Hardie 2007).

    Parameters
    ----------
    n_starts : int, default 5
        Starting points of the optimiser (the log-likelihood can be flat in one direction).

    Attributes
    ----------
    alpha_, beta_ : float
        Fitted parameters of the beta distribution of churn probabilities.
    loglik_ : float
        Maximised log-likelihood.
    n_customers_ : int
        Customers in the fit.
    n_periods_ : int
        Longest duration observed.

    Examples
    --------
    >>> regular = [1000, 631, 468, 382, 326, 289, 262, 241]
    >>> model = ShiftedBetaGeometric().fit(regular)
    >>> round(model.alpha_, 3), round(model.beta_, 3)
    (0.704, 1.182)
    >>> round(float(model.retention_rate(8)), 3)
    0.923
    """

    def __init__(self, n_starts: int = 5):
        self.n_starts = n_starts

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, alive) -> ShiftedBetaGeometric:
        """Fit to one cohort: the number of customers alive at the start of periods 0..T.

        ``alive[0]`` is the cohort size; ``alive[0] - alive[1]`` customers left in period 1, and so
        on; ``alive[T]`` are still customers (right-censored).
        """
        alive = np.asarray(alive, dtype=float)
        if alive.ndim != 1 or len(alive) < 2:
            raise ValueError("alive needs the counts of at least two periods (0 and 1)")
        if (alive < 0).any() or (np.diff(alive) > 0).any():
            raise ValueError("alive must be non-negative and never increase")
        if alive[0] <= 0:
            raise ValueError("alive[0] (the cohort size) must be positive")
        lost = -np.diff(alive)
        censored = np.zeros_like(lost)
        censored[-1] = alive[-1]
        return self._fit_counts(lost, censored)

    def fit_censored(self, durations, observed) -> ShiftedBetaGeometric:
        """Fit to individual customers observed for different lengths of time.

        Parameters
        ----------
        durations : array of int
            For a churned customer, the period in which it left (1, 2, ...); for a customer still
            active, the number of renewals observed (0, 1, ...): it is known to last beyond that.
        observed : array of {0, 1}
            1 if the customer churned.
        """
        durations = np.asarray(durations, dtype=float)
        observed = np.asarray(observed).astype(bool)
        if len(durations) != len(observed) or len(durations) == 0:
            raise ValueError("durations and observed must have the same, non-zero length")
        if (durations < 0).any() or (observed & (durations < 1)).any() or (durations % 1 != 0).any():
            raise ValueError("durations must be whole periods; churned customers leave in period 1 or later")
        d = durations.astype(int)
        horizon = int(d.max()) if len(d) else 0
        lost = np.bincount(d[observed], minlength=horizon + 1)[1:].astype(float)
        censored = np.bincount(d[~observed], minlength=horizon + 1).astype(float)
        # censored at 0 carry no information (S(0) = 1)
        lost = np.pad(lost, (0, max(0, horizon - len(lost))))
        return self._fit_counts(
            lost[:horizon] if horizon else np.zeros(1),
            censored[1 : horizon + 1] if horizon else np.zeros(1),
            n_customers=len(d),
        )

    def _fit_counts(
        self, lost: np.ndarray, censored: np.ndarray, n_customers: int | None = None
    ) -> ShiftedBetaGeometric:
        """ML fit from churn counts in periods 1..T and censored counts after periods 1..T."""
        t = np.arange(1, len(lost) + 1, dtype=float)
        n = int(round(lost.sum() + censored.sum())) if n_customers is None else n_customers
        if lost.sum() == 0:
            raise ValueError("no customer churned: the sBG model cannot be estimated")
        if n < MIN_CUSTOMERS:
            warnings.warn(
                f"sBG fitted on {n} customers (fewer than {MIN_CUSTOMERS}): the estimates are fragile",
                StatisticalWarning,
                stacklevel=3,
            )

        def negll(log_params):
            a, b = np.exp(log_params)
            base = betaln(a, b)
            ll = (lost * (betaln(a + 1, b + t - 1) - base)).sum()
            ll += (censored * (betaln(a, b + t) - base)).sum()
            return -ll

        best = None
        for start in [(0.0, 0.0), (-1.0, 1.0), (1.0, 2.0), (-0.5, -0.5), (2.0, 3.0)][: self.n_starts]:
            result = optimize.minimize(negll, np.array(start), method="L-BFGS-B", bounds=[(-9, 9), (-9, 12)])
            if best is None or result.fun < best.fun:
                best = result
        self.alpha_, self.beta_ = (float(v) for v in np.exp(best.x))
        self.loglik_ = float(-best.fun)
        self.n_customers_ = n
        self.n_periods_ = len(lost)
        self.converged_ = bool(best.success)
        self._negll = negll
        return self

    # -- inference -------------------------------------------------------------------------------
    @property
    def summary(self) -> pd.DataFrame:
        """Estimates with standard errors from the inverse Hessian of the log-likelihood."""
        self._check_fitted()
        x = np.log([self.alpha_, self.beta_])
        hessian = _numerical_hessian(self._negll, x)
        se = np.full(2, np.nan)
        note = ""
        try:
            cov_log = np.linalg.inv(hessian)
            if np.all(np.diag(cov_log) > 0):
                se = np.sqrt(np.diag(cov_log)) * np.exp(x)  # delta method from the log scale
            else:
                note = "Hessian not positive definite: standard errors unavailable"
        except np.linalg.LinAlgError:
            note = "singular Hessian: standard errors unavailable"
        frame = pd.DataFrame(
            {"estimate": [self.alpha_, self.beta_], "se": se}, index=pd.Index(["alpha", "beta"], name="param")
        )
        frame["lower 95%"] = np.exp(x - 1.96 * se / np.exp(x))
        frame["upper 95%"] = np.exp(x + 1.96 * se / np.exp(x))
        frame.attrs.update(loglik=self.loglik_, n_customers=self.n_customers_, note=note)
        return frame

    def _check_fitted(self) -> None:
        if not hasattr(self, "alpha_"):
            raise RuntimeError("call fit() first")

    # -- queries ---------------------------------------------------------------------------------
    def survival_function(self, t) -> np.ndarray:
        """S(t) = B(α, β + t) / B(α, β): probability of still being a customer after t renewals."""
        self._check_fitted()
        t = np.asarray(t, dtype=float)
        return np.exp(betaln(self.alpha_, self.beta_ + t) - betaln(self.alpha_, self.beta_))

    def churn_probability(self, t) -> np.ndarray:
        """P(T = t) = B(α + 1, β + t − 1) / B(α, β): probability that period t is the last."""
        self._check_fitted()
        t = np.asarray(t, dtype=float)
        return np.exp(betaln(self.alpha_ + 1, self.beta_ + t - 1) - betaln(self.alpha_, self.beta_))

    def retention_rate(self, t) -> np.ndarray:
        """r(t) = (β + t − 1) / (α + β + t − 1): share of customers alive at t − 1 who renew at t."""
        self._check_fitted()
        t = np.asarray(t, dtype=float)
        return (self.beta_ + t - 1) / (self.alpha_ + self.beta_ + t - 1)

    def expected_alive(self, periods, n0: float = 1.0) -> np.ndarray:
        """Expected customers alive at the start of each period, from a cohort of ``n0``."""
        return n0 * self.survival_function(periods)

    def expected_lifetime(self) -> float:
        """Expected number of periods a new customer stays, E[T] = (α + β − 1) / (α − 1).

        Infinite when α <= 1: the beta distribution then puts so much mass near θ = 0 that the mean
        lifetime diverges (the median is still finite: use the survival function).
        """
        self._check_fitted()
        return float((self.alpha_ + self.beta_ - 1) / (self.alpha_ - 1)) if self.alpha_ > 1 else float("inf")

    def derl(self, discount_rate: float, renewals: int = 0) -> float:
        """Discounted expected residual lifetime (Fader & Hardie 2010, eq. 6).

        For a customer who has made ``renewals`` = n − 1 renewals, evaluated just before the
        decision to renew for the n-th time: the expected number of future payments, the first
        (the upcoming renewal) undiscounted and each later one discounted by one more period,

            DERL = Σ_{t≥n} S(t) / S(n−1) / (1 + d)^(t−n)
                 = (β + n − 1) / (α + β + n − 1) · ₂F₁(1, β + n; α + β + n; 1 / (1 + d)).

        Parameters
        ----------
        discount_rate : float
            Per-period rate d (see :func:`period_discount_rate` for a monthly rate from an annual one).
        renewals : int
            Renewals already made (n − 1).
        """
        self._check_fitted()
        if discount_rate <= 0:
            raise ValueError("discount_rate must be positive (the sum diverges without discounting when alpha <= 1)")
        n = renewals + 1
        a, b = self.alpha_, self.beta_
        return float((b + n - 1) / (a + b + n - 1) * hyp2f1(1.0, b + n, a + b + n, 1.0 / (1.0 + discount_rate)))


def _numerical_hessian(f, x: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian (two parameters: a few function calls)."""
    k = len(x)
    hessian = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            ei, ej = np.eye(k)[i] * step, np.eye(k)[j] * step
            hessian[i, j] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * step**2)
    return hessian


def period_discount_rate(annual_rate: float, period_months: int = 1) -> float:
    """Per-period rate equivalent to an annual one: (1 + annual)^(months / 12) − 1.

    Examples
    --------
    >>> round(period_discount_rate(0.10, 1), 5)
    0.00797
    """
    return (1.0 + annual_rate) ** (period_months / 12.0) - 1.0


# ------------------------------------------------------------------------------------------------
# Cohorts of the panel
# ------------------------------------------------------------------------------------------------
def _period_months(period: str) -> int:
    if period not in {"M", "Q", "Y"}:
        raise ValueError(f"period must be 'M', 'Q' or 'Y', not {period!r}")
    return {"M": 1, "Q": 3, "Y": 12}[period]


def to_periods(months, event, period_months: int = 1) -> np.ndarray:
    """Durations in months as whole sBG periods.

    A churned customer leaves in period ceil(months / p), and at the earliest in period 1 (a
    customer who churned within its first month left in period 1); an active one has completed
    floor(months / p) periods.

    Examples
    --------
    >>> to_periods([0, 4, 4, 12], [1, 1, 0, 0], period_months=3).tolist()
    [1, 2, 1, 4]
    """
    months = np.asarray(months, dtype=float)
    event = np.asarray(event).astype(bool)
    return np.where(event, np.maximum(1, np.ceil(months / period_months)), np.floor(months / period_months)).astype(int)


def cohort_periods(lifetimes: pd.DataFrame, last_month: pd.Timestamp, period: str = "M") -> pd.DataFrame:
    """Account lifetimes in whole periods, with each account's cohort label.

    A churned account leaves in period ceil(months / p); an active one has completed
    floor(months observed / p) periods (p = 1, 3 or 12 months).

    Parameters
    ----------
    lifetimes : DataFrame
        :func:`cslab.survival.account_lifetimes` (``cohort_month``, ``duration``, ``event``).
    last_month : Timestamp
        Last month of the panel.
    """
    p = _period_months(period)
    cohort = pd.PeriodIndex(lifetimes["cohort_month"], freq=period)
    event = lifetimes["event"].to_numpy().astype(bool)
    periods = to_periods(lifetimes["duration"], event, p)
    # a quarter cohort's youngest member sets how far the whole cohort is observed
    cohort_end = cohort.end_time.normalize().to_period("M").to_timestamp()
    observed = ((last_month.year - cohort_end.year) * 12 + last_month.month - cohort_end.month) // p
    return pd.DataFrame(
        {
            "account_id": lifetimes["account_id"].to_numpy(),
            "cohort": cohort.astype(str),
            "periods": periods,
            "event": event.astype(int),
            "observed_periods": np.asarray(observed),
        }
    )


def cohort_survival_table(panel: pd.DataFrame, period: str = "M") -> pd.DataFrame:
    """Customers still alive at the start of each period since signup, per signup cohort.

    An account is lost at its first churn (a later reactivation does not bring it back here);
    periods a cohort has not fully reached yet are NaN.

    Examples
    --------
    >>> cohort_survival_table(panel, period="Q").iloc[:3, :5]  # doctest: +SKIP
    """
    from cslab.survival import account_lifetimes

    periods = cohort_periods(account_lifetimes(panel), panel["month"].max(), period)
    horizon = int(periods["observed_periods"].max())
    ages = np.arange(horizon + 1)
    rows = {}
    for cohort, group in periods.groupby("cohort", sort=True):
        # alive at the start of period k: churned after period k, or never churned
        alive = (
            (
                (~group["event"].astype(bool).to_numpy()[:, None])
                | (group["periods"].to_numpy()[:, None] > ages[None, :])
            )
            .sum(axis=0)
            .astype(float)
        )
        alive[ages > group["observed_periods"].min()] = np.nan
        rows[cohort] = alive
    table = pd.DataFrame.from_dict(rows, orient="index", columns=ages)
    table.index.name, table.columns.name = "cohort", "periods since signup"
    return table


def fit_cohorts(panel: pd.DataFrame, period: str = "M", min_cohort_size: int = 30) -> dict:
    """Fit an sBG to every signup cohort and one pooled over all cohorts (right-censored).

    Returns
    -------
    dict
        ``"pooled"``: the pooled fit; ``"cohorts"``: cohort label -> fit (cohorts with at least
        ``min_cohort_size`` accounts, at least 2 periods observed and at least one churn);
        ``"periods"``: the per-account table used (:func:`cohort_periods`).

    Examples
    --------
    >>> fits = fit_cohorts(panel, period="Q")  # doctest: +SKIP
    >>> fits["pooled"].alpha_, fits["pooled"].beta_  # doctest: +SKIP
    """
    from cslab.survival import account_lifetimes

    periods = cohort_periods(account_lifetimes(panel), panel["month"].max(), period)
    pooled = ShiftedBetaGeometric().fit_censored(periods["periods"], periods["event"])
    cohorts = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        for cohort, group in periods.groupby("cohort", sort=True):
            if len(group) >= min_cohort_size and group["observed_periods"].min() >= 2 and group["event"].sum() > 0:
                cohorts[cohort] = ShiftedBetaGeometric().fit_censored(group["periods"], group["event"])
    return {"pooled": pooled, "cohorts": cohorts, "periods": periods}


def project_cohorts(
    panel: pd.DataFrame, period: str = "M", horizon: int = 12, holdout: int = 0, min_cohort_size: int = 30
) -> pd.DataFrame:
    """Actual and sBG-projected survival of each cohort, optionally testing on a held-out tail.

    Each cohort's model is fitted on its first ``observed - holdout`` periods only (later churns
    are treated as unknown), then projected ``horizon`` periods past what has been observed.

    Returns
    -------
    DataFrame
        Long: ``cohort``, ``period``, ``n0`` (cohort size), ``actual`` (share alive; NaN where not
        observed), ``fitted`` (model), ``held_out`` (observed but not used for fitting),
        ``fit_periods``.
    """
    from cslab.survival import account_lifetimes

    table = cohort_survival_table(panel, period)
    periods = cohort_periods(account_lifetimes(panel), panel["month"].max(), period)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        for cohort, group in periods.groupby("cohort", sort=True):
            observed = int(group["observed_periods"].min())
            cut = observed - holdout
            if len(group) < min_cohort_size or cut < 2:
                continue
            # censor everything after the cut: the model does not see the held-out tail
            late = group["periods"] > cut
            durations = np.where(late, cut, group["periods"])
            events = np.where(late, 0, group["event"])
            if events.sum() == 0:
                continue
            model = ShiftedBetaGeometric().fit_censored(durations, events)
            ages = np.arange(observed + horizon + 1)
            actual = table.loc[cohort].reindex(ages).to_numpy() / table.loc[cohort, 0]
            rows.append(
                pd.DataFrame(
                    {
                        "cohort": cohort,
                        "period": ages,
                        "n0": int(table.loc[cohort, 0]),
                        "actual": actual,
                        "fitted": model.survival_function(ages),
                        "held_out": (ages > cut) & (ages <= observed),
                        "fit_periods": cut,
                        "alpha": model.alpha_,
                        "beta": model.beta_,
                    }
                )
            )
    return (
        pd.concat(rows, ignore_index=True)
        if rows
        else pd.DataFrame(
            columns=["cohort", "period", "n0", "actual", "fitted", "held_out", "fit_periods", "alpha", "beta"]
        )
    )


def lifetime_value(
    mrr: float,
    margin: float,
    model: ShiftedBetaGeometric,
    discount_rate: float,
    period_months: int = 1,
    renewals: int | None = None,
) -> float:
    """Customer lifetime value = MRR × months per period × margin × expected discounted payments.

    Parameters
    ----------
    mrr : float
        Monthly recurring revenue of the customer.
    margin : float
        Gross margin (0..1).
    model : ShiftedBetaGeometric
        Fitted on periods of ``period_months`` months.
    discount_rate : float
        **Annual** rate; converted to the model's period with :func:`period_discount_rate`.
    renewals : int, optional
        ``None``: a new customer, valued at acquisition: its first payment plus DERL(d, 0)
        discounted by one period. An integer: the residual value of an existing customer who has
        made that many renewals, just before the next renewal decision (DERL).

    Examples
    --------
    >>> model = ShiftedBetaGeometric().fit([1000, 631, 468, 382, 326, 289, 262, 241])
    >>> round(lifetime_value(100.0, 0.8, model, 0.10, period_months=12))  # doctest: +SKIP
    """
    d = period_discount_rate(discount_rate, period_months)
    payment = mrr * period_months * margin
    if renewals is None:
        return payment * (1.0 + model.derl(d, 0) / (1.0 + d))
    return payment * model.derl(d, renewals)


def lifetime_value_by_cohort(
    panel: pd.DataFrame, fits: dict, margin: float, discount_rate: float, period: str = "M"
) -> pd.DataFrame:
    """Residual lifetime value of an active customer of each cohort (its survivors' next renewals).

    A cohort observed for k periods has survivors who have made k renewals; their value is the
    cohort's mean MRR × margin × DERL(d, k), with the cohort's own sBG fit where it has one and the
    pooled fit otherwise.
    """
    p = _period_months(period)
    now = active_in_month(panel)
    label = pd.PeriodIndex(now["cohort_month"], freq=period).astype(str)
    by_cohort = now.groupby(label)["mrr"].agg(["size", "mean"])
    periods = fits["periods"].groupby("cohort")["observed_periods"].min()
    d = period_discount_rate(discount_rate, p)
    rows = []
    for cohort, row in by_cohort.iterrows():
        model = fits["cohorts"].get(cohort, fits["pooled"])
        age = int(periods.get(cohort, 0))
        derl = model.derl(d, age)
        rows.append(
            {
                "cohort": cohort,
                "n_active": int(row["size"]),
                "mrr_mean": row["mean"],
                "renewals": age,
                "derl_periods": derl,
                "clv": row["mean"] * p * margin * derl,
                "model": "cohort" if cohort in fits["cohorts"] else "pooled",
            }
        )
    return pd.DataFrame(rows)
