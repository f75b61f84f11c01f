"""A synthetic B2B SaaS book with planted truth, for demos, teaching and tests.

The book is simulated month by month, vectorised across accounts:

* accounts sign up over the period (more later: the business grows), in three segments with their own
  sizes, seat prices and contract terms; annual accounts can churn only at renewal;
* a latent engagement per account drifts (a random walk with an account-specific drift) and drives
  usage (active users, logins, breadth of features used), support tickets and CSAT;
* customer-success activities are given with selection bias, as in real life: onboarding goes to
  larger accounts, training and health checks to accounts whose usage looks weak, escalations to
  accounts with many tickets. CSMs target only on what the data shows, so adjusting for observed
  pre-treatment signals can recover each programme's effect;
* the monthly churn hazard (complementary log-log, so ``exp(coef)`` is a hazard ratio) comes from
  planted effects of observable drivers, computed exactly as the kit's features are, and of each CS
  programme (a direct effect from the month after an account's first activity of that type: a
  programme does not also change engagement or outcomes, so its planted hazard ratio is its whole
  effect);
* expansion (seat adds, plan upgrades, add-on products) is more likely when seats are well used and
  usage grows; contraction when usage falls; some churned accounts come back.

``truth.json`` names the planted effects in the kit's feature names; ``truth_panel.csv`` holds the true
monthly churn and expansion probabilities of every account at risk, so the best achievable AUC of any
model can be computed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["SyntheticBook", "generate", "write_synthetic", "PROGRAMME_HR", "OUTCOME_ACHIEVED_HR"]

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
PROGRAMME_HR = {"onboarding": 0.70, "qbr": 0.80, "training": 0.85, "health_check": 0.90,
                "escalation": 1.00}
OUTCOME_ACHIEVED_HR = 0.60
# Expansion: logit per unit of each feature.
EXPANSION_EFFECTS = {
    "seat_utilisation": 4.0,
    "usage_active_users_trend": 2.0,
    "usage_features_used": 0.08,     # features used (0..20), centred at 10
    "tenure_months": -0.02,
}
EXPANSION_BASE = np.array([-4.3, -4.0, -3.7])


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


def generate(n_accounts: int = 3000, n_months: int = 36, seed: int = 42,
             start: str = "2023-01-01") -> SyntheticBook:
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
    ms = month_starts.to_numpy()

    def day(m: np.ndarray, d: np.ndarray) -> np.ndarray:
        """Date of day ``d`` (1-based) in month ``m``."""
        return ms[m] + (d - 1).astype("timedelta64[D]")

    # ---- accounts ----------------------------------------------------------------------------
    growth = np.exp(0.035 * np.arange(T))
    signup_m = np.sort(rng.choice(T, size=n, p=growth / growth.sum()))
    signup_d = rng.integers(1, 29, n)
    seg = rng.choice(3, size=n, p=SEGMENT_SHARE)
    employees = np.round(np.exp(rng.normal(np.array([3.3, 5.4, 7.0])[seg], 0.5))).astype(int) + 2
    seats = np.maximum(2, np.round(employees * rng.uniform(0.08, 0.3, n))).astype(int)
    seats = np.minimum(seats, np.array([40, 250, 800])[seg])
    plan = np.clip(seg + rng.choice([-1, 0, 0, 0, 1], size=n), 0, 2)
    annual = rng.random(n) < ANNUAL_SHARE[seg]
    has_csm = rng.random(n) < CSM_SHARE[seg]
    n_csm = max(3, int(np.ceil(has_csm.sum() / 60)))
    csm = np.where(has_csm, np.char.add("CSM", np.char.zfill(rng.integers(1, n_csm + 1, n).astype(str), 2)), "")
    account_ids = np.char.add("A", np.char.zfill((np.arange(n) + 1).astype(str), 5))
    engagement = rng.normal(0.0, 1.0, n)
    drift = rng.normal(0.0, 0.05, n)
    # Persistent per-account habits: some teams log in more, use more features, whatever their
    # engagement. Usage levels are then noisy proxies of engagement, and the planted drivers
    # (utilisation, trends) stay the clearest signals, as the truth says.
    login_habit = rng.normal(0.0, 0.6, n)
    # Only some CSMs run quarterly business reviews, more often with larger customers
    qbr_cadence = has_csm & (rng.random(n) < _sigmoid(-1.0 + 0.6 * (np.log(employees) - 5.0)))
    feature_habit = rng.normal(0.0, 1.0, n)

    # ---- state ---------------------------------------------------------------------------------
    active = np.zeros(n, bool)
    ever = np.zeros(n, bool)
    churn_m = np.full(n, -1)
    addons = np.zeros((n, len(ADDONS)), bool)
    first_act = {a: np.full(n, -1) for a in ACTIVITIES}
    n_outcomes = rng.integers(1, 4, n)
    achieved_m = np.full((n, 3), -1)
    users = np.full((n, T), np.nan)
    logins = np.full((n, T), np.nan)
    features = np.full((n, T), np.nan)
    tickets = np.zeros((n, T))
    csat_sum = np.zeros((n, T))
    csat_n = np.zeros((n, T))
    line_start = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    addon_start = np.full((n, len(ADDONS)), np.datetime64("NaT"), dtype="datetime64[ns]")
    cycle_start_m = signup_m.copy()  # month of the current contract's start (for annual renewals)

    sub_rows: list[pd.DataFrame] = []
    activity_rows: list[pd.DataFrame] = []
    ticket_rows: list[pd.DataFrame] = []
    truth_rows: list[pd.DataFrame] = []

    def core_mrr(idx):
        return seats[idx] * SEAT_PRICE[plan[idx]]

    def close_core(idx, end):
        """End the open Core line of accounts ``idx`` on dates ``end`` (its last paid day)."""
        sub_rows.append(pd.DataFrame({
            "account_id": account_ids[idx], "start_date": line_start[idx], "end_date": end,
            "mrr": core_mrr(idx), "product": "Core", "plan": PLANS[plan[idx]], "seats": seats[idx],
            "billing_period_months": np.where(annual[idx], 12, 1)}))

    def close_lines(idx, end):
        """End every open line (Core and add-ons) of accounts ``idx`` on dates ``end``."""
        if len(idx) == 0:
            return
        close_core(idx, end)
        for k in range(len(ADDONS)):
            has = addons[idx, k]
            if has.any():
                j = idx[has]
                sub_rows.append(pd.DataFrame({
                    "account_id": account_ids[j], "start_date": addon_start[j, k],
                    "end_date": end[has] if np.ndim(end) else end, "mrr": ADDON_PRICE[k, seg[j]],
                    "product": ADDONS[k], "plan": PLANS[plan[j]], "seats": np.nan,
                    "billing_period_months": np.where(annual[j], 12, 1)}))

    def features_at(m):
        """The kit's features as of the end of month ``m`` (arrays over all accounts)."""
        util = users[:, m] / seats
        lo = max(0, m - 2)
        recent = np.nanmean(logins[:, lo:m + 1], axis=1) if m >= 0 else np.full(n, np.nan)
        before = np.nanmean(logins[:, max(0, m - 5):max(0, m - 2)], axis=1) if m >= 3 else np.full(n, np.nan)
        login_trend = recent / before - 1
        u_recent = np.nanmean(users[:, lo:m + 1], axis=1)
        u_before = np.nanmean(users[:, max(0, m - 5):max(0, m - 2)], axis=1) if m >= 3 else np.full(n, np.nan)
        users_trend = u_recent / u_before - 1
        t90 = tickets[:, lo:m + 1].sum(axis=1)
        cn = csat_n[:, lo:m + 1].sum(axis=1)
        csat90 = np.where(cn > 0, csat_sum[:, lo:m + 1].sum(axis=1) / np.maximum(cn, 1), np.nan)
        feat_used = np.nanmean(features[:, lo:m + 1], axis=1)
        return util, login_trend, users_trend, t90, csat90, feat_used

    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of all-NaN windows is NaN on purpose
        for m in range(T):
            new = np.flatnonzero(signup_m == m)
            # -- churn, expansion, contraction of accounts active at the end of last month --------
            at_risk = np.flatnonzero(active)
            if len(at_risk) and m > 0:
                util, login_trend, users_trend, t90, csat90, feat_used = (a[at_risk] for a in features_at(m - 1))
                tenure = m - signup_m[at_risk]
                eta = (SEGMENT_BASE[seg[at_risk]]
                       + CHURN_EFFECTS["seat_utilisation"] * (np.nan_to_num(util, nan=0.5) - 0.6)
                       + CHURN_EFFECTS["usage_logins_trend"] * np.clip(np.nan_to_num(login_trend), -1, 1)
                       + CHURN_EFFECTS["tickets_90d"] * t90
                       + CHURN_EFFECTS["csat_90d"] * (np.nan_to_num(csat90, nan=4.0) - 4.0)
                       + CHURN_EFFECTS["tenure_months"] * tenure)
                for name, hr in PROGRAMME_HR.items():
                    started = (first_act[name][at_risk] >= 0) & (first_act[name][at_risk] < m)
                    eta = eta + np.log(hr) * started
                any_achieved = (achieved_m[at_risk] >= 0).any(axis=1) & ((np.where(achieved_m[at_risk] < 0, T, achieved_m[at_risk])).min(axis=1) < m)
                eta = eta + np.log(OUTCOME_ACHIEVED_HR) * any_achieved
                hazard = np.exp(eta)
                renewal = annual[at_risk] & ((m - cycle_start_m[at_risk]) % 12 == 0)
                p_churn = np.where(annual[at_risk], np.where(renewal, 1 - np.exp(-12 * hazard), 0.0),
                                   1 - np.exp(-hazard))
                x_eta = (EXPANSION_BASE[seg[at_risk]]
                         + EXPANSION_EFFECTS["seat_utilisation"] * (np.nan_to_num(util, nan=0.5) - 0.7)
                         + EXPANSION_EFFECTS["usage_active_users_trend"] * np.clip(np.nan_to_num(users_trend), -1, 1)
                         + EXPANSION_EFFECTS["usage_features_used"] * (np.nan_to_num(feat_used, nan=10) - 10)
                         + EXPANSION_EFFECTS["tenure_months"] * tenure)
                p_expand = _sigmoid(x_eta)
                churned = rng.random(len(at_risk)) < p_churn
                expands = ~churned & (rng.random(len(at_risk)) < p_expand)
                p_contract = _sigmoid(-5.0 - 3.0 * (np.nan_to_num(util, nan=0.5) - 0.5)
                                      - 2.0 * np.clip(np.nan_to_num(users_trend), -1, 1))
                p_contract = np.where(annual[at_risk] & ~renewal, 0.0, p_contract)
                contracts = ~churned & ~expands & (rng.random(len(at_risk)) < p_contract) & (seats[at_risk] > 2)
                truth_rows.append(pd.DataFrame({"account_id": account_ids[at_risk], "month": ms[m],
                                                "p_churn": p_churn, "p_expand": p_expand}))
                # churn: the last paid day is the end of the billing cycle falling in month m
                c = at_risk[churned]
                close_lines(c, day(np.full(len(c), m), signup_d[c]) - np.timedelta64(1, "D"))
                active[c] = False
                churn_m[c] = m
                addons[c] = False
                # expansion: seat add (60%), plan upgrade (15%), add-on product (25%)
                e = at_risk[expands]
                kind = rng.choice(3, size=len(e), p=[0.6, 0.15, 0.25])
                kind = np.where((kind == 1) & (plan[e] == 2), 0, kind)
                free_addon = ~addons[e].all(axis=1)
                kind = np.where((kind == 2) & ~free_addon, 0, kind)
                change = day(np.full(len(e), m), rng.integers(1, 29, len(e)))
                core_change = e[kind < 2]
                if len(core_change):
                    when = change[kind < 2]
                    close_core(core_change, when - np.timedelta64(1, "D"))
                    k0 = kind[kind < 2]
                    up = core_change[k0 == 0]
                    seats[up] += np.maximum(1, np.round(seats[up] * rng.uniform(0.1, 0.4, len(up)))).astype(int)
                    plan[core_change[k0 == 1]] += 1
                    line_start[core_change] = when
                for i, when in zip(e[kind == 2], change[kind == 2]):
                    options = np.flatnonzero(~addons[i])
                    k = rng.choice(options)
                    addons[i, k] = True
                    addon_start[i, k] = when
                # contraction: fewer seats
                d = at_risk[contracts]
                if len(d):
                    when = day(np.full(len(d), m), rng.integers(1, 29, len(d)))
                    close_core(d, when - np.timedelta64(1, "D"))
                    seats[d] = np.maximum(2, seats[d] - np.maximum(1, np.round(seats[d] * rng.uniform(0.1, 0.35, len(d))))).astype(int)
                    line_start[d] = when
                cycle_start_m[at_risk[renewal & ~churned]] = m

            # -- reactivation: a few churned accounts come back within a year ----------------------
            gone = np.flatnonzero(ever & ~active & (churn_m >= 0) & (m - churn_m <= 12) & (m > churn_m))
            back = gone[rng.random(len(gone)) < 0.01]
            if len(back):
                line_start[back] = day(np.full(len(back), m), rng.integers(1, 29, len(back)))
                signup_d[back] = pd.DatetimeIndex(line_start[back]).day.to_numpy()
                cycle_start_m[back] = m
                active[back] = True
                engagement[back] += 0.5  # they return for a reason

            # -- new accounts ----------------------------------------------------------------------
            if len(new):
                line_start[new] = day(signup_m[new], signup_d[new])
                active[new] = True
                ever[new] = True

            # -- CS activities decided on what the data showed by last month -----------------------
            acts = []
            if len(new):
                p_onb = np.array([0.3, 0.75, 0.95])[seg[new]]
                onb = new[rng.random(len(new)) < p_onb]
                acts.append(("onboarding", onb, signup_d[onb]))
            live = np.flatnonzero(active & (signup_m < m))
            if len(live) and m > 0:
                util, login_trend, users_trend, t90, csat90, _ = (a[live] for a in features_at(m - 1))
                quarterly = qbr_cadence[live] & ((m - signup_m[live]) % 3 == 0)
                qbr = live[quarterly & (rng.random(len(live)) < 0.8)]
                weak = np.nan_to_num(util, nan=0.5) < 0.45
                p_train = np.where(weak, 0.25, 0.03) * np.where(has_csm[live], 1.5, 0.6)
                train = live[rng.random(len(live)) < p_train]
                falling = np.nan_to_num(login_trend) < -0.15
                p_health = np.where(falling | (t90 >= 3), 0.3, 0.02) * has_csm[live]
                health = live[rng.random(len(live)) < p_health]
                p_esc = np.where(t90 >= 4, 0.5, np.where(t90 >= 2, 0.08, 0.0))
                esc = live[rng.random(len(live)) < p_esc]
                for name, idx in (("qbr", qbr), ("training", train), ("health_check", health),
                                  ("escalation", esc)):
                    acts.append((name, idx, rng.integers(1, 29, len(idx))))
            for name, idx, d in acts:
                if len(idx) == 0:
                    continue
                activity_rows.append(pd.DataFrame({
                    "account_id": account_ids[idx], "date": day(np.full(len(idx), m), d),
                    "activity_type": name,
                    "hours": np.round(rng.gamma(2.0, {"onboarding": 4.0, "qbr": 1.5, "training": 2.0,
                                                      "health_check": 1.0, "escalation": 3.0}[name], len(idx)), 1),
                    "csm_id": np.where(has_csm[idx], csm[idx], "")}))
                fresh = idx[first_act[name][idx] < 0]
                first_act[name][fresh] = m

            # -- engagement drifts; usage and tickets of accounts active at month end ---------------
            engagement += drift + rng.normal(0, 0.12, n)
            a = np.flatnonzero(active)
            e_a = engagement[a]
            util_true = np.clip(_sigmoid(0.6 + 1.1 * e_a) * 0.98, 0.02, 1.0)
            # active users track true utilisation closely (a seat is used or not, month after month)
            users[a, m] = np.clip(np.round(seats[a] * util_true + rng.normal(0, 0.4, len(a))), 0, seats[a])
            logins[a, m] = rng.poisson(np.maximum(users[a, m], 0.5) * 14 * np.exp(login_habit[a]))
            features[a, m] = rng.binomial(20, _sigmoid(-0.2 + 0.9 * e_a + feature_habit[a]))
            lam = 0.12 * seats[a] ** 0.35 * np.exp(-0.55 * e_a)
            k = rng.poisson(lam)
            tickets[a, m] = k
            if k.sum():
                owner = np.repeat(a, k)
                e_t = np.repeat(e_a, k)
                rated = rng.random(len(owner)) < 0.7
                score = np.clip(np.round(rng.normal(3.9 + 0.6 * e_t, 0.8)), 1, 5)
                opened = day(np.full(len(owner), m), rng.integers(1, 29, len(owner)))
                np.add.at(csat_sum, (owner[rated], np.full(rated.sum(), m)), score[rated])
                np.add.at(csat_n, (owner[rated], np.full(rated.sum(), m)), 1)
                ticket_rows.append(pd.DataFrame({
                    "account_id": account_ids[owner], "opened_at": opened,
                    "closed_at": opened + rng.integers(0, 10, len(owner)).astype("timedelta64[D]"),
                    "priority": rng.choice(["low", "normal", "high", "urgent"], len(owner), p=[0.3, 0.45, 0.2, 0.05]),
                    "csat": np.where(rated, score, np.nan)}))

            # -- outcomes: achieved with a probability that rises with engagement and CSM help -----
            open_outcome = (achieved_m < 0) & (np.arange(3) < n_outcomes[:, None]) & active[:, None] & (signup_m < m)[:, None]
            p_ach = _sigmoid(-3.3 + 0.9 * engagement + 0.5 * has_csm)[:, None]
            hit = open_outcome & (rng.random((n, 3)) < p_ach)
            achieved_m[hit] = m

    # ---- tables ------------------------------------------------------------------------------
    still = np.flatnonzero(active)
    close_lines(still, np.full(len(still), np.datetime64("NaT"), dtype="datetime64[ns]"))
    subscriptions = pd.concat(sub_rows, ignore_index=True)
    subscriptions = subscriptions[subscriptions["end_date"].isna() | (subscriptions["end_date"] >= subscriptions["start_date"])]
    subscriptions = subscriptions.sort_values(["account_id", "start_date", "product"], ignore_index=True)

    accounts = pd.DataFrame({
        "account_id": account_ids, "name": _company_names(n, rng),
        "signup_date": day(signup_m, np.minimum(signup_d, 28)), "segment": SEGMENTS[seg],
        "industry": rng.choice(INDUSTRIES, n), "region": rng.choice(REGIONS, n, p=[0.45, 0.3, 0.15, 0.1]),
        "csm_id": np.where(has_csm, csm, ""), "employees": employees,
    })
    accounts["signup_date"] = pd.to_datetime(
        subscriptions.groupby("account_id")["start_date"].min().reindex(account_ids).to_numpy())

    month_end = (month_starts[:-1] + pd.offsets.MonthEnd(0)).to_numpy()
    usage_parts = []
    for metric, values in (("active_users", users), ("logins", logins), ("features_used", features)):
        i, j = np.nonzero(~np.isnan(values))
        usage_parts.append(pd.DataFrame({"account_id": account_ids[i], "date": month_end[j],
                                         "metric": metric, "value": values[i, j]}))
    usage = pd.concat(usage_parts, ignore_index=True).sort_values(["account_id", "date", "metric"],
                                                                 ignore_index=True)
    cs_activities = pd.concat(activity_rows, ignore_index=True).sort_values(["account_id", "date"],
                                                                           ignore_index=True)
    tickets_table = pd.concat(ticket_rows, ignore_index=True).sort_values(["account_id", "opened_at"],
                                                                         ignore_index=True)
    oi, ok = np.nonzero(np.arange(3) < n_outcomes[:, None])
    committed = day(signup_m[oi], np.minimum(signup_d[oi] + 7, 28))
    outcome_names = np.array(["Reduce reporting time", "Roll out to all teams", "Replace legacy tool",
                              "Automate onboarding", "Single view of customer"])
    achieved_date = np.where(achieved_m[oi, ok] >= 0,
                             day(np.maximum(achieved_m[oi, ok], 0), rng.integers(1, 29, len(oi))),
                             np.datetime64("NaT"))
    outcomes = pd.DataFrame({
        "account_id": account_ids[oi], "outcome": outcome_names[(oi + ok) % len(outcome_names)],
        "committed_date": committed, "target_date": committed + np.timedelta64(120, "D"),
        "achieved_date": achieved_date})
    hours = cs_activities.assign(month=cs_activities["date"].dt.to_period("M").dt.to_timestamp()
                                 ).groupby("month")["hours"].sum()
    cs_costs = pd.DataFrame({"month": month_starts[:-1], "csm_headcount": n_csm})
    cs_costs["cost"] = (n_csm * 8500.0 + 30.0 * hours.reindex(month_starts[:-1]).fillna(0).to_numpy()).round(0)
    cs_costs = cs_costs[["month", "cost", "csm_headcount"]]

    truth_panel = pd.concat(truth_rows, ignore_index=True)
    truth = _truth(seed, n, T, start, truth_panel, features_at_fn=None)
    tables = {"subscriptions": subscriptions, "accounts": accounts, "usage": usage,
              "cs_activities": cs_activities, "tickets": tickets_table, "outcomes": outcomes,
              "cs_costs": cs_costs}
    truth["realised"] = {
        "accounts": int(n), "subscription_lines": int(len(subscriptions)),
        "usage_rows": int(len(usage)), "monthly_churn_probability_mean": float(truth_panel["p_churn"].mean()),
    }
    return SyntheticBook(tables, truth, truth_panel)


