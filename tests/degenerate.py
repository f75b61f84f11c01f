"""Degenerate books for the hardening tests: each a generated book bent into an edge case.

Every builder takes the folder of a freshly written generated book and rewrites its CSV files in
place (they are test copies, never the demo data): no churn at all, no expansion, one signup cohort,
one segment, ten accounts, every account still active, one account holding all the revenue, a year
with no activity data.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cslab.data.synth import generate

TABLES = ("accounts", "subscriptions", "usage", "cs_activities", "tickets", "outcomes", "cs_costs")
DATE_COLUMNS = {"usage": "date", "cs_activities": "date", "tickets": "opened_at", "outcomes": "committed_date"}


def _read(folder: Path) -> dict[str, pd.DataFrame]:
    return {
        t: pd.read_csv(folder / f"{t}.csv", dtype=str, keep_default_na=False)
        for t in TABLES
        if (folder / f"{t}.csv").exists()
    }


def _write(folder: Path, tables: dict[str, pd.DataFrame]) -> None:
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)


def _keep_accounts(tables: dict[str, pd.DataFrame], keep) -> dict[str, pd.DataFrame]:
    keep = set(keep)
    return {
        name: frame[frame["account_id"].isin(keep)] if "account_id" in frame else frame
        for name, frame in tables.items()
    }


def no_churn(tables):
    """Only the accounts that never stopped paying: every line runs to the end of the data."""
    subs = tables["subscriptions"]
    ended = set(subs.loc[subs["end_date"].ne(""), "account_id"])
    survivors = set(subs["account_id"]) - ended
    return _keep_accounts(tables, survivors)


def no_expansion(tables):
    """Each account keeps one line at its first price: no seat adds, upgrades or add-ons."""
    subs = tables["subscriptions"].sort_values(["account_id", "start_date"])
    first = subs.groupby("account_id", as_index=False).first()
    last_end = subs.groupby("account_id")["end_date"].agg(lambda e: "" if e.eq("").any() else e.max())
    first["end_date"] = first["account_id"].map(last_end)
    return {**tables, "subscriptions": first}


def single_cohort(tables):
    """Only the accounts whose first payment fell in the first month."""
    subs = tables["subscriptions"]
    start = subs.groupby("account_id")["start_date"].min()
    month = start.str[:7]
    return _keep_accounts(tables, month.index[month.eq(month.min())])


def single_segment(tables):
    accounts = tables["accounts"].copy()
    accounts["segment"] = "SMB"
    return {**tables, "accounts": accounts}


def ten_accounts(tables):
    return _keep_accounts(tables, sorted(tables["accounts"]["account_id"])[:10])


def all_active(tables):
    subs = tables["subscriptions"].copy()
    subs["end_date"] = ""
    return {**tables, "subscriptions": subs}


def one_account_all_revenue(tables):
    subs = tables["subscriptions"].copy()
    whale = subs["account_id"].iloc[0]
    subs["mrr"] = subs["mrr"].where(subs["account_id"].eq(whale), "1")
    subs.loc[subs["account_id"].eq(whale), "mrr"] = "5000000"
    return {**tables, "subscriptions": subs}


def a_year_without_activity_data(tables):
    """No usage, tickets, CS activities or outcomes dated in the second year of the book."""
    first_year = int(tables["subscriptions"]["start_date"].min()[:4])
    out = dict(tables)
    for name, column in DATE_COLUMNS.items():
        if name in out:
            out[name] = out[name][~out[name][column].str.startswith(str(first_year + 1))]
    return out


CASES = {
    f.__name__: f
    for f in (
        no_churn,
        no_expansion,
        single_cohort,
        single_segment,
        ten_accounts,
        all_active,
        one_account_all_revenue,
        a_year_without_activity_data,
    )
}


def write_case(name: str, folder: Path, n_accounts: int = 300, n_months: int = 26, seed: int = 5) -> Path:
    """Write the degenerate book ``name`` into ``folder``."""
    generate(n_accounts=n_accounts, n_months=n_months, seed=seed).write(folder)
    _write(folder, CASES[name](_read(folder)))
    (folder / "truth.json").unlink(missing_ok=True)  # the planted truth no longer holds
    (folder / "truth_panel.csv").unlink(missing_ok=True)
    return folder
