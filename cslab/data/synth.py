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
"""

from __future__ import annotations

import functools
import json
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["SyntheticBook", "BookParams", "generate", "write_synthetic", "PROGRAMME_HR", "PROGRAMME_DIRECT_HR",
           "PROGRAMME_EXPOSURE", "EXPOSURE_MONTHS", "PROGRAMME_ENGAGEMENT_BOOST", "OUTCOME_ACHIEVED_HR",
           "Policy", "Noise", "SimState", "population", "simulate"]

SEGMENTS = np.array(["SMB", "Mid-Market", "Enterprise"])
SEGMENT_SHARE = np.array([0.6, 0.3, 0.1])
SEGMENT_BASE = np.array([-4.35, -4.55, -4.75])  # cloglog intercepts: ~1.3%, 1.1%, 0.9% a month
ANNUAL_SHARE = np.array([0.15, 0.55, 0.9])
CSM_SHARE = np.array([0.1, 0.7, 1.0])
PLANS = np.array(["Starter", "Growth", "Enterprise"])
SEAT_PRICE = np.array([20.0, 35.0, 55.0])
ADDONS = np.array(["Analytics", "Automation", "Integrations"])
ADDON_PRICE = np.array([[150.0, 400.0, 1200.0], [100.0, 300.0, 900.0], [80.0, 250.0, 700.0]])
INDUSTRIES = np.array(["Software", "Financial services", "Healthcare", "Retail", "Manufacturing",
                       "Education", "Media"])
REGIONS = np.array(["North America", "EMEA", "APAC", "LATAM"])
ACTIVITIES = ("onboarding", "qbr", "training", "health_check", "escalation")

# Planted effects. Churn: per unit of each feature on the cloglog scale (exp = hazard ratio).
CHURN_EFFECTS = {
    "seat_utilisation": -3.2,        # share of seats used last month (0..1)
    "usage_logins_trend": -1.6,      # last 3 months / 3 before - 1
    "tickets_90d": 0.22,             # tickets opened in the last 3 months
    "csat_90d": -0.45,               # mean CSAT (1..5) of recent tickets, centred at 4
    "tenure_months": -0.015,
}
# Direct effect of each programme on the churn hazard (the formula's hazard ratios). The total
# effects, which add what flows through engagement, are measured by simulation (truth.json).
PROGRAMME_DIRECT_HR = {"onboarding": 0.80, "qbr": 0.80, "training": 0.95, "health_check": 0.65,
                       "escalation": 1.00}
PROGRAMME_HR = PROGRAMME_DIRECT_HR  # kept for old imports: the direct effects
PROGRAMME_EXPOSURE = {"onboarding": "one_time", "training": "one_time", "qbr": "recurring",
                      "health_check": "recurring", "escalation": "recurring"}
EXPOSURE_MONTHS = 3  # a recurring programme acts on the churn of the 3 months after a delivery
PROGRAMME_ENGAGEMENT_BOOST = {"onboarding": 0.35, "training": 0.30}
BOOST_MONTHS = 3  # the boost is added in equal parts in the 3 months after the delivery month
OUTCOME_ACHIEVED_HR = 0.60
# Expansion: logit per unit of each feature.
EXPANSION_EFFECTS = {
    "seat_utilisation": 4.0,
    "usage_active_users_trend": 2.0,
    "usage_features_used": 0.08,     # features used (0..20), centred at 10
    "tenure_months": -0.02,
}
EXPANSION_BASE = np.array([-4.3, -4.0, -3.7])

# CS cost model (cs_costs.cost) and activity effort (hours ~ Gamma(2, scale)).
CSM_MONTHLY_COST = 8500.0
HOURLY_COST = 30.0
ACTIVITY_HOURS_SCALE = {"onboarding": 4.0, "qbr": 1.5, "training": 2.0, "health_check": 1.0,
                        "escalation": 3.0}

# How the truth is simulated.
REFERENCE_ACCOUNTS = 20_000   # population of the forced on/off worlds behind truth["programme_hr"]
REFERENCE_SEED = 20_240_601   # a constant: the totals are a property of the model, not of a book
ROI_GROSS_MARGIN = 0.80
ROI_VALUE_HORIZON = 12        # months of value after an account's first delivery in the window
ROI_COST_WINDOW = 12          # the last 12 calendar months of the book
ROI_PAIRS = 8                 # common-random-number pairs of worlds averaged for the ROI truth
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


@dataclass
class SyntheticBook:
    """The generated tables, the planted truth and the true monthly probabilities."""

    tables: dict[str, pd.DataFrame]
    truth: dict
    truth_panel: pd.DataFrame = field(repr=False)

    def write(self, out_dir: str | Path) -> Path:
        """Write every table as CSV, plus ``truth.json`` and ``truth_panel.csv``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, frame in self.tables.items():
            frame.to_csv(out / f"{name}.csv", index=False, date_format="%Y-%m-%d",
                         float_format="%.6g")
        self.truth_panel.to_csv(out / "truth_panel.csv", index=False, date_format="%Y-%m-%d",
                                float_format="%.6g")
        (out / "truth.json").write_text(json.dumps(self.truth, indent=2))
        return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _company_names(n: int, rng: np.random.Generator) -> np.ndarray:
    first = np.array(["Acme", "Blue", "Cedar", "Delta", "Ember", "Fjord", "Granite", "Harbor", "Iris",
                      "Juniper", "Kestrel", "Lumen", "Maple", "Nimbus", "Orchid", "Pioneer", "Quartz",
                      "Riverside", "Summit", "Tidal", "Umber", "Vertex", "Willow", "Yonder", "Zenith"])
    second = np.array(["Analytics", "Logistics", "Health", "Labs", "Foods", "Capital", "Systems",
                       "Retail", "Energy", "Media", "Robotics", "Learning", "Partners", "Works"])
    suffix = np.array(["Inc", "LLC", "Ltd", "GmbH", "SA", "Co"])
    a, b, c = rng.integers(0, len(first), n), rng.integers(0, len(second), n), rng.integers(0, len(suffix), n)
    return np.char.add(np.char.add(np.char.add(first[a], " "), np.char.add(second[b], " ")), suffix[c])


# ---- common random numbers ---------------------------------------------------------------------

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_U11, _U27, _U30, _U31 = (np.uint64(k) for k in (11, 27, 30, 31))
_C1, _C2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_UGOLDEN, _USLOT = np.uint64(_GOLDEN), np.uint64(0xD6E8FEB86659FD93)


