"""The ``cslab`` command.

Examples
--------
$ cslab validate data/demo
$ cslab summary data/demo
$ cslab synth --accounts 3000 --months 36 --seed 42 --out data/demo
$ cslab synth --scenario hidden-risk --out data/hidden-risk
$ cslab workshop --out workshop
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from cslab.config import DEMO_ACCOUNTS, DEMO_MONTHS, DEMO_SEED
from cslab.importers.command import import_command

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
        typer.echo(f"{report.source}: {n} problem{'s' * (n != 1)}; no file was changed or written", err=True)


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
    as_of: Annotated[
        str | None,
        typer.Option(help="Analysis date (YYYY-MM-DD); default: the end of the last complete month of the data."),
    ] = None,
) -> None:
    """Validate a data folder, then print a short summary of the book (accounts, MRR, churn by year),
    the metric roles and the data warnings."""
    from cslab.data import load, panel
    from cslab.data import validate as run_validation
    from cslab.metrics import book_summary, format_book_summary

    report = run_validation(data)
    _echo_report(report, quiet_ok=True)
    if not report.ok:
        raise typer.Exit(EXIT_INVALID)
    import warnings

    from cslab import leakage, quality

    loaded = load(data)
    monthly = panel(loaded, as_of=as_of)
    typer.echo(format_book_summary(book_summary(monthly), source=str(data)))
    if loaded.usage is not None:
        typer.echo(loaded.metric_roles.sentence())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        left_out = leakage.screen_attributes(monthly).records()
        for warning in quality.data_warnings(loaded, monthly, as_of_given=bool(as_of), left_out=left_out):
            typer.echo(f"data warning: {warning['code']}: {warning['message']}")


@app.command()
def synth(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Folder to write the tables into (created).")],
    accounts: Annotated[int, typer.Option(min=10, help="Number of accounts.")] = DEMO_ACCOUNTS,
    months: Annotated[int, typer.Option(min=6, help="Months simulated.")] = DEMO_MONTHS,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same book.")] = DEMO_SEED,
    scenario: Annotated[
        str | None,
        typer.Option(
            help="Workshop scenario: leaky-smb, expansion-led, "
            "under-invested-cs or hidden-risk (default size "
            "800 accounts, expansion-led 1,600, x 36 months)."
        ),
    ] = None,
    file_format: Annotated[
        str, typer.Option("--format", help="csv or parquet (types kept, faster to read at scale).")
    ] = "csv",
) -> None:
    """Generate a synthetic B2B SaaS book with planted truth (truth.json, truth_panel.csv).

    With --scenario, a workshop scenario: truth.json also tells its story and its realised metrics.
    """
    if scenario is None:
        from cslab.data.synth import write_synthetic

        if file_format not in {"csv", "parquet"}:
            typer.echo(f"error: --format must be csv or parquet, not {file_format!r}", err=True)
            raise typer.Exit(EXIT_INVALID)
        path = write_synthetic(out, n_accounts=accounts, n_months=months, seed=seed, file_format=file_format)
        typer.echo(f"wrote a synthetic book of {accounts:,} accounts over {months} months to {path}")
        return
    import click

    from cslab.data import scenarios

    if scenario not in scenarios.SCENARIOS:
        typer.echo(f"error: unknown scenario {scenario!r}; known: {', '.join(scenarios.SCENARIOS)}", err=True)
        raise typer.Exit(EXIT_INVALID)
    given = {
        name for name in ("accounts", "months") if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT
    }
    accounts = accounts if "accounts" in given else scenarios.SCENARIOS[scenario].accounts
    months = months if "months" in given else scenarios.SCENARIO_MONTHS
    book = scenarios.write_scenario(scenario, out, n_accounts=accounts, n_months=months, seed=seed)
    story = book.truth["scenario"]
    typer.echo(f"wrote scenario {scenario} ({story['title']}): {accounts:,} accounts over {months} months to {out}")
    for key, ok in story["in_band"].items():
        typer.echo(
            f"  {key} = {story['realised'][key]:.4f} ({'in' if ok else 'OUTSIDE'} its band {story['bands'][key]})"
        )


@app.command()
def workshop(
    out: Annotated[Path, typer.Option(help="Bundle folder to create.")],
    scenario: Annotated[list[str], typer.Option(help="Scenario to include (repeatable; default: all four).")] = [],  # noqa: B006
    accounts: Annotated[
        int | None, typer.Option(min=50, help="Accounts of each scenario book (default 800; expansion-led 1,600).")
    ] = None,
    months: Annotated[
        int | None,
        typer.Option(min=30, help="Months of each scenario book (default 36; at least 30, where every band holds)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of every generated book.")] = DEMO_SEED,
    demo_accounts: Annotated[int, typer.Option(min=50, help="Accounts of the demo book.")] = DEMO_ACCOUNTS,
    wheelhouse: Annotated[
        Path | None,
        typer.Option(
            help="Folder of wheels (cslab and its dependencies) to copy into the bundle for offline installs."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing bundle folder.")] = False,
) -> None:
    """Build a workshop bundle: student and teacher primers, scenario books, HTML handouts, slide figures.

    Writes OUT/README.md, OUT/student/, OUT/teacher/, OUT/data/, OUT/handouts/ and OUT/figures/. Exit
    code 2 when a scenario is unknown or OUT exists (without --force).
    """
    from cslab.data.scenarios import SCENARIOS
    from cslab.workshop.bundle import build_bundle

    unknown = [s for s in scenario if s not in SCENARIOS]
    if unknown:
        typer.echo(f"error: unknown scenario {', '.join(unknown)}; known: {', '.join(SCENARIOS)}", err=True)
        raise typer.Exit(EXIT_INVALID)
    try:
        result = build_bundle(
            out,
            scenario or None,
            n_accounts=accounts,
            n_months=months,
            seed=seed,
            demo_accounts=demo_accounts,
            wheelhouse=wheelhouse,
            force=force,
            echo=lambda line: typer.echo(line, err=True),
        )
    except (FileExistsError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_INVALID) from None
    typer.echo(f"{result.out / 'README.md'} ({result.seconds:.0f} s)")


app.command("import")(import_command)


def _params(values: list[str], only: list[str] | None) -> dict:
    from cslab.audit import NOTEBOOKS, parse_param
    from cslab.notebook import declared_parameters

    declared = {}
    for name in only or NOTEBOOKS:
        if name in NOTEBOOKS:
            declared.update(declared_parameters(name))
    return dict(parse_param(v, declared) for v in values)


def _audit(
    data: Path | None,
    out: Path,
    *,
    only: list[str] | None,
    client: str = "",
    as_of: str | None = None,
    param: list[str] = (),
    force: bool = False,
    customers: Path | None = None,
    id_col: str | None = None,
    event_col: str | None = None,
    duration_col: str | None = None,
    segment_col: str | None = None,
    currency: str | None = None,
    anonymize: bool = False,
    anonymize_key: str | None = None,
    anonymize_key_file: Path | None = None,
    engine: str = "duckdb",
) -> None:
    import pandas as pd

    from cslab.audit import AuditError, run_audit
    from cslab.errors import DataValidationError

    if (data is None) == (customers is None):
        typer.echo("error: give a data folder, or --customers FILE (snapshot mode), not both", err=True)
        raise typer.Exit(EXIT_INVALID)
    from cslab.data.engine import EngineError, engine_name

    try:
        engine = engine_name(engine)
    except EngineError as exc:
        typer.echo(f"error: --engine: {exc}", err=True)
        raise typer.Exit(EXIT_INVALID) from None
    data = _source(data)
    if as_of:
        try:
            pd.Timestamp(as_of)
        except ValueError:
            typer.echo(f"error: --as-of {as_of!r} is not a date (use YYYY-MM-DD)", err=True)
            raise typer.Exit(EXIT_INVALID) from None
    snapshot = None
    if customers is not None:
        if not event_col:
            typer.echo("error: snapshot mode needs --event-col (the churn flag column)", err=True)
            raise typer.Exit(EXIT_INVALID)
        snapshot = {
            "customers_file": str(customers),
            "id_col": id_col or "",
            "event_col": event_col,
            "duration_col": duration_col or "",
            "segment_col": segment_col or "",
        }
    try:
        params = _params(param, only)
        if segment_col and not snapshot:
            params.setdefault("segment_col", segment_col)
        result = run_audit(
            data,
            out,
            client=client,
            as_of=as_of,
            only=only,
            params=params,
            force=force,
            customers=snapshot,
            currency=currency,
            anonymize=anonymize,
            anonymize_key=anonymize_key,
            anonymize_key_file=anonymize_key_file,
            echo=lambda line: typer.echo(line, err=True),
            engine=engine,
        )
    except DataValidationError as exc:
        _echo_report(exc.report)
        raise typer.Exit(EXIT_INVALID) from None
    except AuditError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_INVALID) from None
    typer.echo(str(result.out / "index.html"))
    raise typer.Exit(result.exit_code)


_OUT = typer.Option("--out", help="Audit folder to create.")
_DATA = typer.Argument(
    help="Data folder, DuckDB database file, or Parquet location Spark reads (s3a://..., with --engine spark); "
    "omit with --customers."
)


def _source(data: Path | None) -> Path | str | None:
    """The data argument as given: a URL (``s3a://bucket/book``) survives, which ``Path`` folds to ``s3a:/``."""
    import re

    text = str(data) if data is not None else ""
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]+):/(?!/)", text)
    if match and match.group(1).lower() != "file" and not Path(text).exists():
        return f"{match.group(1)}://{text[match.end() :]}"
    return data


