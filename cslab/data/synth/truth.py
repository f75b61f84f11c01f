"""The planted truth measured by simulation: programmes' total effects (forced on/off worlds) and
the ROI of the last window (common-random-number pairs of worlds)."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd

from cslab.data.synth.params import (
    ACTIVITIES,
    BOOST_MONTHS,
    CHURN_EFFECTS,
    CSM_MONTHLY_COST,
    DEFAULT_PARAMS,
    EXPANSION_EFFECTS,
    EXPOSURE_MONTHS,
    HOURLY_COST,
    OUTCOME_ACHIEVED_HR,
    PROGRAMME_DIRECT_HR,
    PROGRAMME_ENGAGEMENT_BOOST,
    PROGRAMME_EXPOSURE,
    REFERENCE_SEED,
    ROI_GROSS_MARGIN,
    ROI_PAIRS,
    ROI_VALUE_HORIZON,
    SEGMENTS,
    TENURE_BANDS,
    BookParams,
)
from cslab.data.synth.state import Noise, Policy, SimState, population
from cslab.data.synth.steps import simulate

# ---- truth by simulation ------------------------------------------------------------------------


def _hazard_cells(s: SimState, T: int, world_on: int) -> tuple[np.ndarray, np.ndarray]:
    """Trials and churns per cell (exposed x tenure band x segment x renewal) of months at risk."""
    mi, ii = np.nonzero(s.at_risk[:T])
    band = np.searchsorted(TENURE_BANDS, mi - s.signup_m[ii], side="right")
    exposed = world_on * (mi > s.signup_m[ii])  # exposure begins the month after signup
    cell = ((exposed * 5 + band) * 3 + s.seg[ii]) * 2 + s.renewal[mi, ii]
    return (np.bincount(cell, minlength=60).astype(float), np.bincount(cell, weights=s.churned[mi, ii], minlength=60))


def _fit_exposure_hr(on: SimState, off: SimState, T: int) -> tuple[float, float]:
    """Pooled discrete-time cloglog model of churn on [exposed, tenure band, segment, renewal].

    Fitted on cell totals, which gives the same estimates and standard errors as the account-month
    rows. Returns the log hazard ratio of exposure and its standard error.
    """
    from statsmodels.genmod.families import Binomial
    from statsmodels.genmod.families.links import CLogLog
    from statsmodels.genmod.generalized_linear_model import GLM

    trials, events = (a + b for a, b in zip(_hazard_cells(on, T, 1), _hazard_cells(off, T, 0)))
    cells = np.flatnonzero(trials > 0)
    renewal, rest = cells % 2, cells // 2
    seg, rest = rest % 3, rest // 3
    band, exposed = rest % 5, rest // 5
    X = np.column_stack(
        [np.ones(len(cells)), exposed, *(band == b for b in range(1, 5)), seg == 1, seg == 2, renewal]
    ).astype(float)
    X = X[:, np.r_[True, X[:, 1:].std(axis=0) > 0]]  # drop a band nobody is in (short books)
    y = np.column_stack([events[cells], trials[cells] - events[cells]])
    with warnings.catch_warnings():  # a book of a few months can leave a cell without churn
        warnings.simplefilter("ignore")
        fit = GLM(y, X, family=Binomial(link=CLogLog())).fit()
    return float(fit.params[1]), float(fit.bse[1])


@functools.lru_cache(maxsize=8)
def _programme_totals(
    n_months: int, start: str, n_reference: int, params: BookParams = DEFAULT_PARAMS
) -> tuple[tuple, tuple]:
    """Each programme's total hazard ratio, by simulation: forced on for everyone vs never given.

    A property of the generating model (not of one book): a reference population of ``n_reference``
    accounts with a constant seed, the other programmes following their natural policy in both
    worlds, common random numbers. ``start`` does not change the simulation (only the calendar).
    """
    noise = Noise.for_seed(REFERENCE_SEED, n_reference)
    hr, se = [], []
    for name in ACTIVITIES:
        # the same accounts in both worlds (same seed), fresh arrays rather than copies
        on, off = (
            simulate(
                population(n_reference, n_months, REFERENCE_SEED, params=params),
                n_months,
                noise,
                Policy(**{force: {name}}),
            )
            for force in ("force_on", "force_off")
        )
        coef, bse = _fit_exposure_hr(on, off, n_months)
        hr.append((name, round(float(np.exp(coef)), 4)))
        se.append((name, round(bse, 4)))
    return tuple(hr), tuple(se)


def _roi_pairs(window_start: SimState, seed: int, T: int, pairs: int) -> np.ndarray:
    """Common-random-number pairs of worlds from the start of the cost window.

    World A: the natural policy through the window, then no deliveries; world B: the same random
    numbers, no deliveries from the window's first month. Returns (value, cost, treated accounts)
    per pair. Accounts do not interact, so the pairs are simulated as blocks of one population (each
    block with its own random stream), A only for the accounts that can be active from the window
    on and B only for the accounts A treated: every other account is the same in both worlds.
    """
    w0, end, s = window_start.month, T + ROI_VALUE_HORIZON, window_start
    keep = np.flatnonzero(s.active | (s.signup_m >= w0) | ((s.churn_m >= 0) & (s.churn_m >= w0 - 12)))
    order = np.argsort(np.tile(s.signup_m[keep], pairs), kind="stable")  # signups in order
    source = np.tile(keep, pairs)[order]  # account of the window start
    block = np.repeat(np.arange(pairs), len(keep))[order]  # pair
    noise = Noise.concat([Noise.for_seed(seed, s.n, stream=1 + k).subset(keep) for k in range(pairs)]).subset(order)
    a = simulate(s.subset(source), end, noise, Policy(stop_from=T))
    given = a.delivered[:, w0:T].any(axis=0)  # (month in window, account)
    treated = np.flatnonzero(given.any(axis=0))
    b = simulate(s.subset(source[treated]), end, noise.subset(treated), Policy(stop_from=w0))
    first = w0 + np.argmax(given[:, treated], axis=0)  # first delivery month in the window
    gain = np.vstack([np.zeros(len(treated)), np.cumsum(a.mrr[:, treated] - b.mrr, axis=0)])
    cols = np.arange(len(treated))  # gain[t]: sum over months before t
    value = ROI_GROSS_MARGIN * (gain[first + 1 + ROI_VALUE_HORIZON, cols] - gain[first + 1, cols])
    hours = np.stack([a.hours[w0:T, block == k].sum(axis=1) for k in range(pairs)])
    cost = (a.n_csm * CSM_MONTHLY_COST + HOURLY_COST * hours).round(0).sum(axis=1)
    return np.column_stack(
        [
            np.bincount(block[treated], weights=value, minlength=pairs),
            cost,
            np.bincount(block[treated], minlength=pairs),
        ]
    )


def _roi_truth(
    window_start: SimState, seed: int, T: int, month_starts: pd.DatetimeIndex, pairs: int = ROI_PAIRS
) -> dict:
    """The true ROI of CS over the last 12 months of the book, by simulation (see truth["roi_note"])."""
    w0 = window_start.month
    values, costs, treated = _roi_pairs(window_start, seed, T, pairs).T
    per_pair = (values - costs) / costs
    months = pd.DatetimeIndex(month_starts)
    return {
        "roi": float(values.mean() / costs.mean() - 1),
        "roi_value": float(values.mean()),
        "roi_cost": float(costs.mean()),
        "roi_gross_margin": ROI_GROSS_MARGIN,
        "roi_value_horizon_months": ROI_VALUE_HORIZON,
        "roi_cost_window": f"{months[w0]:%Y-%m} to {months[T - 1]:%Y-%m}",
        "roi_pairs": pairs,
        "roi_sd": float(per_pair.std(ddof=1)) if pairs > 1 else float("nan"),
        "roi_treated_accounts": float(treated.mean()),
        "roi_note": (
            "true ROI of CS by simulation, from the state at the start of the cost window (the last "
            "12 calendar months of the book). World A: the natural policy through the window, then 12 "
            "months past the book's end with no deliveries; world B: the same random numbers, no "
            "deliveries of any programme from the window's first month on. Value of an account with "
            "at least one delivery in the window in A, first in month d: gross margin x sum over "
            "months d+1..d+12 of (month-end MRR in A - in B), add-ons, expansions and contractions "
            "included, 0 when churned. roi = mean value / mean world-A cost - 1 over roi_pairs pairs "
            "(fresh random streams per pair); roi_sd is the SD of the pairs' own ROIs. The cost is "
            "cs_costs.cost summed over the window (n_csm x 8500 + 30 x hours); roi_cost_book is the "
            "book's own cost of the window"
        ),
    }


# Typical spread of each feature in a book like this, used to rank effects as a model would see
# them (|coefficient| x standard deviation of the feature).
_FEATURE_SD = {
    "seat_utilisation": 0.25,
    "usage_logins_trend": 0.25,
    "tickets_90d": 1.3,
    "csat_90d": 0.6,
    "tenure_months": 9.0,
    "usage_active_users_trend": 0.2,
    "usage_features_used": 4.5,
}


def _truth(seed, n, T, start, params: BookParams = DEFAULT_PARAMS) -> dict:
    def ranked(effects):
        strength = {k: abs(v) * _FEATURE_SD[k] for k, v in effects.items()}
        return sorted(strength, key=strength.get, reverse=True), strength

    churn_order, churn_strength = ranked(CHURN_EFFECTS)
    expansion_order, expansion_strength = ranked(EXPANSION_EFFECTS)
    # Annual contracts churn only at renewal: in the kit's features that is months_to_renewal, the
    # strongest single signal of *when* an annual account can leave.
    # Together with the billing period itself (monthly accounts can leave any month).
    churn_drivers = (
        ["months_to_renewal", churn_order[0], "billing_period_months"]
        + churn_order[1:2]
        + ["outcomes_achieved_share"]
        + churn_order[2:]
    )
    return {
        "seed": seed,
        "n_accounts": n,
        "n_months": T,
        "start": start,
        "churn_model": "monthly complementary log-log: exp(coef) is the hazard ratio per unit",
        "churn_drivers": churn_drivers,
        "churn_driver_effects": {
            **{
                k: {
                    "coef": v,
                    "hazard_ratio_per_unit": float(np.exp(v)),
                    "strength": churn_strength[k],
                    "direction": "raises risk" if v > 0 else "lowers risk",
                }
                for k, v in CHURN_EFFECTS.items()
            },
            "outcomes_achieved_share": {
                "coef": float(np.log(OUTCOME_ACHIEVED_HR)),
                "hazard_ratio_per_unit": OUTCOME_ACHIEVED_HR,
                "note": "applies once at least one committed outcome is achieved",
                "direction": "lowers risk",
            },
            "months_to_renewal": {
                "note": "annual accounts (billing_period_months 12) can churn only at renewal, monthly ones any month"
            },
            "billing_period_months": {
                "note": "see months_to_renewal: the contract term decides when an account can leave"
            },
            "segment": {
                "base_monthly_hazard": dict(
                    zip(SEGMENTS.tolist(), np.exp(np.asarray(params.churn_base)).round(4).tolist())
                )
            },
        },
        "programme_direct_hr": dict(PROGRAMME_DIRECT_HR),
        "programme_exposure": dict(PROGRAMME_EXPOSURE),
        "exposure_months": EXPOSURE_MONTHS,
        "programme_engagement_boost": dict(PROGRAMME_ENGAGEMENT_BOOST),
        "programme_engagement_boost_months": BOOST_MONTHS,
        "programme_hr_method": {
            "reference_accounts": None,
            "reference_seed": REFERENCE_SEED,
            "model": "pooled discrete-time cloglog GLM of churn in month on [world ON (from the month "
            "after signup), tenure band 0-2/3-5/6-11/12-23/24+, segment, annual renewal], "
            "fitted on the account-months at risk of both worlds",
        },
        "programme_note": (
            "programme_hr is each programme's TOTAL effect on the monthly churn hazard, by simulation: "
            "the programme given to every account (one-time ones in the signup month, recurring ones "
            "every month: continuously exposed) vs never given, the other programmes as usual, common "
            "random numbers, on a reference population; programme_hr_se is the GLM's standard error "
            "of its log (the two worlds share their random numbers, so it overstates the Monte-Carlo "
            "error of the contrast). It is a marginal hazard ratio over tenure band, segment and "
            "renewal: where a programme runs, high-risk accounts survive longer and make up more of "
            "those at risk, so even a programme without mediation shows a total a little nearer 1 "
            "than its direct effect. programme_direct_hr is the formula's direct effect: from the month after an "
            "account's first delivery for one-time programmes (onboarding, training), in the "
            "exposure_months after each delivery for recurring ones (qbr, health_check, escalation; "
            "overlapping deliveries do not stack). Onboarding and training also raise latent "
            "engagement (programme_engagement_boost, in equal parts over the 3 months after the "
            "delivery month), which raises utilisation, usage and outcomes and lowers tickets: their "
            "total effect is larger than the direct one. The others act only directly"
        ),
        "outcome_achieved_hr": OUTCOME_ACHIEVED_HR,
        "expansion_drivers": expansion_order,
        "expansion_driver_effects": {
            k: {"coef": v, "strength": expansion_strength[k]} for k, v in EXPANSION_EFFECTS.items()
        },
        "annual_contracts": "annual accounts churn only at renewal, with probability 1 - exp(-12 x monthly hazard)",
    }
