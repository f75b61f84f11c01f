"""The simulation's state: common random numbers (:class:`Noise`), the CS policy (:class:`Policy`),
the arrays over accounts (:class:`SimState`) and the population that starts them."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from cslab.data.synth.params import ACTIVITIES, ADDON_PRICE, ADDONS, BOOST_MONTHS, DEFAULT_PARAMS, BookParams


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


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
_SECOND = 1 << 12  # the second uniform of a Box-Muller pair


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

    def uniform(
        self, purpose: int, m: int, idx: np.ndarray | slice | None = None, slot: np.ndarray | None = None
    ) -> np.ndarray:
        """Uniforms in (0, 1) for accounts ``idx`` (all when None), one per account (and slot)."""
        x = (self._account if idx is None else self._account[idx]) ^ np.uint64(
            _mix64((int(purpose) << 24) + int(m) + 1)
        )
        if slot is not None:
            x += np.asarray(slot).astype(np.uint64) * _USLOT
        _mix(x)
        return ((x >> _U11).astype(np.float64) + 0.5) * (2.0**-53)

    def normal(
        self, purpose: int, m: int, idx: np.ndarray | slice | None = None, slot: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
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
    addon_price: np.ndarray  # (add-on, account) MRR of each add-on
    churn_shift: np.ndarray  # added to the churn hazard's cloglog (BookParams.cohort_drift)
    n_csm: int
    # evolving state
    active: np.ndarray
    ever: np.ndarray
    churn_m: np.ndarray
    cycle_start_m: np.ndarray  # month of the current contract's start (annual renewals)
    seats: np.ndarray
    plan: np.ndarray
    addons: np.ndarray  # (add-on, account) bool
    engagement: np.ndarray
    achieved_m: np.ndarray  # (outcome, account) month achieved, -1
    first_achieved: np.ndarray
    first_del: np.ndarray  # (programme, account) first delivery month, -1
    last_del: np.ndarray  # (programme, account) last delivery month, -1
    boost: np.ndarray  # (month % (BOOST_MONTHS + 1), account) engagement still to add
    # monthly records, (month, account): usage as the signals and the usage table read it
    users: np.ndarray
    logins: np.ndarray
    features: np.ndarray
    observed: np.ndarray  # 1.0 where the account was active at the month's end
    tickets: np.ndarray
    csat_sum: np.ndarray
    csat_n: np.ndarray
    # monthly records, (month, account): what counterfactual runs are read for
    mrr: np.ndarray  # MRR at the month's end (add-ons included, 0 when not active)
    hazard: np.ndarray  # monthly churn hazard of the accounts active at the month's start
    at_risk: np.ndarray  # could churn this month (monthly: active; annual: at renewal)
    renewal: np.ndarray  # annual account at a renewal month
    churned: np.ndarray
    delivered: np.ndarray  # (programme, month, account) bool
    hours: np.ndarray  # CS hours delivered to the account in the month
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
        return SimState(
            **{
                f.name: (
                    getattr(self, f.name)[..., idx].copy()
                    if isinstance(getattr(self, f.name), np.ndarray)
                    else getattr(self, f.name)
                )
                for f in fields(self)
            }
        )

    @staticmethod
    def concat(states: list[SimState]) -> SimState:
        """The accounts of several states (same month, same CSM team) as one, in the given order."""
        if len({(s.month, s.n_csm) for s in states}) != 1:
            raise ValueError("states to concatenate must be at the same month with the same CSM team")
        return SimState(
            **{
                f.name: (
                    np.concatenate([getattr(s, f.name) for s in states], axis=-1)
                    if isinstance(getattr(states[0], f.name), np.ndarray)
                    else getattr(states[0], f.name)
                )
                for f in fields(SimState)
            }
        )


def population(
    n_accounts: int,
    n_months: int,
    seed: int,
    extra_months: int = 0,
    rng: np.random.Generator | None = None,
    params: BookParams = DEFAULT_PARAMS,
) -> SimState:
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
    engagement = rng.normal(0.0, 1.0, n) + drift * signup_m + 0.12 * np.sqrt(signup_m) * rng.normal(0.0, 1.0, n)
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
        signup_m=signup_m,
        seg=seg,
        employees=employees,
        annual=annual,
        has_csm=has_csm,
        qbr_cadence=qbr_cadence,
        drift=drift,
        login_habit=login_habit,
        feature_habit=feature_habit,
        n_outcomes=n_outcomes,
        addon_price=ADDON_PRICE[:, seg],
        churn_shift=params.cohort_drift * np.maximum(0.0, signup_m - params.drift_from * T),
        n_csm=max(3, int(np.ceil(has_csm.sum() / params.accounts_per_csm))),
        active=np.zeros(n, bool),
        ever=np.zeros(n, bool),
        churn_m=np.full(n, -1),
        cycle_start_m=signup_m.copy(),
        seats=seats,
        plan=plan,
        addons=np.zeros((len(ADDONS), n), bool),
        engagement=engagement,
        achieved_m=np.full((3, n), -1),
        first_achieved=np.full(n, -1),
        first_del=np.full((P, n), -1),
        last_del=np.full((P, n), -1),
        boost=np.zeros((BOOST_MONTHS + 1, n)),
        users=np.zeros((H, n)),
        logins=np.zeros((H, n)),
        features=np.zeros((H, n)),
        observed=np.zeros((H, n)),
        tickets=np.zeros((H, n)),
        csat_sum=np.zeros((H, n)),
        csat_n=np.zeros((H, n)),
        mrr=np.zeros((H, n)),
        hazard=np.zeros((H, n)),
        at_risk=np.zeros((H, n), bool),
        renewal=np.zeros((H, n), bool),
        churned=np.zeros((H, n), bool),
        delivered=np.zeros((P, H, n), bool),
        hours=np.zeros((H, n)),
        params=params,
    )
