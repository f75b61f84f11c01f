"""The book's tables: rows recorded while the book's own run goes, assembled into the tables the
kit reads (:class:`SyntheticBook`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cslab.data.synth.params import (
    ADDON_PRICE,
    ADDONS,
    CSM_MONTHLY_COST,
    HOURLY_COST,
    INDUSTRIES,
    PLANS,
    REGIONS,
    SEAT_PRICE,
    SEGMENTS,
)
from cslab.data.synth.state import SimState


@dataclass
class SyntheticBook:
    """The generated tables, the planted truth and the true monthly probabilities."""

    tables: dict[str, pd.DataFrame]
    truth: dict
    truth_panel: pd.DataFrame = field(repr=False)

    def write(self, out_dir: str | Path, file_format: str = "csv") -> Path:
        """Write every table as CSV (or Parquet), plus ``truth.json`` and ``truth_panel.csv``.

        Parquet keeps the types (dates as dates, numbers as doubles, at full precision where the CSV
        rounds to six significant digits) and reads many times faster than CSV at a benchmark's size.

        Examples
        --------
        >>> generate(300, 12, seed=7).write("/tmp/book", file_format="parquet")  # doctest: +SKIP
        """
        if file_format not in {"csv", "parquet"}:
            raise ValueError(f"file_format must be 'csv' or 'parquet', not {file_format!r}")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, frame in self.tables.items():
            if file_format == "csv":
                frame.to_csv(out / f"{name}.csv", index=False, date_format="%Y-%m-%d", float_format="%.6g")
            else:
                frame = frame.copy()
                for column in frame.select_dtypes("datetime").columns:
                    frame[column] = frame[column].dt.date
                frame.to_parquet(out / f"{name}.parquet", index=False)
        self.truth_panel.to_csv(out / "truth_panel.csv", index=False, date_format="%Y-%m-%d", float_format="%.6g")
        (out / "truth.json").write_text(json.dumps(self.truth, indent=2))
        return out


def _company_names(n: int, rng: np.random.Generator) -> np.ndarray:
    first = np.array(
        [
            "Acme",
            "Blue",
            "Cedar",
            "Delta",
            "Ember",
            "Fjord",
            "Granite",
            "Harbor",
            "Iris",
            "Juniper",
            "Kestrel",
            "Lumen",
            "Maple",
            "Nimbus",
            "Orchid",
            "Pioneer",
            "Quartz",
            "Riverside",
            "Summit",
            "Tidal",
            "Umber",
            "Vertex",
            "Willow",
            "Yonder",
            "Zenith",
        ]
    )
    second = np.array(
        [
            "Analytics",
            "Logistics",
            "Health",
            "Labs",
            "Foods",
            "Capital",
            "Systems",
            "Retail",
            "Energy",
            "Media",
            "Robotics",
            "Learning",
            "Partners",
            "Works",
        ]
    )
    suffix = np.array(["Inc", "LLC", "Ltd", "GmbH", "SA", "Co"])
    a, b, c = rng.integers(0, len(first), n), rng.integers(0, len(second), n), rng.integers(0, len(suffix), n)
    return np.char.add(np.char.add(np.char.add(first[a], " "), np.char.add(second[b], " ")), suffix[c])


# ---- the book's tables (only in the run that writes the book) -----------------------------------


class _Recorder:
    """Collects the rows of the tables while the book's own run goes; counterfactual runs have none."""

    def __init__(self, s: SimState, rng: np.random.Generator, month_starts: np.ndarray):
        n = s.n
        self.rng = rng
        self.ms = month_starts
        self.signup_d = rng.integers(1, 29, n)
        self.account_ids = np.char.add("A", np.char.zfill((np.arange(n) + 1).astype(str), 5))
        self.csm = np.where(
            s.has_csm, np.char.add("CSM", np.char.zfill(rng.integers(1, s.n_csm + 1, n).astype(str), 2)), ""
        )
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
        self.subs.append(
            pd.DataFrame(
                {
                    "account_id": self.account_ids[idx],
                    "start_date": self.line_start[idx],
                    "end_date": end,
                    "mrr": s.seats[idx] * SEAT_PRICE[s.plan[idx]],
                    "product": "Core",
                    "plan": PLANS[s.plan[idx]],
                    "seats": s.seats[idx],
                    "billing_period_months": np.where(s.annual[idx], 12, 1),
                }
            )
        )

    def close_lines(self, s: SimState, idx: np.ndarray, end) -> None:
        """End every open line (Core and add-ons) of accounts ``idx`` on dates ``end``."""
        if len(idx) == 0:
            return
        self.close_core(s, idx, end)
        for k in range(len(ADDONS)):
            has = s.addons[k, idx]
            if has.any():
                j = idx[has]
                self.subs.append(
                    pd.DataFrame(
                        {
                            "account_id": self.account_ids[j],
                            "start_date": self.addon_start[j, k],
                            "end_date": end[has],
                            "mrr": ADDON_PRICE[k, s.seg[j]],
                            "product": ADDONS[k],
                            "plan": PLANS[s.plan[j]],
                            "seats": np.nan,
                            "billing_period_months": np.where(s.annual[j], 12, 1),
                        }
                    )
                )


