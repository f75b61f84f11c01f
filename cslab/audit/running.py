"""Running the audit: parameters, a kernel for this interpreter, papermill, and the audit folder.

:func:`run_audit` validates the input, runs each notebook (:func:`run_notebook`: papermill, then the
code-free report of :mod:`cslab.audit.exporting`), and writes the index (:mod:`cslab.audit.index`) and
``results.json``.
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd

from cslab import config
from cslab.audit import spec as _spec
from cslab.audit.exporting import export_html, lost_figures
from cslab.audit.index import write_index
from cslab.audit.spec import AuditError, AuditResult, NotebookRun, NotebookSpec
from cslab.notebook import RESULTS_MIMETYPE, declared_parameters, type_problems

__all__ = [
    "KERNEL_NAME",
    "INLINE_BACKEND",
    "PATH_PARAMETERS",
    "WORK_FOLDER",
    "parse_param",
    "current_kernel",
    "read_results",
    "run_notebook",
    "inspect_book",
    "effective_parameters",
    "parameter_rows",
    "run_audit",
]

KERNEL_NAME = "cslab-current-python"
#: The backend every kernel of the audit draws with, whatever the caller's ``MPLBACKEND``.
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------
def parse_param(text: str, declared: dict[str, dict] | None = None) -> tuple[str, Any]:
    """``KEY=VALUE`` from the command line, the value typed like the parameter's declaration.

    Examples
    --------
    >>> parse_param("min_cohort_size=20", {"min_cohort_size": {"type": "int"}})
    ('min_cohort_size', 20)
    >>> parse_param("segment_col=segment", {"segment_col": {"type": "str"}})
    ('segment_col', 'segment')
    """
    if "=" not in text:
        raise AuditError(f"parameter {text!r} should be KEY=VALUE")
    key, raw = (part.strip() for part in text.split("=", 1))
    kind = (declared or {}).get(key, {}).get("type", "")
    if kind == "str":
        return key, raw
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        if kind == "list":
            return key, [item.strip() for item in raw.split(",") if item.strip()]
        if kind == "bool" and raw.lower() in {"true", "false", "yes", "no"}:
            return key, raw.lower() in {"true", "yes"}
        return key, raw
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    return key, value


#: The thread-pool variables of the numerical libraries (OpenMP, OpenBLAS, MKL, Accelerate, numexpr).
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
#: Sets every thread cap of the notebook kernels at once (default: half the usable cores).
THREADS_VARIABLE = "CSLAB_THREADS"


def kernel_threads() -> dict[str, str]:
    """The thread caps a notebook kernel starts with.

    Half the usable cores, at least one: OpenMP and BLAS otherwise start a thread per core in every
    process, and two notebooks, or a notebook and the tests, on the same cores then run twice as
    many threads as there are cores and slow each other down several times over. A variable the
    caller set is kept; ``CSLAB_THREADS`` sets them all (``CSLAB_THREADS=8`` on a machine the audit
    has to itself).

    Examples
    --------
    >>> kernel_threads()["OMP_NUM_THREADS"]  # doctest: +SKIP
    '1'
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    default = os.environ.get(THREADS_VARIABLE) or str(max(1, cores // 2))
    return {name: os.environ.get(name) or default for name in THREAD_VARIABLES}


# --------------------------------------------------------------------------------------------
# Running one notebook
# --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def current_kernel() -> Iterator[str]:
    """A kernelspec for the running interpreter, visible to jupyter only for this run.

    So the audit works in any venv or conda env without a manual ``ipykernel install``.
    """
    with tempfile.TemporaryDirectory(prefix="cslab-kernel-") as tmp:
        folder = Path(tmp) / "kernels" / KERNEL_NAME
        folder.mkdir(parents=True)
        (folder / "kernel.json").write_text(
            json.dumps(
                {
                    # quiet: the kernel's own log lines (TCP warning, shutdown) mean nothing to a reader
                    "argv": [
                        sys.executable,
                        "-m",
                        "ipykernel_launcher",
                        "-f",
                        "{connection_file}",
                        "--log-level=CRITICAL",
                    ],
                    "display_name": "cslab (current Python)",
                    "language": "python",
                    # jupyter_client starts the kernel with os.environ updated by this "env": figures go
                    # inline into the report even when the caller has MPLBACKEND=Agg (servers, CI images)
                    # CSLAB_BATCH: no progress bars in a report nobody watches being made
                    # thread caps: see kernel_threads
                    "env": {"MPLBACKEND": INLINE_BACKEND, "CSLAB_BATCH": "1", **kernel_threads()},
                }
            )
        )
        previous = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = tmp + (os.pathsep + previous if previous else "")
        try:
            yield KERNEL_NAME
        finally:
            if previous is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = previous


def read_results(notebook: nbformat.NotebookNode | str | Path) -> dict[str, Any]:
    """Recorded figures (:func:`cslab.notebook.record`) read back from an executed notebook."""
    if not isinstance(notebook, nbformat.NotebookNode):
        notebook = nbformat.read(str(notebook), as_version=4)
    results: dict[str, Any] = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if RESULTS_MIMETYPE in data:
                results.update(data[RESULTS_MIMETYPE])
    return results


def run_notebook(
    spec: NotebookSpec, parameters: dict[str, Any], out: Path, kernel: str, progress: bool = True
) -> NotebookRun:
    """Execute one notebook into ``out/executed`` and export its HTML; never raises on failure."""
    import papermill as pm

    run = NotebookRun(spec.name)
    executed = out / "executed" / f"{spec.name}.ipynb"
    run.executed = str(executed.relative_to(out))
    start = time.perf_counter()
    try:
        pm.execute_notebook(
            str(config.NOTEBOOKS_DIR / f"{spec.name}.ipynb"),
            str(executed),
            parameters=parameters,
            kernel_name=kernel,
            progress_bar=progress,
            cwd=str(config.NOTEBOOKS_DIR),
            log_output=False,
        )
        run.status = "ok"
    except pm.PapermillExecutionError as exc:
        if exc.ename == "NotebookSkipped":  # the notebook found its question unanswerable, and said why
            run.status, run.error = "skipped", str(exc.evalue)
        else:
            run.status, run.error = "failed", f"{exc.ename}: {exc.evalue}"
    except Exception as exc:  # noqa: BLE001 - a failing notebook must not stop the others
        run.status, run.error = "failed", f"{type(exc).__name__}: {exc}"
    run.seconds = time.perf_counter() - start
    if executed.exists():
        notebook = nbformat.read(str(executed), as_version=4)
        run.results = read_results(notebook)
        report = out / f"{spec.name}.html"
        export_html(notebook, report, f"{spec.title}: {parameters.get('client_name', '')}")
        run.report = f"{spec.name}.html"
        lost = None if run.status == "failed" else lost_figures(notebook, report.read_text(encoding="utf-8"))
        if lost:
            run.status, run.error = "failed", lost
    return run


# --------------------------------------------------------------------------------------------
# The whole audit
# --------------------------------------------------------------------------------------------
#: Parameters that are paths of this run (the input is listed with its checksums instead)
PATH_PARAMETERS = frozenset({"data_dir", "tables_dir", "customers_file", "work_dir"})
#: The working folder inside the audit folder while it is made (removed at the end)
WORK_FOLDER = "work"
#: Packages whose versions can change the figures, recorded with every audit
_PACKAGES = (
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "statsmodels",
    "lifelines",
    "shap",
    "duckdb",
    "matplotlib",
    "papermill",
    "nbconvert",
)


def inspect_book(
    data, as_of: str | None, *, as_of_given: bool = False, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What the index and ``results.json`` say about the input before any figure.

    Returns ``metric_roles`` (role -> metric), ``role_reasons``, ``left_out`` (the leakage guard's
    ``{"column", "reason"}`` list, with the same ``include_attributes`` / ``exclude_attributes``
    the notebooks get) and ``data_warnings`` (``{"code", "message"}``, :mod:`cslab.quality`).
    """
    import warnings

    from cslab import leakage, quality
    from cslab.data import panel as build_panel

    params = params or {}
    include, exclude = params.get("include_attributes"), params.get("exclude_attributes")
    if data.snapshot_mode:
        screen = leakage.screen_snapshot(data.customers, include=include, exclude=exclude)
        left_out = screen.records()
        warns = quality.data_warnings_snapshot(left_out)
        return {"metric_roles": {}, "role_reasons": {}, "left_out": left_out, "data_warnings": warns}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        monthly = build_panel(data, as_of=as_of)
        screen = leakage.screen_attributes(monthly, include=include, exclude=exclude)
        warns = quality.data_warnings(data, monthly, as_of_given=as_of_given, left_out=screen.records())
    return {
        "metric_roles": dict(data.metric_roles.roles),
        "role_reasons": dict(data.metric_roles.reasons),
        "left_out": screen.records(),
        "data_warnings": warns,
    }


def effective_parameters(declared: dict[str, dict], values: dict[str, Any]) -> dict[str, Any]:
    """Every parameter a notebook ran with: the values passed, else its declared defaults.

    Paths of the run (:data:`PATH_PARAMETERS`) are left out: they differ between runs and may name
    the client; the inputs are identified by their checksums.

    Examples
    --------
    >>> effective_parameters({"a": {"default": 1}, "b": {"default": "x"}, "data_dir": {"default": ""}},
    ...                      {"a": 2, "data_dir": "/d"})
    {'a': 2, 'b': 'x'}
    """
    return {name: values.get(name, spec["default"]) for name, spec in declared.items() if name not in PATH_PARAMETERS}


def parameter_rows(
    effective: dict[str, dict[str, Any]], declared: dict[str, dict[str, dict]], given: dict[str, Any]
) -> list[dict[str, Any]]:
    """One row per parameter and value for the index: the notebooks using it and where it came from."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for notebook, values in effective.items():
        for name, value in values.items():
            shown = value if isinstance(value, str) else json.dumps(value)
            row = rows.setdefault(
                (name, shown),
                {
                    "name": name,
                    "value": shown,
                    "notebooks": [],
                    "origin": "given" if name in given else "audit" if name in {"as_of", "client_name"} else "default",
                    "help": declared[notebook][name].get("help", ""),
                },
            )
            row["notebooks"].append(notebook[:2])
    return [rows[k] for k in sorted(rows)]


def _environment() -> dict[str, str]:
    """Python and the versions of the packages behind the figures."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in _PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def _checksums(paths: list[Path]) -> dict[str, str]:
    sums = {}
    for path in paths:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        sums[path.name] = digest.hexdigest()
    return sums


def run_audit(
    data_dir: str | Path | None,
    out: str | Path,
    *,
    client: str = "",
    as_of: str | None = None,
    only: list[str] | None = None,
    params: dict[str, Any] | None = None,
    force: bool = False,
    customers: dict[str, str] | None = None,
    currency: str | None = None,
    anonymize: bool = False,
    anonymize_key: str | bytes | None = None,
    anonymize_key_file: str | Path | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    engine: str | None = None,
) -> AuditResult:
    """Run the audit on a data folder (or a customers table) into ``out``.

    Parameters
    ----------
    data_dir : path, optional
        A data folder (the contract's tables), a DuckDB database file holding them, or a location
        Spark reads (``s3a://bucket/book``; with ``engine="spark"``). ``None`` in snapshot mode.
    out : path
        The audit folder to create.
    client : str
        Client name for the reports.
    as_of : str, optional
        Analysis date; default the end of the last complete month of the data
        (:meth:`CSData.default_as_of`), the same for every notebook.
    only : list of str, optional
        Notebook names to run (default: all).
    params : dict, optional
        Extra notebook parameters; each must be declared by at least one notebook that runs.
    force : bool
        Replace an existing ``out`` folder.
    currency : str, optional
        Currency label of every amount; default the ``currency`` column of the subscriptions, else
        USD.
    customers : dict, optional
        Snapshot mode: ``{"customers_file": ..., "id_col": ..., "event_col": ...,
        "duration_col": ..., "segment_col": ...}``.
    anonymize : bool
        Replace account names, account ids and CSM ids by stable keyed pseudonyms in every output
        (:mod:`cslab.privacy`): the notebooks run on a pseudonymised copy of the input written to a
        temporary folder, and the report does not show the input's path.
    anonymize_key : str, optional
        The pseudonym key (implies ``anonymize``); default ``$CSLAB_ANONYMIZE_KEY``, else the key
        file.
    anonymize_key_file : path, optional
        Key file read, or created with a random key (implies ``anonymize``); default
        ``<data folder>.cslab-key`` beside the data folder. Never inside the data folder or ``out``.
    engine : {"duckdb", "spark"}, optional
        Where the row-level work runs (:mod:`cslab.data.engine`), here and in every notebook (they
        read it from ``$CSLAB_ENGINE``); default ``$CSLAB_ENGINE``, else DuckDB.

    Raises
    ------
    DataValidationError
        The input breaks the data contract (nothing runs, nothing is written).
    AuditError
        Unknown notebook or parameter, ``out`` exists without ``force``, the input lies inside
        ``out``, or no usable pseudonym key.

    Examples
    --------
    >>> result = run_audit("data/demo", "reports/demo", client="Demo Co")  # doctest: +SKIP
    >>> result.exit_code  # doctest: +SKIP
    0
    >>> run_audit("exports/acme", "reports/acme", anonymize=True)  # doctest: +SKIP
    """
    from cslab import __version__, privacy
    from cslab.data import load, load_customers
    from cslab.data.engine import ENGINE_VARIABLE, EngineError, engine_name
    from cslab.data.io import _is_location

    try:
        engine = engine_name(engine)
    except EngineError as exc:
        raise AuditError(str(exc)) from None
    location = data_dir is not None and _is_location(str(data_dir))

    out = Path(out).resolve()
    notebooks = _spec.NOTEBOOKS
    names = list(notebooks) if not only else only
    unknown = [n for n in names if n not in notebooks]
    if unknown:
        raise AuditError(f"unknown notebook {', '.join(unknown)}; known: {', '.join(notebooks)}")
    if out.exists() and any(out.iterdir()) and not force:
        raise AuditError(f"{out} exists; use --force to replace it")
    declared = {n: declared_parameters(n) for n in names}
    params = dict(params or {})
    problems = type_problems(params, {k: v for d in declared.values() for k, v in d.items()})
    if problems:
        raise AuditError("; ".join(problems))
    anonymize = anonymize or anonymize_key is not None or anonymize_key_file is not None
    given = customers["customers_file"] if customers else data_dir
    source_path = Path(given).resolve() if given and not location else None
    if source_path is not None and source_path.is_relative_to(out):
        # the audit folder is replaced at the end: the input must not be inside it
        raise AuditError(f"the input {given} lies inside the audit folder {out}; choose another --out")
    if (
        anonymize
        and source_path is not None
        and (
            out.is_relative_to(source_path)
            or (anonymize_key_file and Path(anonymize_key_file).resolve().is_relative_to(out))
        )
    ):
        raise AuditError(
            "with --anonymize, the audit folder must lie outside the input, and the key file outside the audit folder"
        )

    # Validate first: invalid input means nothing runs and nothing is written.
    if customers:
        data = load_customers(
            customers["customers_file"],
            id_col=customers.get("id_col") or None,
            event_col=customers["event_col"],
            duration_col=customers.get("duration_col") or None,
        )
        inputs = [Path(customers["customers_file"])]
        period, as_of_text, source = "", "", str(customers["customers_file"])
    else:
        try:
            data = load(data_dir, metric_roles=params.get("metric_roles") or None, engine=engine)
        except EngineError as exc:
            raise AuditError(str(exc)) from None
        if location:  # a location Spark reads: no local files to checksum
            files = []
        elif Path(data_dir).is_dir():
            files = sorted(p for p in Path(data_dir).iterdir() if p.is_file())
        else:  # a DuckDB database file
            files = [Path(data_dir)]
        inputs = files
        as_of_ts = pd.Timestamp(as_of) if as_of else data.default_as_of()
        first = data.subscriptions["start_date"].min()
        if as_of_ts < first:
            raise AuditError(
                f"--as-of {as_of_ts:%Y-%m-%d} lies before the first subscription line "
                f"({first:%Y-%m-%d}): there is nothing to analyse"
            )
        period = f"{first:%Y-%m} to {as_of_ts:%Y-%m}"
        as_of_text, source = f"{as_of_ts:%Y-%m-%d}", str(data_dir)
    label = currency or getattr(data, "currency", None) or "USD"
    try:
        inspection = inspect_book(data, as_of_text or None, as_of_given=bool(as_of), params=params)
    except Exception as exc:  # noqa: BLE001 - the notebooks still run and say what they can
        inspection = {
            "metric_roles": dict(data.metric_roles.roles),
            "role_reasons": {},
            "left_out": [],
            "data_warnings": [
                {
                    "code": "inspection_failed",
                    "message": f"the input could not be profiled "
                    f"({type(exc).__name__}: {exc}); each notebook says what it could compute",
                }
            ],
        }
    input_sums = _checksums(inputs)  # of the files as given, before any copy

    anon_dir: Path | None = None
    run_data_dir, run_customers = data_dir, dict(customers) if customers else None
    if anonymize:
        try:
            key, origin = privacy.resolve_key(source_path, anonymize_key, anonymize_key_file)
        except privacy.AnonymizationError as exc:
            raise AuditError(str(exc)) from exc
        # outside the audit folder, so nothing of the original can end up in it
        anon_dir = Path(tempfile.mkdtemp(prefix="cslab-anonymized-"))
        try:
            if customers:
                copy = privacy.anonymize_customers(
                    customers["customers_file"], anon_dir, key, id_col=customers.get("id_col") or None
                )
                run_customers["customers_file"] = str(copy.path)
            else:
                copy = privacy.anonymize_folder(data, anon_dir / "data", key)
                run_data_dir = copy.path
        except BaseException:
            shutil.rmtree(anon_dir, ignore_errors=True)
            raise
        source = "pseudonymised copy of the input (path withheld)"
        echo(
            f"anonymized: {copy.n_accounts:,} account ids, {copy.n_names:,} names and {copy.n_csms:,} "
            f"CSM ids replaced; pseudonym key from {origin}"
        )
        for column in copy.kept_text_columns:
            echo(
                f"note: {column} is kept as it is (only names, account ids and CSM ids are replaced); "
                "drop it from the export if it identifies anyone"
            )

    common = {
        "data_dir": (str(run_data_dir) if location and run_data_dir == data_dir else str(Path(run_data_dir).resolve()))
        if run_data_dir
        else "",
        "as_of": as_of_text,
        "client_name": client,
        "currency": label,
        **(
            {k: str(Path(v).resolve()) if k == "customers_file" else (v or "") for k, v in run_customers.items()}
            if run_customers
            else {}
        ),
    }
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent if out.parent.exists() else None))
    try:
        (tmp / "executed").mkdir()
        (tmp / "tables").mkdir()
        runs: dict[str, NotebookRun] = {}
        effective: dict[str, dict[str, Any]] = {}
        previous_engine = os.environ.get(ENGINE_VARIABLE)
        os.environ[ENGINE_VARIABLE] = engine  # the notebooks' kernels inherit it
        try:
            with current_kernel() as kernel:
                for i, name in enumerate(names, 1):
                    spec = notebooks[name]
                    if customers and not spec.snapshot:
                        runs[name] = NotebookRun(
                            name,
                            "skipped",
                            "needs a subscriptions table; a one-row-per-customer table has no revenue history",
                        )
                        echo(f"[{i}/{len(names)}] {name}: skipped ({runs[name].error})")
                        continue
                    missing = [(table, why) for table, why in spec.requires if getattr(data, table, None) is None]
                    if not customers and missing:
                        runs[name] = NotebookRun(
                            name, "skipped", "; ".join(f"needs the {table} table: {why}" for table, why in missing)
                        )
                        echo(f"[{i}/{len(names)}] {name}: skipped ({runs[name].error})")
                        continue
                    # the working folder: fitted models shared between the notebooks of this audit (the
                    # churn model of 02 reused by 04), passed only to notebooks that declare work_dir
                    values = {**common, "tables_dir": str(tmp / "tables"), "work_dir": str(tmp / WORK_FOLDER), **params}
                    values = {k: v for k, v in values.items() if k in declared[name]}
                    if "work_dir" in values:
                        Path(values["work_dir"]).mkdir(parents=True, exist_ok=True)
                    effective[name] = effective_parameters(declared[name], values)
                    echo(f"[{i}/{len(names)}] {name}: running")
                    run = run_notebook(spec, values, tmp, kernel, progress=progress)
                    runs[name] = run
                    detail = f" ({run.error})" if run.error else ""
                    echo(f"[{i}/{len(names)}] {name}: {run.status} in {run.seconds:.1f} s{detail}")
        finally:
            if previous_engine is None:
                os.environ.pop(ENGINE_VARIABLE, None)
            else:
                os.environ[ENGINE_VARIABLE] = previous_engine
        environment = _environment()
        meta = {
            "client": client or "(unnamed client)",
            "source": source,
            "period": period,
            "as_of": as_of_text,
            "version": __version__,
            "generated": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "inputs": input_sums,
            "anonymized": anonymize,
            "environment": environment,
            "parameters": parameter_rows(effective, declared, given=params),
        }
        meta.update(
            inspection,
            profile_link="01_cohort_retention.html#Input-profile"
            if runs.get("01_cohort_retention") and runs["01_cohort_retention"].report and not customers
            else "",
        )
        write_index(tmp, meta, runs, label)
        results = {
            "client": client,
            "source": source,
            "period": period,
            "as_of": as_of_text,
            "currency": label,
            "metric_roles": inspection["metric_roles"],
            "metric_role_reasons": inspection["role_reasons"],
            "left_out_attributes": inspection["left_out"],
            "data_warnings": inspection["data_warnings"],
            "cslab_version": __version__,
            "parameters": params,
            "inputs": meta["inputs"],
            "anonymized": anonymize,
            "environment": environment,
            "notebooks": {name: {**run.to_json(), "parameters": effective.get(name, {})} for name, run in runs.items()},
        }
        (tmp / "results.json").write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
        # intermediate models, not part of the audit (and they may hold the client's data)
        shutil.rmtree(tmp / WORK_FOLDER, ignore_errors=True)
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if anon_dir is not None:
            shutil.rmtree(anon_dir, ignore_errors=True)
    return AuditResult(out, runs)
