"""The generator's model: segments, plans and prices, the planted effects, the cost model and the
book's knobs (:class:`BookParams`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SEGMENTS = np.array(["SMB", "Mid-Market", "Enterprise"])
SEGMENT_SHARE = np.array([0.6, 0.3, 0.1])
SEGMENT_BASE = np.array([-4.35, -4.55, -4.75])  # cloglog intercepts: ~1.3%, 1.1%, 0.9% a month
ANNUAL_SHARE = np.array([0.15, 0.55, 0.9])
CSM_SHARE = np.array([0.1, 0.7, 1.0])
PLANS = np.array(["Starter", "Growth", "Enterprise"])
SEAT_PRICE = np.array([20.0, 35.0, 55.0])
ADDONS = np.array(["Analytics", "Automation", "Integrations"])
ADDON_PRICE = np.array([[150.0, 400.0, 1200.0], [100.0, 300.0, 900.0], [80.0, 250.0, 700.0]])
INDUSTRIES = np.array(["Software", "Financial services", "Healthcare", "Retail", "Manufacturing", "Education", "Media"])
REGIONS = np.array(["North America", "EMEA", "APAC", "LATAM"])
ACTIVITIES = ("onboarding", "qbr", "training", "health_check", "escalation")

# Planted effects. Churn: per unit of each feature on the cloglog scale (exp = hazard ratio).
CHURN_EFFECTS = {
    "seat_utilisation": -3.2,  # share of seats used last month (0..1)
    "usage_logins_trend": -1.6,  # last 3 months / 3 before - 1
    "tickets_90d": 0.22,  # tickets opened in the last 3 months
    "csat_90d": -0.45,  # mean CSAT (1..5) of recent tickets, centred at 4
    "tenure_months": -0.015,
}
# Direct effect of each programme on the churn hazard (the formula's hazard ratios). The total
# effects, which add what flows through engagement, are measured by simulation (truth.json).
PROGRAMME_DIRECT_HR = {"onboarding": 0.80, "qbr": 0.80, "training": 0.95, "health_check": 0.65, "escalation": 1.00}
PROGRAMME_HR = PROGRAMME_DIRECT_HR  # kept for old imports: the direct effects
PROGRAMME_EXPOSURE = {
    "onboarding": "one_time",
    "training": "one_time",
    "qbr": "recurring",
    "health_check": "recurring",
    "escalation": "recurring",
}
EXPOSURE_MONTHS = 3  # a recurring programme acts on the churn of the 3 months after a delivery
PROGRAMME_ENGAGEMENT_BOOST = {"onboarding": 0.35, "training": 0.30}
BOOST_MONTHS = 3  # the boost is added in equal parts in the 3 months after the delivery month
OUTCOME_ACHIEVED_HR = 0.60
# Expansion: logit per unit of each feature.
EXPANSION_EFFECTS = {
    "seat_utilisation": 4.0,
    "usage_active_users_trend": 2.0,
    "usage_features_used": 0.08,  # features used (0..20), centred at 10
    "tenure_months": -0.02,
}
EXPANSION_BASE = np.array([-4.3, -4.0, -3.7])

# CS cost model (cs_costs.cost) and activity effort (hours ~ Gamma(2, scale)).
CSM_MONTHLY_COST = 8500.0
HOURLY_COST = 30.0
ACTIVITY_HOURS_SCALE = {"onboarding": 4.0, "qbr": 1.5, "training": 2.0, "health_check": 1.0, "escalation": 3.0}

# How the truth is simulated.
REFERENCE_ACCOUNTS = 20_000  # population of the forced on/off worlds behind truth["programme_hr"]
REFERENCE_SEED = 20_240_601  # a constant: the totals are a property of the model, not of a book
ROI_GROSS_MARGIN = 0.80
ROI_VALUE_HORIZON = 12  # months of value after an account's first delivery in the window
ROI_COST_WINDOW = 12  # the last 12 calendar months of the book
ROI_PAIRS = 8  # common-random-number pairs of worlds averaged for the ROI truth
TENURE_BANDS = np.array([3, 6, 12, 24])  # tenure bands 0-2, 3-5, 6-11, 12-23, 24+ months

_P = {name: p for p, name in enumerate(ACTIVITIES)}


@dataclass(frozen=True)
class BookParams:
    """The knobs of a book that presets (workshop scenarios) turn; the defaults make the demo book.

    Per-segment values are (SMB, Mid-Market, Enterprise).

    Attributes
    ----------
    segment_share : tuple of float
        Share of signups in each segment.
    churn_base : tuple of float
        Cloglog intercepts of the monthly churn hazard (about exp(value) a month at the reference
        signals).
    expansion_base : tuple of float
        Logit intercepts of the monthly chance of expanding.
    annual_share : tuple of float
        Share of accounts on annual contracts (they can churn only at renewal).
    csm_share : tuple of float
        Share of accounts with a named CSM.
    accounts_per_csm : int
        CSM team size = accounts with a CSM / this (at least 3 CSMs): the CS cost.
    onboarding_rate : tuple of float
        Chance that a new account receives onboarding in its signup month.
    cohort_drift : float
        Added to the churn intercept per month that an account signed up after ``drift_from``
        (a share of the book's months): later cohorts churn more (0: no drift).
    drift_from : float
        Where the drift starts, as a share of the book's months.

    Examples
    --------
    >>> BookParams().churn_base
    (-4.35, -4.55, -4.75)
    >>> BookParams(churn_base=(-3.2, -3.9, -4.5)).accounts_per_csm
    60
    """

    segment_share: tuple[float, float, float] = tuple(SEGMENT_SHARE.tolist())
    churn_base: tuple[float, float, float] = tuple(SEGMENT_BASE.tolist())
    expansion_base: tuple[float, float, float] = tuple(EXPANSION_BASE.tolist())
    annual_share: tuple[float, float, float] = tuple(ANNUAL_SHARE.tolist())
    csm_share: tuple[float, float, float] = tuple(CSM_SHARE.tolist())
    accounts_per_csm: int = 60
    onboarding_rate: tuple[float, float, float] = (0.3, 0.75, 0.95)
    cohort_drift: float = 0.0
    drift_from: float = 0.5


DEFAULT_PARAMS = BookParams()
