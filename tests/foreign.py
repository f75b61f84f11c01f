"""Foreign books: client exports shaped like other tools' exports, written independently of cslab's generator.

The kit's own generator (``cslab.data.synth``) and the kit are written by the same hands, so they can
share blind spots. These books come from a separate simulation, on purpose unlike it in names, shapes and
habits:

- ``subscriptions.csv`` as a billing system writes it: a new line at every price change (seat adds,
  contractions, plan moves, renewal uplifts, a list-price rise), some accounts holding two products at
  once (``Core`` and the add-on ``Analytics``), 2-4% zero-length lines (``end_date = start_date - 1``: a
  plan replaced on day one), monthly and annual contracts, CRM-style ids (``0015g00000aB3xZ``), a
  ``currency`` column (optionally a second currency for ~15% of the accounts: a book the kit must refuse).
- the data end mid-month (day ``end_day`` of the last month); churn ends lines on any day, the last
  partial month included.
- ``accounts.csv`` as a CRM exports it *after* churn: ``status``, ``churn_reason``,
  ``cancellation_date``, ``health_score``, ``last_login_date``, a CSM cleared on churn, and one leaky
  column with an innocent name (``account_tier_code``); blanks in text attributes; no ``segment``.
- ``usage.csv`` with weekly rows and foreign metric names (``WAU``, ``sessions``, ``reports_run``,
  ``api_calls``); ``tickets.csv`` with timestamps; ``cs_activities.csv`` with title-case activity types.

Churn is planted through a logistic hazard per account-month on three drivers, each computed from the
months *before* the churn month: seat utilisation (mean WAU / seats), the sessions trend (disengaging
accounts' sessions decay for months before they leave) and tickets in the last three months. Nothing
else (industry, region, employees, CS activity) enters the hazard.

numpy and the standard library only; seeded and deterministic.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

__all__ = [
    "write_foreign_book",
    "write_short_book",
    "write_recent_signups_book",
    "write_whale_book",
    "CHURN_DRIVERS",
    "LEAKY_COLUMNS",
    "METRIC_ROLES",
]

CHURN_DRIVERS = ["seat_utilisation", "usage_sessions_trend", "tickets_90d"]
LEAKY_COLUMNS = ["status", "churn_reason", "cancellation_date", "health_score", "last_login_date", "account_tier_code"]
METRIC_ROLES = {"active_users": "WAU", "logins": "sessions"}

# Hazard (logit of the monthly churn probability) on the drivers, from the months before the churn month.
HAZARD_INTERCEPT = -4.6
HAZARD_UTILISATION = -5.0  # per unit of utilisation, centred at 0.55
HAZARD_SESSIONS_TREND = -3.5  # per unit of trend (recent 3 months / 3 before - 1)
HAZARD_TICKETS = 0.35  # per ticket in the last 3 months, centred at 2

PLANS = ("Starter", "Professional", "Enterprise")
LIST_PRICE = np.array([19.0, 39.0, 69.0])  # per seat and month
ADDON = "Analytics"
INDUSTRIES = (
    "Manufacturing",
    "Retail",
    "Financial Services",
    "Healthcare",
    "Software",
    "Logistics",
    "Education",
    "Media",
    "Public Sector",
    "Professional Services",
)
REGIONS = ("DACH", "Nordics", "UK&I", "Benelux", "France", "Southern Europe", "North America", "APAC")
NAME_A = (
    "Nord",
    "Alpen",
    "Blue",
    "Silver",
    "Green",
    "Rhein",
    "Baltic",
    "Iron",
    "Atlas",
    "Nova",
    "Polar",
    "Summit",
    "Harbor",
    "Cedar",
    "Falcon",
    "Vertex",
    "Orion",
    "Delta",
    "Granite",
    "Aurora",
)
NAME_B = ("wind", "stone", "field", "bridge", "works", "line", "point", "gate", "way", "path", "light", "wave")
NAME_C = ("GmbH", "AG", "Ltd", "B.V.", "AB", "S.A.", "Inc.", "Group", "Holding", "& Co. KG", "Oy", "SE")
CHURN_REASONS = (
    "Budget cuts",
    "Switched to competitor",
    "Low adoption",
    "Company acquired",
    "Missing features",
    "Champion left",
    "Price",
)
PRIORITIES = ("Low", "Normal", "High", "Urgent")
TIER_CODES = ("A1", "A2", "A3", "B1", "B2", "B4", "C1", "C3", "D2", "E5")
BASE62 = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
NAT = np.datetime64("NaT", "D")


# ----------------------------------------------------------------------------------------------- helpers


def _ids(rng, n: int, prefix: str) -> np.ndarray:
    """Salesforce-like 15-character ids, unique even ignoring case (``0015g00000aB3xZ``)."""
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        for chars in rng.choice(BASE62, size=(n, 5)):
            key = prefix + "".join(chars)
            if key.lower() not in seen:
                seen.add(key.lower())
                out.append(key)
                if len(out) == n:
                    break
    return np.array(out)


def _iso(dates) -> np.ndarray:
    """YYYY-MM-DD text, empty for NaT."""
    text = np.datetime_as_string(np.asarray(dates, dtype="datetime64[D]"), unit="D")
    return np.where(text == "NaT", "", text)


def _write_csv(path: Path, header: list[str], columns: list) -> None:
    cols = [np.asarray(c).astype(str) for c in columns]
    body = "\n".join(",".join(row) for row in zip(*cols))
    path.write_text(",".join(header) + "\n" + body + ("\n" if body else ""), encoding="utf-8")


def _fmt_money(x) -> np.ndarray:
    return np.char.mod("%.2f", np.round(np.asarray(x, dtype=float), 2))


def _plan_of(seats: np.ndarray) -> np.ndarray:
    return np.where(seats < 10, 0, np.where(seats < 60, 1, 2))


# ------------------------------------------------------------------------------------------- simulation


def _simulate(
    folder,
    *,
    n_accounts,
    n_months,
    seed,
    currency,
    second_currency,
    end_day,
    start,
    initial_share=0.3,
    signup_months=None,
    whale=False,
    tiny=False,
    addon_rate=0.15,
    presales=False,
) -> dict:
    if not 1 <= end_day <= 28:
        raise ValueError("end_day must be 1..28 (the last month is partial)")
    if n_months < 1:
        raise ValueError("n_months must be >= 1")
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = int(n_accounts)
    T = int(n_months)

    month0 = np.datetime64(start, "M")
    mstart = (month0 + np.arange(T + 1)).astype("datetime64[D]")
    mdays = np.diff(mstart).astype(int)
    mmax = mdays.copy()
    mmax[-1] = end_day  # the last month is observed up to end_day
    last_date = mstart[T - 1] + (end_day - 1)
    snap = mstart[1:] - 1  # month-end snapshots ...
    snap[-1] = last_date  # ... and the last date in the partial month

    # --- accounts: who, when, how big -------------------------------------------------------------
    ids = _ids(rng, n, "0015g00000")
    lo, hi = signup_months if signup_months is not None else (0, T - 1)
    m0 = rng.integers(lo, hi + 1, size=n)
    if signup_months is None:
        m0[rng.random(n) < initial_share] = 0
    annual = rng.random(n) < 0.22
    day_cap = np.where(annual, np.minimum(28, mmax[m0]), mmax[m0])  # annual anniversaries on days 1-28
    sday = (rng.random(n) * day_cap).astype(int) + 1  # 1-based day of the month
    if whale:
        m0[0], sday[0] = 0, 1
    last_starters = np.flatnonzero((m0 == T - 1) & (np.arange(n) > 0))
    if last_starters.size:  # a subscription starts on the last date
        sday[last_starters[0]] = end_day
    sd = mstart[m0] + (sday - 1)

    seats = np.clip(np.round(rng.lognormal(np.log(12), 1.0, n)), 1, 2500).astype(int)
    disc = rng.choice([1.0, 1.0, 0.95, 0.9, 0.85, 0.8], size=n)
    price = LIST_PRICE[_plan_of(seats)] * disc
    if tiny:  # whale book: tiny accounts, 10-50 a month
        seats = rng.integers(1, 6, size=n)
        price = np.full(n, 10.0)
        annual[:] = False
    if whale:
        seats[0], price[0], annual[0] = 20000, 100.0, False
    util = np.clip(rng.beta(2.2, 1.8, n), 0.03, 0.98)  # seat utilisation, the first driver
    rate = rng.lognormal(np.log(5.0), 0.35, n)  # sessions per active user and week
    tick_rate = rng.gamma(1.4, 0.5, n) * (1 + np.log1p(seats) / 6)
    mult = np.ones(n)  # sessions multiplier (disengagement)
    disengaged = np.zeros(n, dtype=bool)

    UT = np.full((T, n), np.nan)  # utilisation probability per month
    SL = np.full((T, n), np.nan)  # expected weekly sessions per month
    TK = np.zeros((T, n), dtype=int)  # tickets opened per month
    SEATMIN = np.zeros((T, n), dtype=int)  # fewest seats held in the month
    MULT = np.ones((T, n))  # sessions multiplier per month

    churned = np.zeros(n, dtype=bool)
    churn_end = np.full(n, NAT)
    churn_month = np.full(n, -1)

    # lines: account, start, end, mrr, product, plan, seats
    L_acc: list[int] = []
    L_start: list = []
    L_end: list = []
    L_mrr: list[float] = []
    L_prod: list[str] = []
    L_plan: list[str] = []
    L_seats: list[int] = []
    core = np.full(n, -1)
    addon = np.full(n, -1)
    n_zero = 0

    def plan_name(i, s):
        name = "Tiny" if tiny and not (whale and i == 0) else PLANS[int(_plan_of(np.array([s]))[0])]
        return name + (" Annual" if annual[i] else "")

    def add_line(i, d, product, plan, s, mrr, allow_zero=True):
        nonlocal n_zero
        if allow_zero and rng.random() < 0.031:  # a plan written, then replaced on day one
            alt = [p for p in PLANS if not plan.startswith(p)]
            alt_plan = str(rng.choice(alt)) + (" Annual" if annual[i] else "")
            L_acc.append(i), L_start.append(d), L_end.append(d - 1)
            L_mrr.append(round(mrr * float(rng.choice([1.1, 1.25] if tiny else [0.8, 0.9, 1.1, 1.25])), 2))
            L_prod.append(product), L_plan.append(alt_plan), L_seats.append(s)
            n_zero += 1
        L_acc.append(i), L_start.append(d), L_end.append(NAT), L_mrr.append(round(mrr, 2))
        L_prod.append(product), L_plan.append(plan), L_seats.append(s)
        return len(L_acc) - 1

    def new_core(i, d, s, allow_zero=True):
        if not tiny and not (whale and i == 0):
            price[i] = LIST_PRICE[_plan_of(np.array([s]))[0]] * disc[i]
        if core[i] >= 0:
            L_end[core[i]] = d - 1
        core[i] = add_line(i, d, "Core", plan_name(i, s), int(s), float(s * price[i]), allow_zero)

    def close_all(i, d):
        for k in (core[i], addon[i]):
            if k >= 0:
                L_end[k] = d
        core[i] = addon[i] = -1

    def day_in(t, lo_day=1):
        """A random date in month t, from day lo_day, never after the last date."""
        hi_day = mmax[t]
        return mstart[t] + int(rng.integers(min(lo_day, hi_day), hi_day + 1)) - 1

    uplift_month = 12 if T > 14 else -1

    for t in range(T):
        seats_start = seats.copy()
        new = np.flatnonzero(m0 == t)
        for i in new:
            new_core(i, sd[i], seats[i])
            if not tiny and not whale and rng.random() < addon_rate:
                addon[i] = add_line(
                    i,
                    sd[i],
                    ADDON,
                    "Analytics " + str(rng.choice(["S", "M", "L"])),
                    int(seats[i]),
                    float(rng.choice([150.0, 300.0, 600.0])),
                    False,
                )

        act = np.flatnonzero((m0 < t) & ~churned)
        # --- churn hazard from the months before t -----------------------------------------------
        if act.size:
            w3 = slice(max(0, t - 3), t)
            u3 = np.nanmean(UT[w3, act], axis=0) if t > 0 else util[act]
            rec = np.nanmean(SL[w3, act], axis=0)
            trend = np.zeros(act.size)
            if t >= 4:
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    bef = np.nanmean(SL[max(0, t - 6) : t - 3, act], axis=0)
                    trend = np.where(np.isfinite(bef) & (bef > 0), rec / bef - 1, 0.0)
            trend = np.nan_to_num(trend)
            tk3 = TK[w3, act].sum(axis=0)
            z = (
                HAZARD_INTERCEPT
                + HAZARD_UTILISATION * (u3 - 0.55)
                + HAZARD_SESSIONS_TREND * trend
                + HAZARD_TICKETS * (tk3 - 2)
            )
            p = 1 / (1 + np.exp(-z))
            age = t - m0[act]
            renewal = annual[act] & (age % 12 == 0)
            # an anniversary after the last date is not decided yet
            renewal &= (t < T - 1) | (sday[act] <= end_day)
            p = np.where(annual[act], np.where(renewal, 1 - (1 - p) ** 6, 0.0), p)
            if whale:
                p[act == 0] = 0.0
            leaving = rng.random(act.size) < p
            for j in np.flatnonzero(leaving):
                i = act[j]
                if annual[i]:
                    d = mstart[t] + (sday[i] - 1) - 1  # the day before the anniversary
                else:
                    d = day_in(t)
                close_all(i, d)
                churned[i], churn_end[i], churn_month[i] = True, d, t
            stay = act[~leaving]
            stay_renewal = renewal[~leaving]
            # --- price changes of the accounts staying ------------------------------------------
            for j, i in enumerate(stay):
                if whale and i == 0:
                    continue
                u_prev = UT[t - 1, i]
                s = seats[i]
                if stay_renewal[j]:
                    d = mstart[t] + (sday[i] - 1)
                    r = rng.random()
                    if r < 0.15 + 0.2 * (u_prev > 0.8):
                        s = int(np.ceil(s * rng.uniform(1.1, 1.5)))
                    elif r > 0.85 - 0.2 * (u_prev < 0.35):
                        s = max(1, int(s * rng.uniform(0.6, 0.9)))
                    disc[i] = min(1.0, disc[i] * rng.uniform(1.03, 1.07))
                    seats[i] = s
                    new_core(i, d, s)
                    continue
                r = rng.random()
                if r < 0.025 + 0.05 * (u_prev > 0.8):
                    s = int(np.ceil(s * rng.uniform(1.1, 1.6))) + 1
                elif not annual[i] and r > 0.985 - 0.03 * (u_prev < 0.35) and s > 1:
                    s = max(1, int(s * rng.uniform(0.5, 0.9)))
                if tiny:
                    s = int(min(s, 5))
                if s != seats[i]:
                    seats[i] = s
                    new_core(i, day_in(t, 2), s)
                elif t == uplift_month and not annual[i] and rng.random() < 0.4:
                    disc[i] *= 1.05  # a list-price rise on the first of the month
                    new_core(i, mstart[t], s)
                # the add-on comes and goes
                if not tiny and not whale:
                    if addon[i] < 0 and rng.random() < 0.012:
                        addon[i] = add_line(
                            i,
                            day_in(t, 2),
                            ADDON,
                            "Analytics " + str(rng.choice(["S", "M", "L"])),
                            int(seats[i]),
                            float(rng.choice([150.0, 300.0, 600.0])),
                        )
                    elif addon[i] >= 0 and rng.random() < 0.008:
                        d = day_in(t, 2)
                        if d - 1 >= L_start[addon[i]]:
                            L_end[addon[i]] = d - 1
                            addon[i] = -1

        # --- this month's behaviour, for every account paying at some point of the month ---------
        live = np.flatnonzero((m0 <= t) & (~churned | (churn_month == t)))
        if live.size:
            util[live] = np.clip(util[live] + rng.normal(0, 0.02, live.size), 0.02, 0.98)
            old = live[m0[live] < t]
            onset = ~disengaged[old] & (rng.random(old.size) < 0.03)
            recover = disengaged[old] & (rng.random(old.size) < 0.08)
            disengaged[old[onset]] = True
            disengaged[old[recover]] = False
            dis = old[disengaged[old]]
            mult[dis] *= rng.uniform(0.68, 0.85, dis.size)
            mult[:] = np.maximum(mult, 0.05)
            back = old[~disengaged[old] & (mult[old] < 1)]
            mult[back] = np.minimum(1.0, mult[back] * 1.4)
            ut = np.clip(util[live] + rng.normal(0, 0.04, live.size), 0.01, 1.0)
            UT[t, live] = ut
            SEATMIN[t, live] = np.maximum(1, np.minimum(seats[live], seats_start[live]))
            MULT[t, live] = mult[live]
            SL[t, live] = seats[live] * ut * rate[live] * mult[live]
            burst = np.where(rng.random(live.size) < 0.08, 3.0, 1.0)
            TK[t, live] = rng.poisson(tick_rate[live] * burst)

    # ----------------------------------------------------------------------------------- subscriptions
    L_acc_a = np.array(L_acc)
    L_start_a = np.array(L_start, dtype="datetime64[D]")
    L_end_a = np.array(L_end, dtype="datetime64[D]")
    order = np.lexsort((L_start_a, L_acc_a))
    seat_txt = np.where(np.array(L_prod) == "Core", np.array(L_seats).astype(str), "")  # flat-priced add-on
    cur = np.full(n, currency, dtype=object)
    if second_currency:
        cur[rng.random(n) < 0.15] = second_currency
    _write_csv(
        folder / "subscriptions.csv",
        ["account_id", "start_date", "end_date", "mrr", "product", "plan", "seats", "currency"],
        [
            ids[L_acc_a[order]],
            _iso(L_start_a[order]),
            _iso(L_end_a[order]),
            _fmt_money(np.array(L_mrr)[order]),
            np.array(L_prod)[order],
            np.array(L_plan)[order],
            seat_txt[order],
            cur[L_acc_a[order]],
        ],
    )

    # ------------------------------------------------------------------------------------------- usage
    last_day = np.where(churned, churn_end, last_date)
    n_weeks = int((last_date - mstart[0]).astype(int) // 7) + 1
    wdates = last_date - 7 * np.arange(n_weeks)[::-1]
    wmonth = (wdates.astype("datetime64[M]") - month0).astype(int)
    mask = (wdates[:, None] >= sd[None, :]) & (wdates[:, None] <= last_day[None, :])
    w, i = np.nonzero(mask)
    m = wmonth[w]
    wau = rng.binomial(SEATMIN[m, i], np.nan_to_num(UT[m, i]))
    sess = rng.poisson(wau * rate[i] * np.exp(rng.normal(0, 0.08, i.size)) * MULT[m, i])
    reports = rng.poisson(sess * (0.08 + 0.2 * (np.arange(n) % 7 / 7))[i])
    api_user = rng.random(n) < 0.45
    api = np.where(api_user[i], np.round(rng.lognormal(np.log(300), 0.5, i.size) * seats[i] ** 0.5), 0).astype(int)
    k = np.lexsort((i, w))
    rows = i.size
    acc = np.repeat(ids[i[k]], 4)
    dt = np.repeat(_iso(wdates[w[k]]), 4)
    metric = np.tile(np.array(["WAU", "sessions", "reports_run", "api_calls"]), rows)
    value = np.stack([wau[k], sess[k], reports[k], api[k]], axis=1).ravel()
    _write_csv(folder / "usage.csv", ["account_id", "date", "metric", "value"], [acc, dt, metric, value])

    # ----------------------------------------------------------------------------------------- tickets
    tm, ti = np.nonzero(TK)
    cnt = TK[tm, ti]
    tm, ti = np.repeat(tm, cnt), np.repeat(ti, cnt)
    lo_d = np.maximum(mstart[tm], sd[ti])
    hi_d = np.minimum(np.minimum(mstart[tm] + mmax[tm] - 1, last_day[ti]), last_date)
    keep = hi_d >= lo_d
    tm, ti, lo_d, hi_d = tm[keep], ti[keep], lo_d[keep], hi_d[keep]
    span = (hi_d - lo_d).astype(int) + 1
    opened_d = lo_d + (rng.random(ti.size) * span).astype(int)
    if ti.size:  # a ticket is opened on the last date
        alive = np.flatnonzero(~churned & (sd <= last_date))
        if alive.size:
            ti = np.append(ti, alive[0])
            opened_d = np.append(opened_d, last_date)
    secs = rng.integers(7 * 3600, 19 * 3600, ti.size)
    opened = opened_d.astype("datetime64[s]") + secs
    dur = (rng.exponential(2.5, ti.size) * 86400).astype(int) + 600
    closed = opened + dur
    still_open = closed >= (last_date + 1).astype("datetime64[s]")
    closed_txt = np.where(still_open, "", np.char.replace(np.datetime_as_string(closed, unit="s"), "T", " "))
    opened_txt = np.char.replace(np.datetime_as_string(opened, unit="s"), "T", " ")
    prio = rng.choice(PRIORITIES, size=ti.size, p=[0.3, 0.45, 0.2, 0.05])
    csat = rng.choice(np.array(["1", "2", "3", "4", "5"]), size=ti.size, p=[0.06, 0.08, 0.16, 0.35, 0.35])
    csat = np.where(still_open | (rng.random(ti.size) < 0.62), "", csat)
    k = np.argsort(opened, kind="stable")
    _write_csv(
        folder / "tickets.csv",
        ["account_id", "opened_at", "closed_at", "priority", "csat"],
        [ids[ti[k]], opened_txt[k], closed_txt[k], prio[k], csat[k]],
    )

    # ---------------------------------------------------------------------------------------- accounts
    csms = _ids(rng, 9, "0055g00000")
    csm = rng.choice(csms, size=n)
    created = sd - rng.integers(5, 200, n)
    if presales:
        created = np.maximum(mstart[0], sd - rng.integers(30, 270, n))
    employees = np.round(seats * rng.uniform(2, 20, n) + rng.integers(0, 40, n)).astype(int)
    industry = rng.choice(INDUSTRIES, size=n).astype(object)
    industry[rng.random(n) < 0.10] = ""
    region = rng.choice(REGIONS, size=n).astype(object)
    region[rng.random(n) < 0.03] = ""
    names = np.array(
        [f"{a}{b} {c}" for a, b, c in zip(rng.choice(NAME_A, n), rng.choice(NAME_B, n), rng.choice(NAME_C, n))],
        dtype=object,
    )
    status = np.where(churned, "Churned", "Active")
    reason = np.where(churned, rng.choice(CHURN_REASONS, size=n), "")
    notice = np.where(annual, rng.integers(30, 90, n), rng.integers(0, 25, n))
    cancel = np.where(churned, np.maximum(churn_end - notice, sd), NAT)
    health = (
        np.where(
            churned,
            np.clip(rng.normal(22, 9, n), 1, 48),
            np.clip(62 + 35 * (util - 0.55) + rng.normal(0, 11, n), 25, 100),
        )
        .round()
        .astype(int)
    )
    last_login = np.where(
        churned, np.maximum(churn_end - rng.integers(0, 30, n), sd), np.maximum(last_date - rng.integers(0, 10, n), sd)
    )
    csm_out = np.where(churned & (rng.random(n) < 0.9), "", csm)
    tier = rng.choice(TIER_CODES, size=n).astype(object)
    tier[churned & (rng.random(n) < 0.95)] = "Z9"
    tier[~churned & (rng.random(n) < 0.01)] = "Z9"
    order = rng.permutation(n)
    _write_csv(
        folder / "accounts.csv",
        [
            "account_id",
            "name",
            "industry",
            "region",
            "employees",
            "csm_id",
            "created_date",
            "status",
            "churn_reason",
            "cancellation_date",
            "health_score",
            "last_login_date",
            "account_tier_code",
        ],
        [
            ids[order],
            [_csv_text(x) for x in names[order]],
            industry[order],
            region[order],
            employees[order],
            csm_out[order],
            _iso(created[order]),
            status[order],
            reason[order],
            _iso(cancel[order]),
            health[order],
            _iso(last_login[order]),
            tier[order],
        ],
    )

    # ----------------------------------------------------------------------------------- cs activities
    A_i: list = []
    A_d: list = []
    A_t: list = []
    A_h: list = []

    def acts(idx, dates, kind, hours, before_signup=False):
        ok = (dates <= last_day[idx]) & (dates <= last_date) & (dates >= mstart[0])
        if not before_signup:
            ok &= dates >= sd[idx]
        A_i.append(idx[ok]), A_d.append(dates[ok]), A_t.append(np.full(ok.sum(), kind, dtype=object))
        A_h.append(np.asarray(hours)[ok])

    every = np.arange(n)
    acts(every, sd + rng.integers(0, 15, n), "Kickoff Call", rng.choice([1.0, 1.5, 2.0], n))
    onb = every[rng.random(n) < 0.6]
    acts(onb, sd[onb] + rng.integers(10, 60, onb.size), "Onboarding Workshop", rng.choice([2.0, 3.0, 4.0], onb.size))
    big = every[seats * price >= np.quantile(seats * price, 0.6)]
    for q in range(1, T // 3 + 2):  # a business review every quarter for the big ones
        acts(
            big,
            sd[big] + 91 * q + rng.integers(-10, 11, big.size),
            "Business Review",
            rng.choice([1.5, 2.0, 3.0], big.size),
        )
    hm, hi_ = np.nonzero(rng.random((T, n)) < 0.12)
    acts(
        hi_,
        mstart[hm] + (rng.random(hm.size) * mdays[hm]).astype(int),
        "Health Check",
        rng.choice([0.5, 0.75, 1.0], hm.size),
    )
    em, ei = np.nonzero((TK >= 4) & (rng.random((T, n)) < 0.5))
    acts(
        ei,
        mstart[em] + (rng.random(em.size) * mdays[em]).astype(int),
        "Escalation Call",
        rng.choice([1.0, 2.0], em.size),
    )
    if presales:  # sales calls between CRM creation and signup
        acts(
            every,
            created + ((sd - created).astype(int) * rng.random(n)).astype(int),
            "Discovery Call",
            np.full(n, 1.0),
            before_signup=True,
        )
    a_i = np.concatenate(A_i)
    a_d = np.concatenate(A_d).astype("datetime64[D]")
    a_t = np.concatenate(A_t)
    a_h = np.concatenate(A_h)
    k = np.argsort(a_d, kind="stable")
    a_csm = np.where(rng.random(a_i.size) < 0.97, csm[a_i], "")
    _write_csv(
        folder / "cs_activities.csv",
        ["account_id", "date", "activity_type", "hours", "csm_id"],
        [ids[a_i[k]], _iso(a_d[k]), a_t[k], np.char.mod("%g", a_h[k]), a_csm[k]],
    )

    # ------------------------------------------------------------------------------------------- truth
    active_at = (sd[None, :] <= snap[:, None]) & (~churned[None, :] | (churn_end[None, :] >= snap[:, None]))
    was = active_at[:-1]
    lost = was & ~active_at[1:]
    realised = float(lost.sum() / max(was.sum(), 1))
    overlap = _overlap_share(L_acc_a, L_start_a, L_end_a, n)
    return {
        "churn_drivers": list(CHURN_DRIVERS),
        "leaky_columns": list(LEAKY_COLUMNS),
        "metric_roles": dict(METRIC_ROLES),
        "currency": currency,
        "second_currency": second_currency,
        "last_date": str(last_date),
        "first_month": str(mstart[0]),
        "n_months": T,
        "n_accounts": n,
        "n_lines": int(L_acc_a.size),
        "n_zero_length_lines": int(n_zero),
        "overlap_share": overlap,
        "n_churned": int(churned.sum()),
        "monthly_logo_churn": round(realised, 4),
        "hazard": {
            "intercept": HAZARD_INTERCEPT,
            "seat_utilisation": HAZARD_UTILISATION,
            "usage_sessions_trend": HAZARD_SESSIONS_TREND,
            "tickets_90d": HAZARD_TICKETS,
        },
    }


def _csv_text(value: str) -> str:
    return f'"{value}"' if ("," in value or '"' in value) else value


def _overlap_share(acc, start, end, n) -> float:
    """Share of accounts with two lines running on the same day (zero-length lines excluded)."""
    real = np.isnat(end) | (end >= start)
    acc, start, end = acc[real], start[real], np.where(np.isnat(end[real]), np.datetime64("2999-12-31"), end[real])
    order = np.lexsort((start, acc))
    acc, start, end = acc[order], start[order], end[order]
    hit = np.zeros(n, dtype=bool)
    run_end = np.datetime64("1900-01-01")
    for k in range(acc.size):
        if k and acc[k] == acc[k - 1] and start[k] <= run_end:
            hit[acc[k]] = True
        run_end = end[k] if (k == 0 or acc[k] != acc[k - 1]) else max(run_end, end[k])
    return round(float(hit[np.unique(acc)].mean()), 4) if acc.size else 0.0


# ---------------------------------------------------------------------------------------------- public


def write_foreign_book(
    folder,
    *,
    n_accounts=1500,
    n_months=30,
    seed=7,
    currency="EUR",
    second_currency=None,
    end_day=17,
    start="2023-01-01",
) -> dict:
    """Write a foreign client-export book into ``folder``; return its truth (no truth file is written)."""
    return _simulate(
        folder,
        n_accounts=n_accounts,
        n_months=n_months,
        seed=seed,
        currency=currency,
        second_currency=second_currency,
        end_day=end_day,
        start=start,
    )


def write_short_book(folder, n_months, seed=11, n_accounts=600) -> dict:
    """The same kind of book, only ``n_months`` months long (1, 3, 6, 9...)."""
    truth = _simulate(
        folder,
        n_accounts=n_accounts,
        n_months=n_months,
        seed=seed,
        currency="EUR",
        second_currency=None,
        end_day=17,
        start="2024-01-01",
        initial_share=0.4,
    )
    return {**truth, "case": f"short_{n_months}m"}


def write_recent_signups_book(folder, seed=13, n_accounts=400) -> dict:
    """A 12-month period in which every account signed up in the last quarter (all accounts are young).

    CRM records and sales calls (``Discovery Call``) span the year; subscriptions, usage and tickets only
    the last three months.
    """
    truth = _simulate(
        folder,
        n_accounts=n_accounts,
        n_months=12,
        seed=seed,
        currency="EUR",
        second_currency=None,
        end_day=17,
        start="2024-01-01",
        signup_months=(9, 11),
        presales=True,
    )
    return {**truth, "case": "recent_signups", "signup_months": [9, 11]}


def write_whale_book(folder, seed=17) -> dict:
    """One account paying 2,000,000 a month that never leaves, and 500 tiny ones (10-50) some of which churn."""
    truth = _simulate(
        folder,
        n_accounts=501,
        n_months=24,
        seed=seed,
        currency="EUR",
        second_currency=None,
        end_day=17,
        start="2023-01-01",
        initial_share=0.5,
        whale=True,
        tiny=True,
    )
    return {**truth, "case": "whale", "whale_mrr": 2_000_000.0}
