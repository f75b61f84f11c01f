"""Importers: billing exports and event logs into a data folder of the contract.

``cslab import stripe|chargebee|events SRC --out DIR`` (:mod:`cslab.importers.command`) calls
:func:`import_source`, which reads the export, maps it to the contract's tables, and writes them
only when the folder passes :func:`cslab.data.validate`. The source is only ever read.

Examples
--------
>>> from cslab.importers import import_source
>>> outcome = import_source("stripe", "subscriptions.jsonl", "data/client")  # doctest: +SKIP
>>> print("\\n".join(outcome.lines()))  # doctest: +SKIP
mapped: 40 Stripe subscriptions -> 46 priced lines (one per item and price)
...
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cslab.importers.common import ImportOutcome, contract_lines, write_folder

__all__ = ["FORMATS", "ImportOutcome", "import_source"]

FORMATS = ("stripe", "chargebee", "events")


def import_source(
    fmt: str,
    src: str | Path,
    out: str | Path,
    *,
    force: bool = False,
    amounts: str | None = None,
    currency: str | None = None,
    rates: dict[str, float] | None = None,
    grain: str = "day",
    account_col: str | None = None,
    time_col: str | None = None,
    event_col: str | None = None,
) -> ImportOutcome:
    """Import ``src`` (a ``fmt`` export) into the data folder ``out``; the outcome says what was done.

    Parameters
    ----------
    fmt : {"stripe", "chargebee", "events"}
        The export's kind. ``stripe`` reads API objects (JSON lines) or the dashboard's CSV.
    src, out : path
        The export (never modified) and the data folder to write (created).
    force : bool
        Replace tables ``out`` already holds.
    amounts : {"major", "minor"}, optional
        Units of a CSV export's amounts (default major: ``49.00``); Stripe API objects are in minor units.
    currency : str, optional
        The currency of the written MRR (default: the most common one); also the currency of every
        row of an export without a currency column.
    rates : dict, optional
        ``{"EUR": 1.08}``: units of ``currency`` per unit of each other currency in the export.
    grain, account_col, time_col, event_col
        Event logs: ``day`` or ``week``, and the columns when not detected by name.

    Returns
    -------
    ImportOutcome
        ``ok`` when the folder was written; ``problems`` (one per line) when not, and then nothing
        was written.

    Examples
    --------
    >>> import_source("chargebee", "Subscriptions.csv", "data/client", amounts="major").ok  # doctest: +SKIP
    True
    """
    src, out = Path(src), Path(out)
    outcome = ImportOutcome(str(src))
    if fmt not in FORMATS:
        outcome.problem(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}", file=fmt)
        return outcome
    if not src.is_file():
        outcome.problem("does not exist" if not src.exists() else "is not a file", file=str(src))
        return outcome
    if amounts not in (None, "major", "minor"):
        outcome.problem(f"--amounts {amounts!r}: use major or minor", file=str(src))
        return outcome
    try:
        tables = _tables(fmt, src, outcome, amounts, currency, rates, grain, account_col, time_col, event_col)
    except (UnicodeDecodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        # ValueError covers JSON that does not parse; every cell problem is reported, not raised
        outcome.problem(f"cannot be read as a {fmt} export ({type(exc).__name__}: {str(exc)[:120]})")
        return outcome
    if tables is None or not outcome.ok:
        return outcome
    if write_folder(out, tables, outcome, force=force):
        written = ", ".join(f"{name}.csv ({len(frame):,} rows)" for name, frame in tables.items())
        outcome.note("wrote", f"{out}: {written}; valid")
    return outcome


def _tables(fmt, src, outcome, amounts, currency, rates, grain, account_col, time_col, event_col):
    if fmt == "events":
        from cslab.importers.events import read_events

        usage = read_events(src, outcome, grain, account_col, time_col, event_col)
        return None if usage is None else {"usage": usage}
    if fmt == "stripe":
        from cslab.importers.stripe import read_stripe

        lines, accounts = read_stripe(src, outcome, amounts, currency)
    else:
        from cslab.importers.chargebee import read_chargebee

        lines, accounts = read_chargebee(src, outcome, amounts, currency)
    if lines is None or not outcome.ok:
        return None
    subs = contract_lines(lines, outcome, currency=currency, rates=rates)
    if subs is None:
        return None
    if subs.empty:
        outcome.problem("no paying subscription line left to write (every line dropped; see above)")
        return None
    tables = {"subscriptions": subs}
    if accounts is not None:
        # every account with a line, and only those: the contract checks ids against accounts
        ids = pd.DataFrame({"account_id": subs["account_id"].drop_duplicates()})
        kept = ids.merge(accounts.drop_duplicates("account_id"), on="account_id", how="left").fillna("")
        outcome.note(
            "dropped",
            "customers without a paying line (not in accounts.csv)",
            int((~accounts["account_id"].isin(ids["account_id"])).sum()),
        )
        tables["accounts"] = kept
    return tables
