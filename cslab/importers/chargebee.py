"""Chargebee: the subscriptions export into subscription lines.

Chargebee names its columns after the API's attributes (apidocs.chargebee.com, Subscriptions),
written bare (``status``) or with their resource (``subscriptions[status]``, ``customers[id]``,
``subscription_items[item_price_id]``): ``id``, ``customer_id``, ``plan_id`` or ``item_price_id``,
``plan_quantity`` or ``quantity``, ``plan_unit_price`` / ``unit_price`` or ``plan_amount`` /
``amount``, ``billing_period`` and ``billing_period_unit`` (day, week, month, year),
``currency_code``, ``status`` (future, in_trial, active, non_renewing, paused, cancelled,
transferred), ``started_at``, ``trial_end``, ``current_term_end``, ``cancelled_at`` (the time it
was, or is set to be, cancelled) and ``mrr``. Amounts are read in major units unless
``amounts="minor"`` (the API's cents).

Examples
--------
>>> from cslab.importers import import_source
>>> import_source("chargebee", "Subscriptions.csv", "data/client")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cslab.importers.common import ImportOutcome, cell_moments, note_coupons, pick, read_csv_text
from cslab.importers.tabular import Columns, rows_to_lines

__all__ = ["read_chargebee", "chargebee_names"]

_PREFIXES = ("subscription_items_", "subscriptions_", "subscription_")


def chargebee_names(columns: list[str]) -> dict[str, str]:
    """Normalised Chargebee column names without their resource: ``subscriptions_status`` -> ``status``.

    ``customers_x`` becomes ``customer_x``. A name is kept when its short form is already taken.

    Examples
    --------
    >>> chargebee_names(["subscriptions_id", "customers_id", "subscription_items_unit_price", "status"])
    {'subscriptions_id': 'id', 'customers_id': 'customer_id', 'subscription_items_unit_price': 'unit_price'}
    """
    taken, out = set(columns), {}
    for name in columns:
        short = name
        for prefix in _PREFIXES:
            if name.startswith(prefix) and len(name) > len(prefix):
                short = name[len(prefix) :]
                break
        if name.startswith("customers_"):
            short = "customer_" + name[len("customers_") :]
        if short != name and short not in taken:
            out[name] = short
            taken.add(short)
    return out


def read_chargebee(path: Path, outcome: ImportOutcome, amounts: str | None = None, currency: str | None = None):
    """Read a Chargebee subscriptions export (CSV); ``(lines, accounts)``.

    Examples
    --------
    >>> lines, accounts = read_chargebee(Path("Subscriptions.csv"), ImportOutcome("x"))  # doctest: +SKIP
    """
    frame = read_csv_text(path)
    names = chargebee_names(list(frame.columns))
    raw = frame.attrs["raw_names"]
    frame = frame.rename(columns=names)
    frame.attrs["raw_names"] = {names.get(k, k): v for k, v in raw.items()}
    cols = Columns(
        subscription_id=pick(frame, "id", "subscription_id"),
        account_id=pick(frame, "customer_id"),
        plan=pick(frame, "plan_id", "item_price_id"),
        product=pick(frame, "item_family_id", "item_id", "product"),
        quantity=pick(frame, "plan_quantity", "quantity", "item_quantity"),
        currency=pick(frame, "currency_code", "currency"),
        interval=pick(frame, "billing_period_unit", "period_unit"),
        interval_count=pick(frame, "billing_period", "period"),
        unit_amount=pick(frame, "plan_unit_price", "unit_price", "price"),
        total_amount=pick(frame, "plan_amount", "amount"),
        mrr=pick(frame, "mrr"),
        status=pick(frame, "status"),
        start=pick(frame, "started_at", "start_date", "activated_at", "created_at"),
        trial_end=pick(frame, "trial_end"),
        period_end=pick(frame, "current_term_end"),
        ended=pick(frame, "cancelled_at", "canceled_at"),
        canceled_at=pick(frame, "cancelled_at", "canceled_at"),
    )
    if cols.interval is None and (cols.unit_amount or cols.total_amount):
        outcome.problem("no billing period unit column (billing_period_unit: day, week, month or year)")
        return None, None
    lines = rows_to_lines(frame, cols, outcome, amounts=amounts or "major", currency=currency)
    if lines is None:
        return None, None
    note_coupons(frame, outcome, "coupon", "coupon_id", "coupon_ids", "coupons")
    return lines, _accounts(frame, cols.account_id, outcome)


def _accounts(frame: pd.DataFrame, account: str | None, outcome: ImportOutcome) -> pd.DataFrame | None:
    """Customers with a company name -> accounts (a person's name or e-mail is never copied)."""
    name = pick(frame, "customer_company", "company")
    if account is None or name is None:
        outcome.note("assumed", "no customer company names in the export: no accounts.csv")
        return None
    table = pd.DataFrame({"account_id": frame[account].astype(str).str.strip(), "name": frame[name].astype(str)})
    created = pick(frame, "customer_created_at")
    if created:
        table["signup_date"] = cell_moments(frame, created, outcome).dt.strftime("%Y-%m-%d").fillna("")
    table = table[table["account_id"].ne("")].drop_duplicates("account_id")
    outcome.note("mapped", f"customers (id, {frame.attrs['raw_names'].get(name, name)}) -> accounts.csv", len(table))
    return table
