"""The monthly simulation: one function per step, and :func:`simulate` that runs them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cslab.data.synth.book import _Recorder
from cslab.data.synth.params import (
    _P,
    ACTIVITIES,
    ACTIVITY_HOURS_SCALE,
    BOOST_MONTHS,
    CHURN_EFFECTS,
    EXPANSION_EFFECTS,
    EXPOSURE_MONTHS,
    OUTCOME_ACHIEVED_HR,
    PROGRAMME_DIRECT_HR,
    PROGRAMME_ENGAGEMENT_BOOST,
    PROGRAMME_EXPOSURE,
    SEAT_PRICE,
)
from cslab.data.synth.state import (
    _ADDON,
    _CHURN,
    _CONTRACT,
    _DECIDE,
    _ENGAGEMENT,
    _EXPAND,
    _HOURS,
    _KIND,
    _OUTCOME,
    _RATED,
    _REACTIVATE,
    _SCORE,
    _SEAT_ADD,
    _SEAT_CUT,
    _SECOND,
    _TICKETS,
    _USAGE,
    NATURAL,
    Noise,
    Policy,
    SimState,
    _poisson,
    _sigmoid,
)

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
    return _Signals(
        util, login_trend, users_trend, s.tickets[recent, :k].sum(axis=0), csat90, mean(s.features, recent, count, 10.0)
    )


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


def _step_moves(s: SimState, m: int, k: int, sig: _Signals | None, noise: Noise, rec: _Recorder | None) -> None:
    """Churn, expansion and contraction of the accounts active at the end of last month."""
    at = np.flatnonzero(s.active[:k])
    if m == 0 or len(at) == 0:
        return
    util = sig.util[at]
    users_trend = sig.users_trend[at]
    tenure = m - s.signup_m[at]
    params = s.params
    eta = (
        np.asarray(params.churn_base)[s.seg[at]]
        + CHURN_EFFECTS["seat_utilisation"] * (util - 0.6)
        + CHURN_EFFECTS["usage_logins_trend"] * sig.login_trend[at]
        + CHURN_EFFECTS["tickets_90d"] * sig.t90[at]
        + CHURN_EFFECTS["csat_90d"] * (sig.csat90[at] - 4.0)
        + CHURN_EFFECTS["tenure_months"] * tenure
        + _programme_log_hr(s, m, at)
    )
    achieved = (s.first_achieved[at] >= 0) & (s.first_achieved[at] < m)
    eta = eta + np.log(OUTCOME_ACHIEVED_HR) * achieved
    if params.cohort_drift:  # later cohorts churn more (workshop scenario "hidden risk")
        eta = eta + s.churn_shift[at]
    hazard = np.exp(eta)
    annual = s.annual[at]
    renewal = annual & ((m - s.cycle_start_m[at]) % 12 == 0)
    p_churn = np.where(annual, np.where(renewal, 1 - np.exp(-12 * hazard), 0.0), 1 - np.exp(-hazard))
    x_eta = (
        np.asarray(params.expansion_base)[s.seg[at]]
        + EXPANSION_EFFECTS["seat_utilisation"] * (util - 0.7)
        + EXPANSION_EFFECTS["usage_active_users_trend"] * users_trend
        + EXPANSION_EFFECTS["usage_features_used"] * (sig.feat_used[at] - 10)
        + EXPANSION_EFFECTS["tenure_months"] * tenure
    )
    p_expand = _sigmoid(x_eta)
    churned = noise.uniform(_CHURN, m, at) < p_churn
    expands = ~churned & (noise.uniform(_EXPAND, m, at) < p_expand)
    p_contract = _sigmoid(-5.0 - 3.0 * (util - 0.5) - 2.0 * users_trend)
    p_contract = np.where(annual & ~renewal, 0.0, p_contract)
    contracts = ~churned & ~expands & (noise.uniform(_CONTRACT, m, at) < p_contract) & (s.seats[at] > 2)
    s.at_risk[m, at] = p_churn > 0
    s.renewal[m, at] = renewal
    s.hazard[m, at] = hazard
    if rec is not None:
        rec.truth.append(
            pd.DataFrame(
                {"account_id": rec.account_ids[at], "month": rec.ms[m], "p_churn": p_churn, "p_expand": p_expand}
            )
        )
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
    s.seats[up] += np.maximum(1, np.round(s.seats[up] * (0.1 + 0.3 * noise.uniform(_SEAT_ADD, m, up)))).astype(int)
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


def _natural_deliveries(
    s: SimState, m: int, k: int, name: str, sig: _Signals | None, new: np.ndarray, live: np.ndarray, noise: Noise
) -> np.ndarray:
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


def _step_cs(
    s: SimState, m: int, k: int, sig: _Signals | None, noise: Noise, policy: Policy, rec: _Recorder | None
) -> None:
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
        hours = np.round(
            -ACTIVITY_HOURS_SCALE[name]
            * np.log(noise.uniform(_HOURS + p, m, idx) * noise.uniform(_HOURS + p + _SECOND, m, idx)),
            1,
        )
        s.hours[m, idx] += hours
        if rec is not None:
            days = rec.signup_d[idx] if name == "onboarding" else rec.rng.integers(1, 29, len(idx))
            rec.acts.append(
                pd.DataFrame(
                    {
                        "account_id": rec.account_ids[idx],
                        "date": rec.day(np.full(len(idx), m), days),
                        "activity_type": name,
                        "hours": hours,
                        "csm_id": rec.csm[idx],
                    }
                )
            )


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
    features = np.clip(
        np.round(20 * p_feature + np.sqrt(20 * p_feature * (1 - p_feature)) * z_features), 0, 20
    )  # ~ Binomial(20, p)
    tickets = _poisson(noise.uniform(_TICKETS, m, a), 0.12 * seats**0.35 * np.exp(-0.55 * e))
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
    score = np.clip(np.round(3.9 + 0.6 * np.repeat(e, count) + 0.8 * noise.normal(_SCORE, m, owner, slot)[0]), 1, 5)
    s.csat_sum[m, :k] = np.bincount(owner[rated], weights=score[rated], minlength=k)
    s.csat_n[m, :k] = np.bincount(owner[rated], minlength=k)
    if rec is not None:
        opened = rec.random_days(m, total)
        rec.tickets.append(
            pd.DataFrame(
                {
                    "account_id": rec.account_ids[owner],
                    "opened_at": opened,
                    "closed_at": opened + rec.rng.integers(0, 10, total).astype("timedelta64[D]"),
                    "priority": rec.rng.choice(["low", "normal", "high", "urgent"], total, p=[0.3, 0.45, 0.2, 0.05]),
                    "csat": np.where(rated, score, np.nan),
                }
            )
        )


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
    s.mrr[m, :k] = s.active[:k] * (
        s.seats[:k] * SEAT_PRICE[s.plan[:k]] + (s.addons[:, :k] * s.addon_price[:, :k]).sum(axis=0)
    )


def simulate(
    state: SimState | list[SimState],
    until: int,
    noise: Noise,
    policy: Policy | list[Policy] = NATURAL,
    _recorder: _Recorder | None = None,
):
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
