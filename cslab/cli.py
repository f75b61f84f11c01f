"""The ``cslab`` command.

Examples
--------
$ cslab validate data/demo
$ cslab summary data/demo
$ cslab synth --accounts 3000 --months 36 --seed 42 --out data/demo
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = ["app", "main"]

app = typer.Typer(
    name="cslab",
    help="Customer-success analytics: validate a data folder, summarise it, generate demo data.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

EXIT_INVALID = 2


def _echo_report(report, *, quiet_ok: bool = False) -> None:
    for problem in report.errors + report.warnings:
        typer.echo(problem.format(), err=problem.severity == "error")
    if report.ok and not quiet_ok:
        n_warn = len(report.warnings)
        typer.echo(f"{report.source}: valid" + (f" ({n_warn} note{'s' * (n_warn != 1)} above)" if n_warn else ""))
    elif not report.ok:
        n = len(report.errors)
        typer.echo(f"{report.source}: {n} problem{'s' * (n != 1)}; no file was changed or written",
                   err=True)


@app.command()
def validate(
    data: Annotated[Path, typer.Argument(help="Data folder: one CSV/Parquet file per table.")],
) -> None:
    """Check a data folder against the data contract; list every problem, one line each.

    Exit code 0 when valid, 2 when not. Nothing is written and no input file is changed.
    """
    from cslab.data import validate as run_validation

    report = run_validation(data)
    _echo_report(report)
    raise typer.Exit(0 if report.ok else EXIT_INVALID)


@app.command()
def summary(
    data: Annotated[Path, typer.Argument(help="Data folder: one CSV/Parquet file per table.")],
    as_of: Annotated[Optional[str], typer.Option(help="Analysis date (YYYY-MM-DD); default: latest date in the data.")] = None,
) -> None:
    """Validate a data folder, then print a short summary of the book (accounts, MRR, churn by year)."""
    from cslab.data import load, panel, validate as run_validation
    from cslab.metrics import book_summary, format_book_summary

    report = run_validation(data)
    _echo_report(report, quiet_ok=True)
    if not report.ok:
        raise typer.Exit(EXIT_INVALID)
    loaded = load(data)
    typer.echo(format_book_summary(book_summary(panel(loaded, as_of=as_of)), source=str(data)))


@app.command()
def synth(
    out: Annotated[Path, typer.Option(help="Folder to write the tables into (created).")],
    accounts: Annotated[int, typer.Option(min=10, help="Number of accounts.")] = 3000,
    months: Annotated[int, typer.Option(min=6, help="Months simulated.")] = 36,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same book.")] = 42,
) -> None:
    """Generate a synthetic B2B SaaS book with planted truth (truth.json, truth_panel.csv)."""
    from cslab.data.synth import write_synthetic

    path = write_synthetic(out, n_accounts=accounts, n_months=months, seed=seed)
    typer.echo(f"wrote a synthetic book of {accounts:,} accounts over {months} months to {path}")


def main() -> None:
    """Entry point that turns any unexpected error into one line and exit code 1, never a traceback."""
    try:
        app()
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - the command line shows one line, not a traceback
        typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