def _mix64(x: int) -> int:
    """splitmix64's finaliser on a Python integer (a bijection of 64-bit words)."""
    x &= _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on a uint64 array, in place (uint64 arithmetic wraps)."""
    x ^= x >> _U30
    x *= _C1
    x ^= x >> _U27
    x *= _C2
    x ^= x >> _U31
    return x


def _stream_key(seed: int, stream: int) -> int:
    return _mix64(_mix64(int(seed)) ^ _mix64(int(stream) * _GOLDEN + 1))


# Purposes of the draws (each month draws each purpose at most once per account and slot).
_CHURN, _EXPAND, _CONTRACT, _KIND, _SEAT_ADD, _ADDON, _SEAT_CUT, _REACTIVATE = range(1, 9)
_ENGAGEMENT, _USAGE, _TICKETS, _RATED, _SCORE = range(20, 25)
_OUTCOME = 30  # + outcome number (0..2)
_DECIDE, _HOURS = 40, 60  # + programme index
_SECOND = 1 << 12         # the second uniform of a Box-Muller pair


class Noise:
    """Common random numbers: a counter-based generator keyed on (stream, purpose, month, account).

    A draw for account ``i`` in month ``m`` is a pure function of the stream, the purpose, ``m`` and
    ``i`` (and a slot, for several draws per account): it does not depend on which other accounts
    were drawn, nor on how many, nor on anything simulated. Two simulations sharing a stream share
    every account's noise whatever their policies (what drawing every month's numbers for all
    accounts in a fixed order gives), and differ only through the policies' consequences.

    Examples
    --------
    >>> noise = Noise.for_seed(1, n=5)
    >>> bool(np.all(noise.uniform(3, 0)[[1, 4]] == noise.uniform(3, 0, np.array([1, 4]))))
    True
    >>> bool(np.all(noise.subset(np.array([1, 4])).uniform(3, 0) == noise.uniform(3, 0)[[1, 4]]))
    True
    """

    def __init__(self, key: int, n: int):
        self._account = _mix(np.arange(n, dtype=np.uint64) * _UGOLDEN + np.uint64(int(key) & _MASK64))

    @classmethod
    def for_seed(cls, seed: int, n: int, stream: int = 0) -> Noise:
        """Stream ``stream`` of seed ``seed`` for ``n`` accounts."""
        return cls(_stream_key(seed, stream), n)

    @property
    def n(self) -> int:
        return len(self._account)

    def subset(self, idx: np.ndarray) -> Noise:
        """The same numbers for accounts ``idx`` only (numbered 0.. in that order)."""
        twin = object.__new__(Noise)
        twin._account = self._account[idx]
        return twin

    @staticmethod
    def concat(noises: list[Noise]) -> Noise:
        """One generator for the accounts of several (each keeps its own numbers)."""
        twin = object.__new__(Noise)
        twin._account = np.concatenate([z._account for z in noises])
        return twin

    def uniform(self, purpose: int, m: int, idx: np.ndarray | slice | None = None,
                slot: np.ndarray | None = None) -> np.ndarray:
        """Uniforms in (0, 1) for accounts ``idx`` (all when None), one per account (and slot)."""
        x = (self._account if idx is None else self._account[idx]) ^ np.uint64(
            _mix64((int(purpose) << 24) + int(m) + 1))
        if slot is not None:
            x += np.asarray(slot).astype(np.uint64) * _USLOT
        _mix(x)
        return ((x >> _U11).astype(np.float64) + 0.5) * (2.0 ** -53)

    def normal(self, purpose: int, m: int, idx: np.ndarray | slice | None = None,
               slot: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Two independent standard normals per account (and slot), by Box-Muller (the angle's sine
        and cosine in single precision: plenty for noise, and ten times faster)."""
        r = np.sqrt(-2.0 * np.log(self.uniform(purpose, m, idx, slot)))
        angle = ((2.0 * np.pi) * self.uniform(purpose + _SECOND, m, idx, slot)).astype(np.float32)
        return r * np.cos(angle), r * np.sin(angle)