def _option(name: str, annotation: Any, default: Any, *decls: str, **info: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[annotation, typer.Option(*decls, **info)],
    )


#: The options of ``cslab audit`` and ``cslab run``, declared once (:func:`_audit_options`)
_AUDIT_OPTIONS = [
    _option("client", str, "", help="Client name shown on the reports."),
    _option(
        "as_of",
        str | None,
        None,
        "--as-of",
        help="Analysis date YYYY-MM-DD (default: the end of the last complete month of the data).",
    ),
    _option("param", list[str], [], "-p", "--param", help="Notebook parameter KEY=VALUE (repeatable)."),
    _option("force", bool, False, "--force", help="Replace an existing audit folder."),
    _option("customers", Path | None, None, "--customers", help="Snapshot mode: one-row-per-customer CSV/Parquet."),
    _option("id_col", str | None, None, "--id-col", help="Snapshot mode: id column (default: row numbers)."),
    _option("event_col", str | None, None, "--event-col", help="Snapshot mode: churn flag column."),
    _option("duration_col", str | None, None, "--duration-col", help="Snapshot mode: tenure column."),
    _option("segment_col", str | None, None, "--segment-col", help="Column to split survival curves by."),
    _option(
        "currency",
        str | None,
        None,
        show_default=False,
        help="Currency label of every amount (default: the subscriptions' currency column, else USD).",
    ),
    _option(
        "anonymize",
        bool,
        False,
        "--anonymize",
        help="Replace account names, account ids and CSM ids by stable keyed pseudonyms in every output "
        "(reports, tables, notebooks, results.json).",
    ),
    _option(
        "anonymize_key",
        str | None,
        None,
        "--anonymize-key",
        metavar="KEY",
        show_default=False,
        help="Pseudonym key, 16+ characters (implies --anonymize; better: $CSLAB_ANONYMIZE_KEY). "
        "Default: the key file.",
    ),
    _option(
        "anonymize_key_file",
        Path | None,
        None,
        "--anonymize-key-file",
        metavar="FILE",
        show_default=False,
        help="Key file to read, or to create with a random key (implies --anonymize). "
        "Default: DATA.cslab-key beside the data folder.",
    ),
    _option(
        "engine",
        str,
        "duckdb",
        "--engine",
        metavar="duckdb|spark",
        help="Engine of the row-level work (usage aggregation, monthly panel): duckdb, or spark (the "
        "notebooks start a SparkSession, local[*] or $CSLAB_SPARK_MASTER; needs pyspark and Java 17+).",
    ),
]


