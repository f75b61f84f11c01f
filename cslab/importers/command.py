"""The ``cslab import`` command: an export in, a data folder of the contract out.

Examples
--------
$ cslab import stripe subscriptions.jsonl --out data/client
$ cslab import chargebee Subscriptions.csv --out data/client --rate EUR=1.08
$ cslab import events events.csv --out data/client --grain week
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["import_command"]

EXIT_INVALID = 2


def _rates(values: list[str]) -> dict[str, float] | None:
    rates = {}
    for value in values:
        code, _, rate = value.partition("=")
        try:
            rates[code.strip().upper()] = float(rate)
        except ValueError:
            return None
        if not code.strip() or rates[code.strip().upper()] <= 0:
            return None
    return rates


def import_command(
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help="stripe, chargebee or events.")],
    src: Annotated[Path, typer.Argument(help="The export: Stripe JSON lines or CSV, Chargebee CSV, an event log.")],
    out: Annotated[Path, typer.Option("--out", help="Data folder to write (created).")],
    force: Annotated[bool, typer.Option("--force", help="Replace tables the folder already holds.")] = False,
    amounts: Annotated[
        str | None,
        typer.Option(help="Units of a CSV export's amounts: major (49.00, the default) or minor (4900 cents)."),
    ] = None,
    currency: Annotated[
        str | None,
        typer.Option(help="Currency of the written MRR (default: the most common); of every row if none is given."),
    ] = None,
    rate: Annotated[
        list[str],
        typer.Option(
            help="CODE=RATE: units of --currency per unit of CODE (repeatable), to add MRR in several currencies."
        ),
    ] = [],  # noqa: B006 (typer reads the default)
    grain: Annotated[str, typer.Option(help="Events: count per day or week.")] = "day",
    account_col: Annotated[str | None, typer.Option(help="Events: the account id column.")] = None,
    time_col: Annotated[str | None, typer.Option(help="Events: the timestamp column.")] = None,
    event_col: Annotated[str | None, typer.Option(help="Events: the event type column.")] = None,
) -> None:
    """Import a Stripe or Chargebee export, or an event log, into a data folder of the contract.

    Prints what was mapped, dropped and assumed, one line each. Exit code 0 when the folder was
    written (it passes `cslab validate`), 2 with one line per problem when the export cannot be
    mapped: then nothing is written. The export itself is never modified.
    """
    from cslab.importers import import_source

    rates = _rates(rate)
    if rates is None:
        typer.echo(f"error: --rate {' '.join(rate)}: write CODE=RATE with a positive rate, e.g. EUR=1.08", err=True)
        raise typer.Exit(EXIT_INVALID)
    outcome = import_source(
        fmt.lower(),
        src,
        out,
        force=force,
        amounts=amounts,
        currency=currency,
        rates=rates,
        grain=grain,
        account_col=account_col,
        time_col=time_col,
        event_col=event_col,
    )
    for line in outcome.lines():
        typer.echo(line)
    if not outcome.ok:
        for problem in outcome.problems:
            typer.echo(problem.format(), err=True)
        n = len(outcome.problems)
        typer.echo(f"{src}: {n} problem{'s' * (n != 1)}; nothing was written", err=True)
        raise typer.Exit(EXIT_INVALID)