def _poisson(u: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Poisson draws by inversion of uniforms ``u`` (monotone in ``u``: common random numbers)."""
    k = np.zeros(len(u))
    p = np.exp(-lam)
    cdf = p.copy()
    todo = np.flatnonzero(u > cdf)
    j = 0
    while len(todo) and j < 200:
        j += 1
        p[todo] *= lam[todo] / j
        cdf[todo] += p[todo]
        k[todo] = j
        todo = todo[u[todo] > cdf[todo]]
    return k


# ---- the simulation state and policy ------------------------------------------------------------

@dataclass(frozen=True)
class Policy:
    """Which CS deliveries happen: the natural (targeted) policy, with overrides.

    ``force_on``: programmes given to every account (one-time ones in the signup month, recurring
    ones every month while active); ``force_off``: programmes never given; ``stop_from``: no
    deliveries of any programme from that month on.
    """

    force_on: frozenset = frozenset()
    force_off: frozenset = frozenset()
    stop_from: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "force_on", frozenset(self.force_on))
        object.__setattr__(self, "force_off", frozenset(self.force_off))
        unknown = (self.force_on | self.force_off) - set(ACTIVITIES)
        if unknown or self.force_on & self.force_off:
            raise ValueError(f"bad policy: unknown {sorted(unknown)} or both on and off")


NATURAL = Policy()


@dataclass
class SimState:
    """Everything the monthly simulation reads and writes: numpy arrays over accounts.

    Accounts are sorted by signup month, so the accounts signed up by month ``m`` are a prefix and
    each month only works on that prefix. Monthly records are ``(month, account)`` arrays over
    ``horizon`` months (the book's months plus any months simulated past its end); the account is
    always the last axis. ``month`` is the next month to simulate.
    """

    # fixed attributes of the population
    signup_m: np.ndarray
    seg: np.ndarray
    employees: np.ndarray
    annual: np.ndarray
    has_csm: np.ndarray
    qbr_cadence: np.ndarray
    drift: np.ndarray
    login_habit: np.ndarray
    feature_habit: np.ndarray
    n_outcomes: np.ndarray
    addon_price: np.ndarray          # (add-on, account) MRR of each add-on
    churn_shift: np.ndarray          # added to the churn hazard's cloglog (BookParams.cohort_drift)
    n_csm: int
    # evolving state
    active: np.ndarray
    ever: np.ndarray
    churn_m: np.ndarray
    cycle_start_m: np.ndarray        # month of the current contract's start (annual renewals)
    seats: np.ndarray
    plan: np.ndarray
    addons: np.ndarray               # (add-on, account) bool
    engagement: np.ndarray
    achieved_m: np.ndarray           # (outcome, account) month achieved, -1
    first_achieved: np.ndarray
    first_del: np.ndarray            # (programme, account) first delivery month, -1
    last_del: np.ndarray             # (programme, account) last delivery month, -1
    boost: np.ndarray                # (month % (BOOST_MONTHS + 1), account) engagement still to add
    # monthly records, (month, account): usage as the signals and the usage table read it
    users: np.ndarray
    logins: np.ndarray
    features: np.ndarray
    observed: np.ndarray             # 1.0 where the account was active at the month's end
    tickets: np.ndarray
    csat_sum: np.ndarray
    csat_n: np.ndarray
    # monthly records, (month, account): what counterfactual runs are read for
    mrr: np.ndarray                  # MRR at the month's end (add-ons included, 0 when not active)
    hazard: np.ndarray               # monthly churn hazard of the accounts active at the month's start
    at_risk: np.ndarray              # could churn this month (monthly: active; annual: at renewal)
    renewal: np.ndarray              # annual account at a renewal month
    churned: np.ndarray
    delivered: np.ndarray            # (programme, month, account) bool
    hours: np.ndarray                # CS hours delivered to the account in the month
    month: int = 0
    params: BookParams = DEFAULT_PARAMS

    @property
    def n(self) -> int:
        return len(self.signup_m)

    @property
    def horizon(self) -> int:
        return self.mrr.shape[0]

    def copy(self) -> SimState:
        """An independent copy (to continue from this month under another policy)."""
        return self.subset(slice(None))

    def subset(self, idx: np.ndarray | slice) -> SimState:
        """A copy restricted to accounts ``idx`` (in signup order). Accounts do not interact, so a
        subset evolves exactly as the same accounts do in the whole."""
        return SimState(**{f.name: (getattr(self, f.name)[..., idx].copy()
                                    if isinstance(getattr(self, f.name), np.ndarray) else getattr(self, f.name))
                           for f in fields(self)})

    @staticmethod
    def concat(states: list[SimState]) -> SimState:
        """The accounts of several states (same month, same CSM team) as one, in the given order."""
        if len({(s.month, s.n_csm) for s in states}) != 1:
            raise ValueError("states to concatenate must be at the same month with the same CSM team")
        return SimState(**{f.name: (np.concatenate([getattr(s, f.name) for s in states], axis=-1)
                                    if isinstance(getattr(states[0], f.name), np.ndarray)
                                    else getattr(states[0], f.name))
                           for f in fields(SimState)})


def population(n_accounts: int, n_months: int, seed: int, extra_months: int = 0,
               rng: np.random.Generator | None = None, params: BookParams = DEFAULT_PARAMS) -> SimState:
    """The accounts of a book (who signs up when, segment, size, contract...) at month 0.

    ``extra_months``: room to simulate that many months past the book's end; ``params``: the
    book's knobs (:class:`BookParams`; the defaults make the demo book).

    Examples
    --------
    >>> s = population(300, 12, seed=1)
    >>> s.n, s.horizon, bool(np.all(np.diff(s.signup_m) >= 0))
    (300, 12, True)
    """
    rng = np.random.default_rng(seed) if rng is None else rng
    n, T = n_accounts, n_months
    H = T + extra_months
    growth = np.exp(0.035 * np.arange(T))
    signup_m = np.sort(rng.choice(T, size=n, p=growth / growth.sum()))
    seg = rng.choice(3, size=n, p=np.asarray(params.segment_share, float))
    employees = np.round(np.exp(rng.normal(np.array([3.3, 5.4, 7.0])[seg], 0.5))).astype(int) + 2
    seats = np.maximum(2, np.round(employees * rng.uniform(0.08, 0.3, n))).astype(int)
    seats = np.minimum(seats, np.array([40, 250, 800])[seg])
    plan = np.clip(seg + rng.choice([-1, 0, 0, 0, 1], size=n), 0, 2)
    annual = rng.random(n) < np.asarray(params.annual_share)[seg]
    has_csm = rng.random(n) < np.asarray(params.csm_share)[seg]
    drift = rng.normal(0.0, 0.05, n)
    # engagement at signup: where the monthly random walk would have taken it since month 0 (the
    # walk is only simulated from signup on)
    engagement = (rng.normal(0.0, 1.0, n) + drift * signup_m
                  + 0.12 * np.sqrt(signup_m) * rng.normal(0.0, 1.0, n))
    # Persistent per-account habits: some teams log in more, use more features, whatever their
    # engagement. Usage levels are then noisy proxies of engagement, and the planted drivers
    # (utilisation, trends) stay the clearest signals, as the truth says.
    login_habit = rng.normal(0.0, 0.6, n)
    # Only some CSMs run quarterly business reviews, more often with larger customers
    qbr_cadence = has_csm & (rng.random(n) < _sigmoid(-1.0 + 0.6 * (np.log(employees) - 5.0)))
    feature_habit = rng.normal(0.0, 1.0, n)
    n_outcomes = rng.integers(1, 4, n)
    P = len(ACTIVITIES)
    return SimState(
        signup_m=signup_m, seg=seg, employees=employees, annual=annual, has_csm=has_csm,
        qbr_cadence=qbr_cadence, drift=drift, login_habit=login_habit, feature_habit=feature_habit,
        n_outcomes=n_outcomes, addon_price=ADDON_PRICE[:, seg],
        churn_shift=params.cohort_drift * np.maximum(0.0, signup_m - params.drift_from * T),
        n_csm=max(3, int(np.ceil(has_csm.sum() / params.accounts_per_csm))),
        active=np.zeros(n, bool), ever=np.zeros(n, bool), churn_m=np.full(n, -1),
        cycle_start_m=signup_m.copy(), seats=seats, plan=plan, addons=np.zeros((len(ADDONS), n), bool),
        engagement=engagement, achieved_m=np.full((3, n), -1), first_achieved=np.full(n, -1),
        first_del=np.full((P, n), -1), last_del=np.full((P, n), -1),
        boost=np.zeros((BOOST_MONTHS + 1, n)),
        users=np.zeros((H, n)), logins=np.zeros((H, n)), features=np.zeros((H, n)),
        observed=np.zeros((H, n)), tickets=np.zeros((H, n)), csat_sum=np.zeros((H, n)),
        csat_n=np.zeros((H, n)), mrr=np.zeros((H, n)), hazard=np.zeros((H, n)),
        at_risk=np.zeros((H, n), bool), renewal=np.zeros((H, n), bool), churned=np.zeros((H, n), bool),
        delivered=np.zeros((P, H, n), bool), hours=np.zeros((H, n)), params=params)


# ---- the book's tables (only in the run that writes the book) -----------------------------------

class _Recorder:
    """Collects the rows of the tables while the book's own run goes; counterfactual runs have none."""

    def __init__(self, s: SimState, rng: np.random.Generator, month_starts: np.ndarray):
        n = s.n
        self.rng = rng
        self.ms = month_starts
        self.signup_d = rng.integers(1, 29, n)
        self.account_ids = np.char.add("A", np.char.zfill((np.arange(n) + 1).astype(str), 5))
        self.csm = np.where(s.has_csm, np.char.add("CSM", np.char.zfill(
            rng.integers(1, s.n_csm + 1, n).astype(str), 2)), "")
        self.line_start = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
        self.addon_start = np.full((n, len(ADDONS)), np.datetime64("NaT"), dtype="datetime64[ns]")
        self.subs: list[pd.DataFrame] = []
        self.acts: list[pd.DataFrame] = []
        self.tickets: list[pd.DataFrame] = []
        self.truth: list[pd.DataFrame] = []

    def day(self, m, d: np.ndarray) -> np.ndarray:
        """Date of day ``d`` (1-based) in month(s) ``m``."""
        return self.ms[m] + (np.asarray(d) - 1).astype("timedelta64[D]")

    def random_days(self, m: int, k: int) -> np.ndarray:
        return self.day(np.full(k, m), self.rng.integers(1, 29, k))

    def close_core(self, s: SimState, idx: np.ndarray, end) -> None:
        """End the open Core line of accounts ``idx`` on dates ``end`` (its last paid day)."""
        self.subs.append(pd.DataFrame({
            "account_id": self.account_ids[idx], "start_date": self.line_start[idx], "end_date": end,
            "mrr": s.seats[idx] * SEAT_PRICE[s.plan[idx]], "product": "Core", "plan": PLANS[s.plan[idx]],
            "seats": s.seats[idx], "billing_period_months": np.where(s.annual[idx], 12, 1)}))

    def close_lines(self, s: SimState, idx: np.ndarray, end) -> None:
        """End every open line (Core and add-ons) of accounts ``idx`` on dates ``end``."""
        if len(idx) == 0:
            return
        self.close_core(s, idx, end)
        for k in range(len(ADDONS)):
            has = s.addons[k, idx]
            if has.any():
                j = idx[has]
                self.subs.append(pd.DataFrame({
                    "account_id": self.account_ids[j], "start_date": self.addon_start[j, k],
                    "end_date": end[has], "mrr": ADDON_PRICE[k, s.seg[j]], "product": ADDONS[k],
                    "plan": PLANS[s.plan[j]], "seats": np.nan,
                    "billing_period_months": np.where(s.annual[j], 12, 1)}))


# ---- one function per monthly step --------------------------------------------------------------
# Each step works on the accounts signed up by month m: the prefix [:k] (accounts sorted by signup).

@dataclass
class _Signals:
    """What the data showed by the end of the previous month, as the kit's features (prefix accounts).

    Missing values are already filled as the hazard reads them: utilisation 0.5, trends 0 (and
    clipped to -1..1), CSAT 4, features used 10.
    """

    util: np.ndarray
    login_trend: np.ndarray
    users_trend: np.ndarray
    t90: np.ndarray
    csat90: np.ndarray
    feat_used: np.ndarray


def _trend(recent: np.ndarray, before: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        change = recent / before - 1
    return np.clip(np.where(np.isnan(change), 0.0, change), -1, 1)


def _signals(s: SimState, m: int, k: int) -> _Signals:
    """The features as of the end of month ``m - 1`` (means over the months the account was active)."""
    last, lo = m - 1, max(0, m - 3)
    recent = slice(lo, m)
    count = s.observed[recent, :k].sum(axis=0)

    def mean(values, rows, c, fill=np.nan):
        return np.where(c > 0, values[rows, :k].sum(axis=0) / np.maximum(c, 1), fill)

    util = np.where(s.observed[last, :k] > 0, s.users[last, :k] / s.seats[:k], 0.5)
    if last >= 3:
        before = slice(max(0, last - 5), max(0, last - 2))
        c_before = s.observed[before, :k].sum(axis=0)
        login_trend = _trend(mean(s.logins, recent, count), mean(s.logins, before, c_before))
        users_trend = _trend(mean(s.users, recent, count), mean(s.users, before, c_before))
    else:
        login_trend = users_trend = np.zeros(k)
    rated = s.csat_n[recent, :k].sum(axis=0)
    csat90 = np.where(rated > 0, s.csat_sum[recent, :k].sum(axis=0) / np.maximum(rated, 1), 4.0)
    return _Signals(util, login_trend, users_trend, s.tickets[recent, :k].sum(axis=0), csat90,
                    mean(s.features, recent, count, 10.0))


def _programme_log_hr(s: SimState, m: int, idx: np.ndarray) -> np.ndarray:
    """Sum of the direct log hazard ratios of the programmes accounts ``idx`` are exposed to in ``m``."""
    out = np.zeros(len(idx))
    for name, hr in PROGRAMME_DIRECT_HR.items():
        if hr == 1.0:
            continue
        p = _P[name]
        if PROGRAMME_EXPOSURE[name] == "one_time":
            first = s.first_del[p, idx]
            exposed = (first >= 0) & (first < m)
        else:  # a delivery in month d acts on churn months d+1 .. d+EXPOSURE_MONTHS
            last = s.last_del[p, idx]
            exposed = (last >= 0) & (last < m) & (last >= m - EXPOSURE_MONTHS)
        out += np.log(hr) * exposed
    return out


def _step_moves(s: SimState, m: int, k: int, sig: _Signals | None, noise: Noise,
                rec: _Recorder | None) -> None:
    """Churn, expansion and contraction of the accounts active at the end of last month."""
    at = np.flatnonzero(s.active[:k])
    if m == 0 or len(at) == 0:
        return
    util = sig.util[at]
    users_trend = sig.users_trend[at]
    tenure = m - s.signup_m[at]
    params = s.params
    eta = (np.asarray(params.churn_base)[s.seg[at]]
           + CHURN_EFFECTS["seat_utilisation"] * (util - 0.6)
           + CHURN_EFFECTS["usage_logins_trend"] * sig.login_trend[at]
           + CHURN_EFFECTS["tickets_90d"] * sig.t90[at]
           + CHURN_EFFECTS["csat_90d"] * (sig.csat90[at] - 4.0)
           + CHURN_EFFECTS["tenure_months"] * tenure
           + _programme_log_hr(s, m, at))
    achieved = (s.first_achieved[at] >= 0) & (s.first_achieved[at] < m)
    eta = eta + np.log(OUTCOME_ACHIEVED_HR) * achieved
    if params.cohort_drift:  # later cohorts churn more (workshop scenario "hidden risk")
        eta = eta + s.churn_shift[at]
    hazard = np.exp(eta)
    annual = s.annual[at]
    renewal = annual & ((m - s.cycle_start_m[at]) % 12 == 0)
    p_churn = np.where(annual, np.where(renewal, 1 - np.exp(-12 * hazard), 0.0), 1 - np.exp(-hazard))
    x_eta = (np.asarray(params.expansion_base)[s.seg[at]]
             + EXPANSION_EFFECTS["seat_utilisation"] * (util - 0.7)
             + EXPANSION_EFFECTS["usage_active_users_trend"] * users_trend
             + EXPANSION_EFFECTS["usage_features_used"] * (sig.feat_used[at] - 10)
             + EXPANSION_EFFECTS["tenure_months"] * tenure)
    p_expand = _sigmoid(x_eta)
    churned = noise.uniform(_CHURN, m, at) < p_churn
    expands = ~churned & (noise.uniform(_EXPAND, m, at) < p_expand)
    p_contract = _sigmoid(-5.0 - 3.0 * (util - 0.5) - 2.0 * users_trend)
    p_contract = np.where(annual & ~renewal, 0.0, p_contract)
    contracts = (~churned & ~expands & (noise.uniform(_CONTRACT, m, at) < p_contract)
                 & (s.seats[at] > 2))
    s.at_risk[m, at] = p_churn > 0
    s.renewal[m, at] = renewal
    s.hazard[m, at] = hazard
    if rec is not None:
        rec.truth.append(pd.DataFrame({"account_id": rec.account_ids[at], "month": rec.ms[m],
                                       "p_churn": p_churn, "p_expand": p_expand}))
    # churn: the last paid day is the end of the billing cycle falling in month m
    c = at[churned]
    if rec is not None:
        rec.close_lines(s, c, rec.day(np.full(len(c), m), rec.signup_d[c]) - np.timedelta64(1, "D"))
    s.churned[m, c] = True
    s.active[c] = False
    s.churn_m[c] = m
    s.addons[:, c] = False
    # expansion: seat add (60%), plan upgrade (15%), add-on product (25%)
    e = at[expands]
    u = noise.uniform(_KIND, m, e)
    kind = np.where(u < 0.6, 0, np.where(u < 0.75, 1, 2))
    kind = np.where((kind == 1) & (s.plan[e] == 2), 0, kind)
    kind = np.where((kind == 2) & s.addons[:, e].all(axis=0), 0, kind)
    change = rec.random_days(m, len(e)) if rec is not None else None
    core = kind < 2
    if rec is not None and core.any():
        rec.close_core(s, e[core], change[core] - np.timedelta64(1, "D"))
        rec.line_start[e[core]] = change[core]
    up = e[kind == 0]
    s.seats[up] += np.maximum(1, np.round(s.seats[up] * (0.1 + 0.3 * noise.uniform(_SEAT_ADD, m, up)))
                              ).astype(int)
    s.plan[e[kind == 1]] += 1
    j = e[kind == 2]
    if len(j):
        free = ~s.addons[:, j].T
        pick = np.floor(noise.uniform(_ADDON, m, j) * free.sum(axis=1))
        product = np.argmax(np.cumsum(free, axis=1) > pick[:, None], axis=1)
        s.addons[product, j] = True
        if rec is not None:
            rec.addon_start[j, product] = change[kind == 2]
    # contraction: fewer seats
    d = at[contracts]
    if len(d):
        if rec is not None:
            when = rec.random_days(m, len(d))
            rec.close_core(s, d, when - np.timedelta64(1, "D"))
            rec.line_start[d] = when
        cut = 0.1 + 0.25 * noise.uniform(_SEAT_CUT, m, d)
        s.seats[d] = np.maximum(2, s.seats[d] - np.maximum(1, np.round(s.seats[d] * cut))).astype(int)
    s.cycle_start_m[at[renewal & ~churned]] = m


def _step_reactivation(s: SimState, m: int, k: int, noise: Noise, rec: _Recorder | None) -> None:
    """A few churned accounts come back within a year."""
    since = m - s.churn_m[:k]
    gone = np.flatnonzero(~s.active[:k] & (s.churn_m[:k] >= 0) & (since <= 12) & (since > 0))
    back = gone[noise.uniform(_REACTIVATE, m, gone) < 0.01]
    if len(back) == 0:
        return
    if rec is not None:
        rec.line_start[back] = rec.random_days(m, len(back))
        rec.signup_d[back] = pd.DatetimeIndex(rec.line_start[back]).day.to_numpy()
    s.cycle_start_m[back] = m
    s.active[back] = True
    s.engagement[back] += 0.5  # they return for a reason


def _step_signups(s: SimState, m: int, k: int, rec: _Recorder | None) -> None:
    new = np.flatnonzero(s.signup_m[:k] == m)
    if len(new) == 0:
        return
    if rec is not None:
        rec.line_start[new] = rec.day(s.signup_m[new], rec.signup_d[new])
    s.active[new] = True
    s.ever[new] = True


def _natural_deliveries(s: SimState, m: int, k: int, name: str, sig: _Signals | None,
                        new: np.ndarray, live: np.ndarray, noise: Noise) -> np.ndarray:
    """Who the CSMs would give programme ``name`` this month, on what the data showed (bool mask)."""
    u = noise.uniform(_DECIDE + _P[name], m, slice(0, k))
    if name == "onboarding":
        return new & (u < np.asarray(s.params.onboarding_rate)[s.seg[:k]])
    if sig is None:
        return np.zeros(k, bool)
    if name == "qbr":
        return live & s.qbr_cadence[:k] & ((m - s.signup_m[:k]) % 3 == 0) & (u < 0.8)
    if name == "training":  # a course, once: for accounts whose seats look under-used
        weak = sig.util < 0.45
        p = np.where(weak, 0.25, 0.03) * np.where(s.has_csm[:k], 1.5, 0.6)
        return live & (s.first_del[_P["training"], :k] < 0) & (u < p)
    if name == "health_check":
        falling = sig.login_trend < -0.15
        return live & (u < np.where(falling | (sig.t90 >= 3), 0.3, 0.02) * s.has_csm[:k])
    p = np.where(sig.t90 >= 4, 0.5, np.where(sig.t90 >= 2, 0.08, 0.0))  # escalation
    return live & (u < p)


def _step_cs(s: SimState, m: int, k: int, sig: _Signals | None, noise: Noise, policy: Policy,
             rec: _Recorder | None) -> None:
    """CS activities of month ``m``, decided by the policy on what the data showed by last month."""
    if policy.stop_from is not None and m >= policy.stop_from:
        return
    active = s.active[:k]
    new = active & (s.signup_m[:k] == m)
    live = active & (s.signup_m[:k] < m)
    for name in ACTIVITIES:
        if name in policy.force_off:
            continue
        p = _P[name]
        one_time = PROGRAMME_EXPOSURE[name] == "one_time"
        if name in policy.force_on:
            give = new.copy() if one_time else active.copy()
        else:
            give = _natural_deliveries(s, m, k, name, sig, new, live, noise)
        if one_time:
            give &= s.first_del[p, :k] < 0
        idx = np.flatnonzero(give)
        if len(idx) == 0:
            continue
        fresh = idx[s.first_del[p, idx] < 0]
        s.first_del[p, fresh] = m
        s.last_del[p, idx] = m
        s.delivered[p, m, idx] = True
        boost = PROGRAMME_ENGAGEMENT_BOOST.get(name, 0.0)
        if boost:  # added in the usage step of months m+1 .. m+BOOST_MONTHS
            rows = np.arange(m + 1, m + 1 + BOOST_MONTHS) % (BOOST_MONTHS + 1)
            s.boost[rows[:, None], fresh] += boost / BOOST_MONTHS
        # effort: Gamma(2, scale) hours, by inversion of two uniforms, to the tenth of an hour
        hours = np.round(-ACTIVITY_HOURS_SCALE[name] * np.log(noise.uniform(_HOURS + p, m, idx)
                                                              * noise.uniform(_HOURS + p + _SECOND, m, idx)), 1)
        s.hours[m, idx] += hours
        if rec is not None:
            days = rec.signup_d[idx] if name == "onboarding" else rec.rng.integers(1, 29, len(idx))
            rec.acts.append(pd.DataFrame({
                "account_id": rec.account_ids[idx], "date": rec.day(np.full(len(idx), m), days),
                "activity_type": name, "hours": hours, "csm_id": rec.csm[idx]}))


def _step_usage(s: SimState, m: int, k: int, noise: Noise, rec: _Recorder | None) -> None:
    """Engagement drifts (plus any programme boost); usage and tickets of accounts active at month end."""
    z_engagement, z_users = noise.normal(_ENGAGEMENT, m, slice(0, k))
    b = m % (BOOST_MONTHS + 1)
    s.engagement[:k] += s.drift[:k] + 0.12 * z_engagement + s.boost[b, :k]
    s.boost[b, :k] = 0.0
    a = np.flatnonzero(s.active[:k])
    if len(a) == 0:
        return
    e = s.engagement[a]
    seats = s.seats[a]
    util_true = np.clip(_sigmoid(0.6 + 1.1 * e) * 0.98, 0.02, 1.0)
    # active users track true utilisation closely (a seat is used or not, month after month)
    users = np.clip(np.round(seats * util_true + 0.4 * z_users[a]), 0, seats)
    z_logins, z_features = noise.normal(_USAGE, m, a)
    lam = np.maximum(users, 0.5) * 14 * np.exp(s.login_habit[a])
    logins = np.maximum(0.0, np.round(lam + np.sqrt(lam) * z_logins))  # ~ Poisson(lam)
    p_feature = _sigmoid(-0.2 + 0.9 * e + s.feature_habit[a])
    features = np.clip(np.round(20 * p_feature + np.sqrt(20 * p_feature * (1 - p_feature)) * z_features),
                       0, 20)  # ~ Binomial(20, p)
    tickets = _poisson(noise.uniform(_TICKETS, m, a), 0.12 * seats ** 0.35 * np.exp(-0.55 * e))
    s.users[m, a], s.logins[m, a], s.features[m, a] = users, logins, features
    s.observed[m, a] = 1.0
    s.tickets[m, a] = tickets
    count = tickets.astype(int)
    total = int(count.sum())
    if total == 0:
        return
    owner = np.repeat(a, count)
    slot = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
    rated = noise.uniform(_RATED, m, owner, slot) < 0.7
    score = np.clip(np.round(3.9 + 0.6 * np.repeat(e, count) + 0.8 * noise.normal(_SCORE, m, owner, slot)[0]),
                    1, 5)
    s.csat_sum[m, :k] = np.bincount(owner[rated], weights=score[rated], minlength=k)
    s.csat_n[m, :k] = np.bincount(owner[rated], minlength=k)
    if rec is not None:
        opened = rec.random_days(m, total)
        rec.tickets.append(pd.DataFrame({
            "account_id": rec.account_ids[owner], "opened_at": opened,
            "closed_at": opened + rec.rng.integers(0, 10, total).astype("timedelta64[D]"),
            "priority": rec.rng.choice(["low", "normal", "high", "urgent"], total, p=[0.3, 0.45, 0.2, 0.05]),
            "csat": np.where(rated, score, np.nan)}))


def _step_outcomes(s: SimState, m: int, k: int, noise: Noise) -> None:
    """Committed outcomes are achieved with a probability that rises with engagement and CSM help."""
    live = np.flatnonzero(s.active[:k] & (s.signup_m[:k] < m))
    p = _sigmoid(-3.3 + 0.9 * s.engagement[live] + 0.5 * s.has_csm[live])
    for j in range(3):
        open_ = (s.achieved_m[j, live] < 0) & (s.n_outcomes[live] > j)
        i = live[open_]
        hit = i[noise.uniform(_OUTCOME + j, m, i) < p[open_]]
        s.achieved_m[j, hit] = m
        s.first_achieved[hit[s.first_achieved[hit] < 0]] = m


def _step_month(s: SimState, m: int, noise: Noise, policy: Policy, rec: _Recorder | None) -> None:
    k = int(np.searchsorted(s.signup_m, m, side="right"))  # accounts signed up by month m
    sig = _signals(s, m, k) if m > 0 else None
    _step_moves(s, m, k, sig, noise, rec)
    _step_reactivation(s, m, k, noise, rec)
    _step_signups(s, m, k, rec)
    _step_cs(s, m, k, sig, noise, policy, rec)
    _step_usage(s, m, k, noise, rec)
    _step_outcomes(s, m, k, noise)
    s.mrr[m, :k] = s.active[:k] * (s.seats[:k] * SEAT_PRICE[s.plan[:k]]
                                   + (s.addons[:, :k] * s.addon_price[:, :k]).sum(axis=0))


def simulate(state: SimState | list[SimState], until: int, noise: Noise,
             policy: Policy | list[Policy] = NATURAL, _recorder: _Recorder | None = None):
    """Advance ``state`` (in place) month by month up to, not including, month ``until``.

    A list of states (worlds of the same accounts) takes one policy each; every world draws the
    same random numbers (``noise``, one per account), so they differ only through their policies.

    Examples
    --------
    >>> s = population(300, 12, seed=1)
    >>> simulate(s, 12, Noise.for_seed(1, s.n)).month
    12
    """
    states = state if isinstance(state, list) else [state]
    policies = policy if isinstance(policy, list) else [policy] * len(states)
    if len(policies) != len(states) or (_recorder is not None and len(states) > 1):
        raise ValueError("one policy per state, and a recorder only for a single state")
    if any(until > s.horizon for s in states):
        raise ValueError(f"a state has no room for {until} months")
    if any(s.n != noise.n for s in states):
        raise ValueError("the noise must have one stream per account of the state")
    if any(np.any(np.diff(s.signup_m) < 0) for s in states):
        raise ValueError("accounts must be sorted by signup month")
    for s, p in zip(states, policies):
        while s.month < until:
            _step_month(s, s.month, noise, p, _recorder)
            s.month += 1
    return state


# ---- the book -----------------------------------------------------------------------------------

def generate(n_accounts: int = 3000, n_months: int = 36, seed: int = 42,
             start: str = "2023-01-01", params: BookParams | None = None) -> SyntheticBook:
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
        "accounts": int(n), "subscription_lines": int(len(tables["subscriptions"])),
        "usage_rows": int(len(tables["usage"])),
        "monthly_churn_probability_mean": float(truth_panel["p_churn"].mean()),
    }
    return SyntheticBook(tables, truth, truth_panel)


def _tables(s: SimState, rec: _Recorder, T: int, month_starts: pd.DatetimeIndex) -> dict[str, pd.DataFrame]:
    rng, n = rec.rng, s.n
    still = np.flatnonzero(s.active)
    rec.close_lines(s, still, np.full(len(still), np.datetime64("NaT"), dtype="datetime64[ns]"))
    subscriptions = pd.concat(rec.subs, ignore_index=True)
    subscriptions = subscriptions[subscriptions["end_date"].isna()
                                  | (subscriptions["end_date"] >= subscriptions["start_date"])]
    subscriptions = subscriptions.sort_values(["account_id", "start_date", "product"], ignore_index=True)

    account_ids = rec.account_ids
    accounts = pd.DataFrame({
        "account_id": account_ids, "name": _company_names(n, rng),
        "signup_date": rec.day(s.signup_m, np.minimum(rec.signup_d, 28)), "segment": SEGMENTS[s.seg],
        "industry": rng.choice(INDUSTRIES, n), "region": rng.choice(REGIONS, n, p=[0.45, 0.3, 0.15, 0.1]),
        "csm_id": rec.csm, "employees": s.employees,
    })
    accounts["signup_date"] = pd.to_datetime(
        subscriptions.groupby("account_id")["start_date"].min().reindex(account_ids).to_numpy())

    month_end = (month_starts[:-1] + pd.offsets.MonthEnd(0)).to_numpy()
    j, i = np.nonzero(s.observed[:T])
    usage = pd.concat([pd.DataFrame({"account_id": account_ids[i], "date": month_end[j], "metric": metric,
                                     "value": values[j, i]})
                       for metric, values in (("active_users", s.users), ("logins", s.logins),
                                              ("features_used", s.features))],
                      ignore_index=True).sort_values(["account_id", "date", "metric"], ignore_index=True)
    cs_activities = pd.concat(rec.acts, ignore_index=True).sort_values(["account_id", "date"],
                                                                        ignore_index=True)
    tickets = pd.concat(rec.tickets, ignore_index=True).sort_values(["account_id", "opened_at"],
                                                                    ignore_index=True)
    oi, ok = np.nonzero(np.arange(3) < s.n_outcomes[:, None])
    committed = rec.day(s.signup_m[oi], np.minimum(rec.signup_d[oi] + 7, 28))
    outcome_names = np.array(["Reduce reporting time", "Roll out to all teams", "Replace legacy tool",
                              "Automate onboarding", "Single view of customer"])
    achieved = s.achieved_m[ok, oi]
    achieved_date = np.where(achieved >= 0, rec.day(np.maximum(achieved, 0), rng.integers(1, 29, len(oi))),
                             np.datetime64("NaT"))
    outcomes = pd.DataFrame({
        "account_id": account_ids[oi], "outcome": outcome_names[(oi + ok) % len(outcome_names)],
        "committed_date": committed, "target_date": committed + np.timedelta64(120, "D"),
        "achieved_date": achieved_date})
    cs_costs = pd.DataFrame({"month": month_starts[:-1], "cost": _monthly_cost(s, 0, T),
                             "csm_headcount": s.n_csm})
    return {"subscriptions": subscriptions, "accounts": accounts, "usage": usage,
            "cs_activities": cs_activities, "tickets": tickets, "outcomes": outcomes, "cs_costs": cs_costs}


def _monthly_cost(s: SimState, lo: int, hi: int) -> np.ndarray:
    """``cs_costs.cost`` of months ``lo .. hi - 1``: CSM salaries plus hours of activities."""
    return (s.n_csm * CSM_MONTHLY_COST + HOURLY_COST * s.hours[lo:hi].sum(axis=1)).round(0)


# ---- truth by simulation ------------------------------------------------------------------------

def _hazard_cells(s: SimState, T: int, world_on: int) -> tuple[np.ndarray, np.ndarray]:
    """Trials and churns per cell (exposed x tenure band x segment x renewal) of months at risk."""
    mi, ii = np.nonzero(s.at_risk[:T])
    band = np.searchsorted(TENURE_BANDS, mi - s.signup_m[ii], side="right")
    exposed = world_on * (mi > s.signup_m[ii])  # exposure begins the month after signup
    cell = ((exposed * 5 + band) * 3 + s.seg[ii]) * 2 + s.renewal[mi, ii]
    return (np.bincount(cell, minlength=60).astype(float),
            np.bincount(cell, weights=s.churned[mi, ii], minlength=60))


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
    X = np.column_stack([np.ones(len(cells)), exposed, *(band == b for b in range(1, 5)),
                         seg == 1, seg == 2, renewal]).astype(float)
    X = X[:, np.r_[True, X[:, 1:].std(axis=0) > 0]]  # drop a band nobody is in (short books)
    y = np.column_stack([events[cells], trials[cells] - events[cells]])
    with warnings.catch_warnings():  # a book of a few months can leave a cell without churn
        warnings.simplefilter("ignore")
        fit = GLM(y, X, family=Binomial(link=CLogLog())).fit()
    return float(fit.params[1]), float(fit.bse[1])


@functools.lru_cache(maxsize=8)
def _programme_totals(n_months: int, start: str, n_reference: int,
                      params: BookParams = DEFAULT_PARAMS) -> tuple[tuple, tuple]:
    """Each programme's total hazard ratio, by simulation: forced on for everyone vs never given.

    A property of the generating model (not of one book): a reference population of ``n_reference``
    accounts with a constant seed, the other programmes following their natural policy in both
    worlds, common random numbers. ``start`` does not change the simulation (only the calendar).
    """
    noise = Noise.for_seed(REFERENCE_SEED, n_reference)
    hr, se = [], []
    for name in ACTIVITIES:
        # the same accounts in both worlds (same seed), fresh arrays rather than copies
        on, off = (simulate(population(n_reference, n_months, REFERENCE_SEED, params=params),
                            n_months, noise, Policy(**{force: {name}})) for force in ("force_on", "force_off"))
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
    source = np.tile(keep, pairs)[order]                   # account of the window start
    block = np.repeat(np.arange(pairs), len(keep))[order]  # pair
    noise = Noise.concat([Noise.for_seed(seed, s.n, stream=1 + k).subset(keep)
                          for k in range(pairs)]).subset(order)
    a = simulate(s.subset(source), end, noise, Policy(stop_from=T))
    given = a.delivered[:, w0:T].any(axis=0)                # (month in window, account)
    treated = np.flatnonzero(given.any(axis=0))
    b = simulate(s.subset(source[treated]), end, noise.subset(treated), Policy(stop_from=w0))
    first = w0 + np.argmax(given[:, treated], axis=0)      # first delivery month in the window
    gain = np.vstack([np.zeros(len(treated)), np.cumsum(a.mrr[:, treated] - b.mrr, axis=0)])
    cols = np.arange(len(treated))                           # gain[t]: sum over months before t
    value = ROI_GROSS_MARGIN * (gain[first + 1 + ROI_VALUE_HORIZON, cols] - gain[first + 1, cols])
    hours = np.stack([a.hours[w0:T, block == k].sum(axis=1) for k in range(pairs)])
    cost = (a.n_csm * CSM_MONTHLY_COST + HOURLY_COST * hours).round(0).sum(axis=1)
    return np.column_stack([np.bincount(block[treated], weights=value, minlength=pairs), cost,
                            np.bincount(block[treated], minlength=pairs)])


def _roi_truth(window_start: SimState, seed: int, T: int, month_starts: pd.DatetimeIndex,
               pairs: int = ROI_PAIRS) -> dict:
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
            "book's own cost of the window"),
    }