def _audit_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command every option of :data:`_AUDIT_OPTIONS` after its own parameters.

    ``audit`` and ``run`` take the same options; declared once, their help texts cannot drift apart.
    The command receives them in ``**options``.
    """
    own = [
        p
        for p in inspect.signature(command, eval_str=True).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    ]

    @functools.wraps(command)
    def with_options(**values: Any) -> None:
        return command(**values)

    with_options.__signature__ = inspect.Signature(own + _AUDIT_OPTIONS)
    return with_options


@app.command()
@_audit_options
def audit(
    data: Annotated[Path | None, _DATA] = None,
    out: Annotated[Path, _OUT] = Path("reports/audit"),
    only: Annotated[
        str | None, typer.Option(help="Notebooks to run, comma-separated (e.g. 01_cohort_retention).")
    ] = None,
    **options: Any,
) -> None:
    """Run every notebook on a data folder and write the audit: index.html, reports, tables, results.json.

    Exit code 0 when every notebook is ok or skipped, 1 when any failed, 2 when the input or the
    parameters are invalid (then nothing runs and nothing is written).

    With --anonymize the notebooks run on a pseudonymised copy of the input (in a temporary folder)
    and the key stays beside the input (DATA.cslab-key, created on first use), never in the audit.
    """
    names = [n.strip() for n in only.split(",") if n.strip()] if only else None
    _audit(data, out, only=names, **options)


@app.command("run")
@_audit_options
def run_one(
    notebook: Annotated[str, typer.Argument(help="Notebook name, e.g. 01_cohort_retention.")],
    data: Annotated[Path | None, _DATA] = None,
    out: Annotated[Path, _OUT] = Path("reports/run"),
    **options: Any,
) -> None:
    """Run one notebook, with the same output layout as the audit."""
    _audit(data, out, only=[notebook.removesuffix(".ipynb")], **options)


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
