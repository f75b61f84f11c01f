"""A synthetic B2B SaaS book with planted truth, for demos, teaching and tests.

The book is simulated month by month, vectorised across accounts:

* accounts sign up over the period (more later: the business grows), in three segments with their own
  sizes, seat prices and contract terms; annual accounts can churn only at renewal;
* a latent engagement per account drifts (a random walk with an account-specific drift) and drives
  usage (active users, logins, breadth of features used), support tickets, CSAT and outcomes;
* customer-success activities are given with selection bias, as in real life: onboarding goes to
  larger accounts, training and health checks to accounts whose usage looks weak, escalations to
  accounts with many tickets. CSMs decide in month ``m`` only on what the data showed by the end of
  month ``m - 1``, so adjusting for the previous month's observed signals can recover each
  programme's effect;
* the monthly churn hazard (complementary log-log, so ``exp(coef)`` is a hazard ratio) comes from
  planted effects of observable drivers, computed exactly as the kit's features are, and of each CS
  programme. An activity in calendar month ``m`` counts for the churn decision of month ``m + 1``
  onwards:

  - ``onboarding`` (one-time, at signup): direct hazard ratio 0.80 from the month after, and it
    raises the account's latent engagement by 0.35 in all, one third in each of the three months
    after the delivery month (so the month's own usage is not yet touched). Engagement raises seat
    utilisation, usage and features used, and lowers tickets, so onboarding also lowers churn and
    raises expansion *through* the planted drivers (mediation): its total effect is larger than
    its direct one;
  - ``training`` (one-time: at most one course per account, targeted at weak utilisation): direct
    hazard ratio 0.95 and engagement +0.30, spread the same way;
  - ``qbr`` (recurring, quarterly) and ``health_check`` (recurring, targeted at falling logins or
    many tickets): short-lived, hazard ratio 0.80 and 0.65 in the three months after a delivery
    (churn months ``m + 1 .. m + 3``), nothing after; overlapping deliveries do not stack;
  - ``escalation`` (recurring): no effect;

* expansion (seat adds, plan upgrades, add-on products) is more likely when seats are well used and
  usage grows; contraction when usage falls; some churned accounts come back.

Counterfactuals. The simulation is a state (:class:`SimState`) advanced by one function per step
(churn/expansion/contraction, reactivation, signups, CS activities, engagement and usage, outcomes),
driven by a :class:`Policy` that can override CS deliveries (force a programme on for everyone, off,
or stop all deliveries from a month on). Its random numbers are *common random numbers*: every draw
is a pure function of (stream, purpose, month, account[, slot]) (:class:`Noise`, a counter-based
generator), so two runs with the same stream and different policies share all noise and differ only
through the policy's consequences; a state can be copied at a month and continued, also past the
book's last month. Tables are only built by the run that writes the book.

``truth.json`` names the planted effects in the kit's feature names, each programme's *total* effect
on the churn hazard measured by simulation (programme forced on for every account vs never given, on
a reference population of 20,000 accounts; a pooled cloglog model by tenure band, segment and
renewal, so a *marginal* hazard ratio: besides mediation, it is pulled towards 1 because the frail
survive longer where a programme runs), and the true ROI of CS over the last 12 months, also by
simulation; ``truth_panel.csv`` holds the true monthly churn and expansion probabilities of every
account at risk, so the best achievable AUC of any model can be computed.

Usage draws are simple approximations: logins ~ Poisson by a rounded normal, features used ~
Binomial(20, p) by a rounded normal clipped to 0..20; tickets ~ Poisson by inversion.

Layout: :mod:`~cslab.data.synth.params` (the model's constants and :class:`BookParams`),
:mod:`~cslab.data.synth.state` (noise, policy, state, population), :mod:`~cslab.data.synth.steps`
(the monthly steps and :func:`simulate`), :mod:`~cslab.data.synth.book` (recording and the tables),
:mod:`~cslab.data.synth.truth` (the truth measured by simulation); :func:`generate` here runs them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cslab.data.synth.book import SyntheticBook, _Recorder, _tables  # noqa: F401
from cslab.data.synth.params import (  # noqa: F401
    _P,
    DEFAULT_PARAMS,
    EXPOSURE_MONTHS,
    OUTCOME_ACHIEVED_HR,
    PROGRAMME_DIRECT_HR,
    PROGRAMME_ENGAGEMENT_BOOST,
    PROGRAMME_EXPOSURE,
    PROGRAMME_HR,
    REFERENCE_ACCOUNTS,
    ROI_COST_WINDOW,
    ROI_VALUE_HORIZON,
    BookParams,
)
from cslab.data.synth.state import NATURAL, Noise, Policy, SimState, population  # noqa: F401
from cslab.data.synth.steps import _programme_log_hr, simulate  # noqa: F401
from cslab.data.synth.truth import _programme_totals, _roi_pairs, _roi_truth, _truth  # noqa: F401

__all__ = [
    "SyntheticBook",
    "BookParams",
    "generate",
    "write_synthetic",
    "PROGRAMME_HR",
    "PROGRAMME_DIRECT_HR",
    "PROGRAMME_EXPOSURE",
    "EXPOSURE_MONTHS",
    "PROGRAMME_ENGAGEMENT_BOOST",
    "OUTCOME_ACHIEVED_HR",
    "Policy",
    "Noise",
    "SimState",
    "population",
    "simulate",
]


# ---- the book -----------------------------------------------------------------------------------


def generate(
    n_accounts: int = 3000,
    n_months: int = 36,
    seed: int = 42,
    start: str = "2023-01-01",
    params: BookParams | None = None,
) -> SyntheticBook:
    """Simulate a B2B SaaS book month by month.

    Parameters
    ----------
    n_accounts : int
        Accounts that sign up over the period.
    n_months : int
        Months simulated from ``start``; the analysis date is the last day of the last month.
    seed : int
        Random seed: the same seed gives the same book.
    start : str
        First month.
    params : BookParams, optional
        The book's knobs (segment mix, churn and expansion intercepts, CS staffing, onboarding,
        cohort drift); None: the demo book's. Workshop scenarios are presets of these
        (:mod:`cslab.data.scenarios`).

    Returns
    -------
    SyntheticBook

    Examples
    --------
    >>> book = generate(n_accounts=200, n_months=12, seed=1)
    >>> sorted(book.tables)[:3]
    ['accounts', 'cs_activities', 'cs_costs']
    """
    rng = np.random.default_rng(seed)
    n, T = n_accounts, n_months
    t0 = pd.Timestamp(start).to_period("M").to_timestamp()
    month_starts = pd.date_range(t0, periods=T + 1, freq="MS")
    params = DEFAULT_PARAMS if params is None else params
    s = population(n, T, seed, extra_months=ROI_VALUE_HORIZON, rng=rng, params=params)
    rec = _Recorder(s, rng, month_starts.to_numpy())
    noise = Noise.for_seed(seed, n)
    w0 = max(0, T - ROI_COST_WINDOW)
    simulate(s, w0, noise, _recorder=rec)
    window_start = s.copy()  # the state at the start of the ROI cost window
    simulate(s, T, noise, _recorder=rec)
    tables = _tables(s, rec, T, month_starts)
    truth_panel = pd.concat(rec.truth, ignore_index=True)
    truth = _truth(seed, n, T, start, params)
    n_reference = max(n, REFERENCE_ACCOUNTS)
    hr, se = _programme_totals(T, start, n_reference, params)
    truth["programme_hr"], truth["programme_hr_se"] = dict(hr), dict(se)
    truth["programme_hr_method"]["reference_accounts"] = int(n_reference)
    truth.update(_roi_truth(window_start, seed, T, month_starts))
    book_costs = tables["cs_costs"]
    truth["roi_cost_book"] = float(book_costs["cost"].iloc[w0:T].sum())
    truth["realised"] = {
        "accounts": int(n),
        "subscription_lines": int(len(tables["subscriptions"])),
        "usage_rows": int(len(tables["usage"])),
        "monthly_churn_probability_mean": float(truth_panel["p_churn"].mean()),
    }
    return SyntheticBook(tables, truth, truth_panel)


def write_synthetic(
    out_dir: str | Path,
    n_accounts: int = 3000,
    n_months: int = 36,
    seed: int = 42,
    params: BookParams | None = None,
    file_format: str = "csv",
) -> Path:
    """Generate a book and write it (tables as ``file_format``, ``truth.json``, ``truth_panel.csv``)
    to ``out_dir``.

    Examples
    --------
    >>> write_synthetic("/tmp/book", n_accounts=300, n_months=12, seed=7)  # doctest: +SKIP
    """
    return generate(n_accounts, n_months, seed, params=params).write(out_dir, file_format=file_format)
