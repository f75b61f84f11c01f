"""Stripe: subscription objects of the API (JSON lines) into subscription lines.

The objects are those of the Stripe API reference (docs.stripe.com/api/subscriptions/object):
``items.data[]`` with ``price`` (``unit_amount`` in the currency's minor units, ``currency``,
``recurring.interval`` / ``interval_count`` / ``usage_type``, ``product``, ``nickname``) and
``quantity``; ``status``, ``created``, ``start_date``, ``current_period_start`` / ``_end`` (on the
items since API version 2025-03-31), ``canceled_at``, ``cancel_at``, ``cancel_at_period_end``,
``ended_at``, ``trial_start`` / ``trial_end``, ``discount`` / ``discounts``, ``customer``. The file
may hold one object per line (``stripe subscriptions list`` or a script), a list object, a JSON
array, or events (``customer.subscription.*``) whose ``data.object`` is a subscription.

The Stripe dashboard's CSV export is read by :mod:`cslab.importers.stripe_csv`.

Examples
--------
>>> from cslab.importers import import_source
>>> import_source("stripe", "subscriptions.jsonl", "data/client")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pandas as pd

from cslab.importers.common import (
    LINE_COLUMNS,
    ImportOutcome,
    first_day,
    last_paid_day,
    minor_divisor,
    to_moment,
)

__all__ = ["read_stripe"]

_DAY = pd.Timedelta(days=1)
_NEVER_PAID = {"incomplete", "incomplete_expired"}


def read_stripe(path: Path, outcome: ImportOutcome, amounts: str | None = None, currency: str | None = None):
    """Read a Stripe export: API objects (JSON) or the dashboard's CSV, by the file's first character.

    Returns ``(lines, accounts)``: the subscription lines (:data:`LINE_COLUMNS`) and the accounts
    table (``None`` when the source names customers by id only).

    Examples
    --------
    >>> lines, accounts = read_stripe(Path("subscriptions.jsonl"), ImportOutcome("x"))  # doctest: +SKIP
    """
    text = path.read_text(encoding="utf-8-sig")
    if text.lstrip()[:1] in ("{", "["):
        if amounts == "major":
            outcome.problem("--amounts major: the Stripe API writes amounts in minor units; leave it out")
            return None, None
        return _from_api(text, outcome)
    from cslab.importers.stripe_csv import read_dashboard_csv

    return read_dashboard_csv(path, outcome, amounts, currency)


# --------------------------------------------------------------------------------------------
# Reading the objects
# --------------------------------------------------------------------------------------------
def _records(text: str, outcome: ImportOutcome) -> list[tuple[dict, int]]:
    """Every JSON object of the file with its 1-based line number (a whole-file JSON counts as line 1)."""
    try:
        whole = json.loads(text)
        found = [(o, 1) for o in (whole if isinstance(whole, list) else [whole])]
    except json.JSONDecodeError:
        found, bad = [], []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                found.append((json.loads(line), number))
            except json.JSONDecodeError:
                bad.append(number)
        if bad:
            outcome.problem("not a JSON object (one Stripe object per line expected)", lines=bad)
    return [(o, n) for o, n in found if isinstance(o, dict)]


def _snapshots(text: str, outcome: ImportOutcome) -> list[tuple[dict, int, pd.Timestamp]]:
    """Subscription objects with their line and the moment they describe (an event's ``created``)."""
    out, others = [], Counter()
    stack = _records(text, outcome)
    while stack:
        obj, line = stack.pop(0)
        kind = obj.get("object")
        if kind == "list" and isinstance(obj.get("data"), list):
            stack[:0] = [(o, line) for o in obj["data"] if isinstance(o, dict)]
        elif kind == "event":
            inner = (obj.get("data") or {}).get("object") or {}
            if str(obj.get("type", "")).startswith("customer.subscription.") and isinstance(inner, dict):
                out.append((inner, line, to_moment(obj.get("created"))))
            else:
                others[f"{obj.get('type', 'unknown')} events"] += 1
        elif kind == "subscription" or (kind is None and "items" in obj):
            out.append((obj, line, pd.NaT))
        else:
            others[f"{kind or 'unknown'} objects"] += 1
    for what, n in others.items():
        outcome.note("dropped", f"{what} (not subscriptions)", n)
    return out


def _items(sub: dict) -> list[dict]:
    items = (sub.get("items") or {}).get("data")
    if isinstance(items, list):
        return [i for i in items if isinstance(i, dict)]
    if isinstance(sub.get("plan"), dict):  # a legacy single-plan subscription: no items
        return [{"plan": sub["plan"], "quantity": sub.get("quantity", 1), "id": sub.get("id")}]
    return []


def _period(sub: dict, key: str) -> object:
    """``current_period_start`` / ``_end``: on the subscription, or on its items (API 2025-03-31 on)."""
    if sub.get(key) is not None:
        return sub[key]
    values = [i.get(key) for i in _items(sub) if i.get(key) is not None]
    return (min if key.endswith("start") else max)(values) if values else None


def _customer(sub: dict) -> tuple[str | None, dict | None]:
    customer = sub.get("customer")
    if isinstance(customer, dict):
        return customer.get("id"), (None if customer.get("deleted") else customer)
    return (str(customer) if customer else None), None


def _price(item: dict, sub: dict, skipped: Counter) -> dict | None:
    """An item's price per unit and interval, or ``None`` (counted in ``skipped``) when it has none."""
    price = item.get("price") if isinstance(item.get("price"), dict) else item.get("plan")
    if not isinstance(price, dict):
        skipped["items without a price object"] += 1
        return None
    recurring = price.get("recurring")
    if recurring is None and price.get("interval"):  # a legacy plan object carries its interval itself
        recurring = {k: price.get(k) for k in ("interval", "interval_count", "usage_type")}
    if not isinstance(recurring, dict):
        skipped["one-off prices (not recurring: not MRR)"] += 1
        return None
    if recurring.get("usage_type") == "metered":
        skipped["metered prices (billed on usage: no amount in the subscription)"] += 1
        return None
    amount = price.get("unit_amount", price.get("amount"))
    if amount is None and price.get("unit_amount_decimal") is not None:
        amount = float(price["unit_amount_decimal"])
    if amount is None:
        skipped["tiered prices (no unit amount in the subscription)"] += 1
        return None
    currency = str(price.get("currency") or sub.get("currency") or "").upper()
    product = price.get("product")
    if isinstance(product, dict):
        product = product.get("name") or product.get("id")
    return {
        "item": str(price.get("id") or item.get("id") or ""),
        "amount": float(amount) / minor_divisor(currency),
        "currency": currency,
        "interval": recurring.get("interval"),
        "interval_count": int(recurring.get("interval_count") or 1),
        "quantity": float(item["quantity"]) if item.get("quantity") is not None else 1.0,
        "product": product or "",
        "plan": price.get("nickname") or price.get("lookup_key") or price.get("id") or "",
        "created": first_day(item.get("created")),
    }


# --------------------------------------------------------------------------------------------
# Discounts: percent_off and amount_off, for the time they run
# --------------------------------------------------------------------------------------------
def _discounts(sub: dict, item: dict | None, notes: Counter) -> list[dict]:
    """The discounts of a subscription (``item`` None) or of one item that recur (not ``once``)."""
    raw = []
    holder = item if item is not None else sub
    if isinstance(holder.get("discount"), dict):
        raw.append(holder["discount"])
    for d in holder.get("discounts") or []:
        if isinstance(d, dict):
            raw.append(d)
        else:
            notes["discounts given as ids only (not expanded): not applied"] += 1
    seen, out = set(), []
    for d in raw:
        coupon = d.get("coupon") or (d.get("source") or {}).get("coupon") or {}
        if not isinstance(coupon, dict) or d.get("id", id(d)) in seen:
            continue
        seen.add(d.get("id", id(d)))
        if coupon.get("duration") == "once":
            notes["once-only discounts (first invoice only: not MRR)"] += 1
            continue
        if coupon.get("percent_off") is None and coupon.get("amount_off") is None:
            continue
        notes["discounts applied (percent_off or amount_off)"] += 1
        out.append(
            {
                "start": first_day(d.get("start")),
                "end": first_day(d.get("end")),
                "percent_off": coupon.get("percent_off"),
                "amount_off": (coupon["amount_off"] / minor_divisor(coupon.get("currency") or "usd"))
                if coupon.get("amount_off") is not None
                else None,
            }
        )
    return out


def _apply_discounts(lines: list[dict], shared: list[dict]) -> list[dict]:
    """Split lines where a discount starts or ends and lower each piece's amount while one runs.

    ``shared`` discounts apply to every line (an ``amount_off`` spread over the lines by their
    value); a line's own discounts are in ``line["discounts"]``.
    """
    total = sum(li["amount"] * li["quantity"] for li in lines) or 1.0
    out = []
    for li in lines:
        mine = [(d, li["amount"] * li["quantity"] / total) for d in shared] + [(d, 1.0) for d in li.pop("discounts")]
        cuts = sorted({c for d, _ in mine for c in (d["start"], d["end"]) if pd.notna(c) and c > li["start"]})
        cuts = [c for c in cuts if pd.isna(li["end"]) or c <= li["end"]]
        bounds = [li["start"], *cuts]
        for k, begin in enumerate(bounds):
            piece = dict(li, start=begin, end=(bounds[k + 1] - _DAY) if k + 1 < len(bounds) else li["end"])
            for d, share in mine:
                running = (pd.isna(d["start"]) or d["start"] <= begin) and (pd.isna(d["end"]) or d["end"] > begin)
                if not running:
                    continue
                if d["percent_off"] is not None:
                    piece["amount"] *= 1 - float(d["percent_off"]) / 100
                if d["amount_off"] is not None:
                    piece["amount"] -= d["amount_off"] * share / max(piece["quantity"], 1e-12)
            piece["amount"] = max(piece["amount"], 0.0)
            out.append(piece)
    return out


# --------------------------------------------------------------------------------------------
# Subscriptions -> lines
# --------------------------------------------------------------------------------------------
def _end_of(final: dict, counts: Counter) -> pd.Timestamp:
    """The last paid day of a subscription from its latest copy (``NaT`` while it runs)."""
    period_end = to_moment(_period(final, "current_period_end"))
    ended = to_moment(final.get("ended_at"))
    status = final.get("status")
    if pd.notna(ended):
        if pd.notna(period_end) and ended < period_end - _DAY:
            counts["immediate"] += 1
        return last_paid_day(ended)
    if final.get("cancel_at_period_end") and pd.notna(period_end):
        counts["at_period_end"] += 1
        return last_paid_day(period_end)
    if final.get("cancel_at") is not None:
        counts["at_period_end"] += 1
        return last_paid_day(final["cancel_at"])
    if status == "canceled":
        return last_paid_day(final.get("canceled_at") or _period(final, "current_period_end"))
    if status == "paused":  # a trial that ended without a payment method: unpaid from this period on
        counts["paused"] += 1
        return last_paid_day(_period(final, "current_period_start"))
    if status in ("past_due", "unpaid"):
        counts["past_due"] += 1
    return pd.NaT


def _from_api(text: str, outcome: ImportOutcome):
    snapshots = _snapshots(text, outcome)
    if not snapshots and outcome.ok:
        outcome.problem("holds no Stripe subscription objects")
    by_id: dict[str, list] = defaultdict(list)
    no_customer, no_start = [], []
    for sub, line, moment in snapshots:
        if _customer(sub)[0] is None:
            no_customer.append(line)
            continue
        if sub.get("start_date") is None and sub.get("created") is None:
            no_start.append(line)
            continue
        by_id[str(sub.get("id") or f"line {line}")].append((sub, line, moment))
    if no_customer:
        outcome.problem("subscription without a customer", column="customer", lines=no_customer)
    if no_start:
        outcome.problem("subscription without start_date or created", column="start_date", lines=no_start)

    counts, skipped, discount_notes = Counter(), Counter(), Counter()
    rows, customers = [], {}
    for sub_id, copies in by_id.items():
        # copies in time order: an event's moment, else the billing period the copy shows
        copies.sort(key=lambda c: c[2] if pd.notna(c[2]) else to_moment(_period(c[0], "current_period_start")))
        final = copies[-1][0]
        account, customer = _customer(final)
        if customer is not None:
            customers[account] = customer
        status = final.get("status")
        if status in _NEVER_PAID:
            counts["never_paid"] += 1
            continue
        if status == "trialing":
            counts["trialing"] += 1
            continue
        start = first_day(copies[0][0].get("start_date") or copies[0][0].get("created"))
        trial_end = first_day(final.get("trial_end"))
        if pd.notna(trial_end) and trial_end > start:
            counts["trial"] += 1
            start = trial_end  # a trial's days are not paying days
        end = _end_of(final, counts)
        counts["plan_changes"] += len(copies) - 1
        moments = [start] + [
            first_day(m if pd.notna(m) else _period(s, "current_period_start")) for s, _, m in copies[1:]
        ]
        for k, (copy, line, _) in enumerate(copies):
            # each copy holds from its moment to the day before the next copy's
            seg_start = max(start, moments[k]) if pd.notna(moments[k]) else start
            following = moments[k + 1] - _DAY if k + 1 < len(copies) else pd.NaT
            seg_end = end if pd.isna(following) else following if pd.isna(end) else min(end, following)
            if k + 1 < len(copies) and pd.notna(seg_end) and seg_end < seg_start:
                continue  # a copy replaced on its own day
            lines = []
            for item in _items(copy):
                price = _price(item, copy, skipped)
                if price is None:
                    continue
                created = price.pop("created")
                begin = max(seg_start, created) if pd.notna(created) else seg_start
                lines.append(
                    dict(
                        price,
                        account_id=account,
                        subscription_id=sub_id,
                        start=begin,
                        end=seg_end,
                        src_line=line,
                        discounts=_discounts(copy, item, discount_notes),
                    )
                )
            rows.extend(_apply_discounts(lines, _discounts(copy, None, discount_notes)))
    if not outcome.ok:
        return None, None
    _say(outcome, len(by_id), rows, counts, skipped, discount_notes)
    lines = pd.DataFrame(rows, columns=LINE_COLUMNS)
    accounts = None
    if customers:
        accounts = pd.DataFrame(
            {
                "account_id": list(customers),
                "name": [c.get("name") or c.get("description") or "" for c in customers.values()],
                "signup_date": [first_day(c.get("created")) for c in customers.values()],
            }
        )
        accounts["signup_date"] = accounts["signup_date"].dt.strftime("%Y-%m-%d").fillna("")
        outcome.note("mapped", "customers (id, name, created as signup_date) -> accounts.csv", len(accounts))
    else:
        outcome.note("assumed", "customers given as ids only: no accounts.csv (expand customer for names)")
    return lines, accounts


def _say(outcome, n_subs, rows, counts, skipped, discount_notes) -> None:
    outcome.note("mapped", f"Stripe subscriptions -> {len(rows):,} priced lines (one per item and price)", n_subs)
    outcome.note(
        "mapped", "later copies of a subscription (plan or quantity changes start new lines)", counts["plan_changes"]
    )
    outcome.note("dropped", "subscriptions never paid (status incomplete or incomplete_expired)", counts["never_paid"])
    outcome.note("dropped", "subscriptions still in trial (not paying yet)", counts["trialing"])
    outcome.note("mapped", "trials: the line starts at trial_end (trial days are not paying)", counts["trial"])
    outcome.note(
        "mapped",
        "cancellations at period end: the line ends the day before current_period_end",
        counts["at_period_end"],
    )
    outcome.note(
        "assumed",
        "subscriptions ended before their paid period's end (canceled at once; the unused part taken as "
        "refunded or credited): the line ends the day before ended_at",
        counts["immediate"],
    )
    outcome.note("assumed", "paused subscriptions: unpaid from their current period's start", counts["paused"])
    outcome.note(
        "assumed", "past_due or unpaid subscriptions kept as running (Stripe has not canceled them)", counts["past_due"]
    )
    for what, n in list(skipped.items()) + list(discount_notes.items()):
        outcome.note("mapped" if what.startswith("discounts applied") else "dropped", what, n)
    outcome.note(
        "assumed",
        "amounts in the currency's minor units (cents) divided by 100; zero-decimal currencies (JPY, KRW, ...) "
        "not divided; dates in UTC; end_date = the last paid day",
    )