def _tables(s: SimState, rec: _Recorder, T: int, month_starts: pd.DatetimeIndex) -> dict[str, pd.DataFrame]:
    rng, n = rec.rng, s.n
    still = np.flatnonzero(s.active)
    rec.close_lines(s, still, np.full(len(still), np.datetime64("NaT"), dtype="datetime64[ns]"))
    subscriptions = pd.concat(rec.subs, ignore_index=True)
    subscriptions = subscriptions[
        subscriptions["end_date"].isna() | (subscriptions["end_date"] >= subscriptions["start_date"])
    ]
    subscriptions = subscriptions.sort_values(["account_id", "start_date", "product"], ignore_index=True)

    account_ids = rec.account_ids
    accounts = pd.DataFrame(
        {
            "account_id": account_ids,
            "name": _company_names(n, rng),
            "signup_date": rec.day(s.signup_m, np.minimum(rec.signup_d, 28)),
            "segment": SEGMENTS[s.seg],
            "industry": rng.choice(INDUSTRIES, n),
            "region": rng.choice(REGIONS, n, p=[0.45, 0.3, 0.15, 0.1]),
            "csm_id": rec.csm,
            "employees": s.employees,
        }
    )
    accounts["signup_date"] = pd.to_datetime(
        subscriptions.groupby("account_id")["start_date"].min().reindex(account_ids).to_numpy()
    )

    month_end = (month_starts[:-1] + pd.offsets.MonthEnd(0)).to_numpy()
    j, i = np.nonzero(s.observed[:T])
    usage = pd.concat(
        [
            pd.DataFrame({"account_id": account_ids[i], "date": month_end[j], "metric": metric, "value": values[j, i]})
            for metric, values in (("active_users", s.users), ("logins", s.logins), ("features_used", s.features))
        ],
        ignore_index=True,
    ).sort_values(["account_id", "date", "metric"], ignore_index=True)
    cs_activities = pd.concat(rec.acts, ignore_index=True).sort_values(["account_id", "date"], ignore_index=True)
    tickets = pd.concat(rec.tickets, ignore_index=True).sort_values(["account_id", "opened_at"], ignore_index=True)
    oi, ok = np.nonzero(np.arange(3) < s.n_outcomes[:, None])
    committed = rec.day(s.signup_m[oi], np.minimum(rec.signup_d[oi] + 7, 28))
    outcome_names = np.array(
        [
            "Reduce reporting time",
            "Roll out to all teams",
            "Replace legacy tool",
            "Automate onboarding",
            "Single view of customer",
        ]
    )
    achieved = s.achieved_m[ok, oi]
    achieved_date = np.where(
        achieved >= 0, rec.day(np.maximum(achieved, 0), rng.integers(1, 29, len(oi))), np.datetime64("NaT")
    )
    outcomes = pd.DataFrame(
        {
            "account_id": account_ids[oi],
            "outcome": outcome_names[(oi + ok) % len(outcome_names)],
            "committed_date": committed,
            "target_date": committed + np.timedelta64(120, "D"),
            "achieved_date": achieved_date,
        }
    )
    cs_costs = pd.DataFrame({"month": month_starts[:-1], "cost": _monthly_cost(s, 0, T), "csm_headcount": s.n_csm})
    return {
        "subscriptions": subscriptions,
        "accounts": accounts,
        "usage": usage,
        "cs_activities": cs_activities,
        "tickets": tickets,
        "outcomes": outcomes,
        "cs_costs": cs_costs,
    }


def _monthly_cost(s: SimState, lo: int, hi: int) -> np.ndarray:
    """``cs_costs.cost`` of months ``lo .. hi - 1``: CSM salaries plus hours of activities."""
    return (s.n_csm * CSM_MONTHLY_COST + HOURLY_COST * s.hours[lo:hi].sum(axis=1)).round(0)
