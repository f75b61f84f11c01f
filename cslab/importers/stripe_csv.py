"""Stripe: the dashboard's subscriptions CSV export into subscription lines.

The dashboard (Billing > Subscriptions > Export) writes one row per subscription with columns such
as ``id``, ``Customer ID``, ``Customer Name``, ``Customer Description``, ``Plan``, ``Product``,
``Quantity``, ``Currency``, ``Interval``, ``Amount``, ``Status``, ``Created (UTC)``, ``Start (UTC)``
or ``Start Date (UTC)``, ``Current Period Start (UTC)``, ``Current Period End (UTC)``,
``Trial Start (UTC)``, ``Trial End (UTC)``, ``Canceled At (UTC)``, ``Cancel At Period End``,
``Ended At (UTC)`` and ``Coupon``; older exports name the price ``Plan Amount``, ``Plan Interval``,
``Plan Interval Count`` and ``Plan Currency``. Amounts are read in major units (``49.00``) unless
``amounts="minor"``.

Examples
--------
>>> from cslab.importers import import_source
>>> import_source("stripe", "subscriptions.csv", "data/client")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cslab.importers.common import ImportOutcome, cell_moments, note_coupons, pick, read_csv_text
from cslab.importers.tabular import Columns, rows_to_lines

__all__ = ["read_dashboard_csv"]


def read_dashboard_csv(path: Path, outcome: ImportOutcome, amounts: str | None = None, currency: str | None = None):
    """Read the Stripe dashboard's subscriptions export; ``(lines, accounts)`` as :func:`read_stripe`.

    Examples
    --------
    >>> lines, accounts = read_dashboard_csv(Path("subscriptions.csv"), ImportOutcome("x"))  # doctest: +SKIP
    """
    frame = read_csv_text(path)
    cols = Columns(
        subscription_id=pick(frame, "id", "subscription_id"),
        account_id=pick(frame, "customer_id", "customer"),
        plan=pick(frame, "plan", "plan_id", "price_id", "price", "plan_nickname"),
        product=pick(frame, "product", "product_name", "product_id"),
        quantity=pick(frame, "quantity", "plan_quantity"),
        currency=pick(frame, "currency", "plan_currency", "price_currency"),
        interval=pick(frame, "interval", "plan_interval", "price_interval"),
        interval_count=pick(frame, "interval_count", "plan_interval_count", "price_interval_count"),
        unit_amount=pick(frame, "amount", "plan_amount", "unit_amount", "price_amount"),
        status=pick(frame, "status"),
        start=pick(frame, "start_date", "start", "created"),
        trial_end=pick(frame, "trial_end"),
        period_end=pick(frame, "current_period_end"),
        ended=pick(frame, "ended_at"),
        canceled_at=pick(frame, "canceled_at", "cancelled_at"),
        cancel_at_period_end=pick(frame, "cancel_at_period_end"),
    )
    lines = rows_to_lines(frame, cols, outcome, amounts=amounts or "major", currency=currency)
    if lines is None:
        return None, None
    note_coupons(frame, outcome, "coupon", "discount")
    return lines, _accounts(frame, cols.account_id, outcome)


def _accounts(frame: pd.DataFrame, account: str | None, outcome: ImportOutcome) -> pd.DataFrame | None:
    """Customers named in the export (name or description; never the e-mail) -> accounts."""
    name = pick(frame, "customer_name", "customer_description")
    if account is None or name is None:
        outcome.note("assumed", "no customer names in the export: no accounts.csv")
        return None
    created = pick(frame, "customer_created")
    table = pd.DataFrame({"account_id": frame[account].astype(str).str.strip(), "name": frame[name].astype(str)})
    if created:
        table["signup_date"] = cell_moments(frame, created, outcome).dt.strftime("%Y-%m-%d").fillna("")
    table = table[table["account_id"].ne("")].drop_duplicates("account_id")
    outcome.note("mapped", f"customers (id, {frame.attrs['raw_names'][name]}) -> accounts.csv", len(table))
    return table