# Typical spread of each feature in a book like this, used to rank effects as a model would see
# them (|coefficient| x standard deviation of the feature).
_FEATURE_SD = {"seat_utilisation": 0.25, "usage_logins_trend": 0.25, "tickets_90d": 1.3,
               "csat_90d": 0.6, "tenure_months": 9.0, "usage_active_users_trend": 0.2,
               "usage_features_used": 4.5}


def _truth(seed, n, T, start, params: BookParams = DEFAULT_PARAMS) -> dict:
    def ranked(effects):
        strength = {k: abs(v) * _FEATURE_SD[k] for k, v in effects.items()}
        return sorted(strength, key=strength.get, reverse=True), strength

    churn_order, churn_strength = ranked(CHURN_EFFECTS)
    expansion_order, expansion_strength = ranked(EXPANSION_EFFECTS)
    # Annual contracts churn only at renewal: in the kit's features that is months_to_renewal, the
    # strongest single signal of *when* an annual account can leave.
    # Together with the billing period itself (monthly accounts can leave any month).
    churn_drivers = (["months_to_renewal", churn_order[0], "billing_period_months"] + churn_order[1:2]
                     + ["outcomes_achieved_share"] + churn_order[2:])
    return {
        "seed": seed, "n_accounts": n, "n_months": T, "start": start,
        "churn_model": "monthly complementary log-log: exp(coef) is the hazard ratio per unit",
        "churn_drivers": churn_drivers,
        "churn_driver_effects": {
            **{k: {"coef": v, "hazard_ratio_per_unit": float(np.exp(v)),
                   "strength": churn_strength[k], "direction": "raises risk" if v > 0 else "lowers risk"}
               for k, v in CHURN_EFFECTS.items()},
            "outcomes_achieved_share": {"coef": float(np.log(OUTCOME_ACHIEVED_HR)),
                                        "hazard_ratio_per_unit": OUTCOME_ACHIEVED_HR,
                                        "note": "applies once at least one committed outcome is achieved",
                                        "direction": "lowers risk"},
            "months_to_renewal": {"note": "annual accounts (billing_period_months 12) can churn only "
                                          "at renewal, monthly ones any month"},
            "billing_period_months": {"note": "see months_to_renewal: the contract term decides when "
                                              "an account can leave"},
            "segment": {"base_monthly_hazard": dict(zip(SEGMENTS.tolist(),
                                                         np.exp(np.asarray(params.churn_base)).round(4).tolist()))},
        },
        "programme_direct_hr": dict(PROGRAMME_DIRECT_HR),
        "programme_exposure": dict(PROGRAMME_EXPOSURE),
        "exposure_months": EXPOSURE_MONTHS,
        "programme_engagement_boost": dict(PROGRAMME_ENGAGEMENT_BOOST),
        "programme_engagement_boost_months": BOOST_MONTHS,
        "programme_hr_method": {
            "reference_accounts": None, "reference_seed": REFERENCE_SEED,
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
            "total effect is larger than the direct one. The others act only directly"),
        "outcome_achieved_hr": OUTCOME_ACHIEVED_HR,
        "expansion_drivers": expansion_order,
        "expansion_driver_effects": {k: {"coef": v, "strength": expansion_strength[k]}
                                     for k, v in EXPANSION_EFFECTS.items()},
        "annual_contracts": "annual accounts churn only at renewal, with probability "
                            "1 - exp(-12 x monthly hazard)",
    }


def write_synthetic(out_dir: str | Path, n_accounts: int = 3000, n_months: int = 36,
                    seed: int = 42, params: BookParams | None = None) -> Path:
    """Generate a book and write it (tables, ``truth.json``, ``truth_panel.csv``) to ``out_dir``.

    Examples
    --------
    >>> write_synthetic("/tmp/book", n_accounts=300, n_months=12, seed=7)  # doctest: +SKIP
    """
    return generate(n_accounts, n_months, seed, params=params).write(out_dir)