# Typical spread of each feature in a book like this, used to rank effects as a model would see
# them (|coefficient| x standard deviation of the feature).
_FEATURE_SD = {"seat_utilisation": 0.25, "usage_logins_trend": 0.25, "tickets_90d": 1.3,
               "csat_90d": 0.6, "tenure_months": 9.0, "usage_active_users_trend": 0.2,
               "usage_features_used": 4.5}


def _truth(seed, n, T, start, truth_panel, features_at_fn=None) -> dict:
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
                                                         np.exp(SEGMENT_BASE).round(4).tolist()))},
        },
        "programme_hr": PROGRAMME_HR,
        "programme_note": "direct effect on the churn hazard from the month after an account's "
                          "first activity of that type; programmes do not change engagement or "
                          "outcomes, so this is the whole effect",
        "outcome_achieved_hr": OUTCOME_ACHIEVED_HR,
        "expansion_drivers": expansion_order,
        "expansion_driver_effects": {k: {"coef": v, "strength": expansion_strength[k]}
                                     for k, v in EXPANSION_EFFECTS.items()},
        "annual_contracts": "annual accounts churn only at renewal, with probability "
                            "1 - exp(-12 x monthly hazard)",
    }


def write_synthetic(out_dir: str | Path, n_accounts: int = 3000, n_months: int = 36,
                    seed: int = 42) -> Path:
    """Generate a book and write it (tables, ``truth.json``, ``truth_panel.csv``) to ``out_dir``.

    Examples
    --------
    >>> write_synthetic("/tmp/book", n_accounts=300, n_months=12, seed=7)  # doctest: +SKIP
    """
    return generate(n_accounts, n_months, seed).write(out_dir)
