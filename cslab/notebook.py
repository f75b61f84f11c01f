"""Helpers called from inside the notebooks: parameter checks, recorded results, tables, sentences.

The notebooks hold narrative, parameters and calls; these are the calls that tie a notebook to the
audit: :func:`check_parameters` right after the parameters cell, :func:`record` for key figures
(read back by the audit and the tests from the executed notebook), :func:`save_table` for CSVs.
"""

from __future__ import annotations

import ast
import json
import math
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cslab import config
from cslab.errors import CSLabError, NotebookSkipped, StatisticalWarning

__all__ = [
    "RESULTS_MIMETYPE",
    "ParameterError",
    "declared_parameters",
    "check_parameters",
    "record",
    "key_figures_table",
    "save_table",
    "tables_folder",
    "pct",
    "money",
    "show_statistical_warnings",
    "skip",
    "escape_styled_tables",
    "show_inputs",
    "spreadsheet_safe",
]

RESULTS_MIMETYPE = "application/vnd.cslab.results+json"
_TYPES = {"str": str, "int": int, "float": (int, float), "bool": bool, "list": list, "dict": dict}
# Names IPython itself puts in a notebook's namespace.
_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


class ParameterError(CSLabError):
    """A notebook got an unknown parameter or one of the wrong type."""


def declared_parameters(notebook: str | Path) -> dict[str, dict]:
    """The parameters a notebook declares in its cell tagged ``parameters``.

    Each ``name: type = literal  # comment`` line gives the name, the type, the default and the
    help text.

    Examples
    --------
    >>> declared_parameters("01_cohort_retention")["min_cohort_size"]["type"]  # doctest: +SKIP
    'int'
    """
    path = Path(notebook)
    if not path.suffix:
        # A notebook runs with its own folder as the working directory (JupyterLab, papermill).
        here = Path.cwd() / f"{notebook}.ipynb"
        path = here if here.exists() else config.NOTEBOOKS_DIR / f"{notebook}.ipynb"
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    source = next(("".join(c["source"]) for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if source is None:
        raise ParameterError(f"{path.name} has no cell tagged 'parameters'")
    declared = {}
    lines = source.splitlines()
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            line = lines[node.lineno - 1]
            declared[node.target.id] = {
                "type": ast.unparse(node.annotation),
                "default": ast.literal_eval(node.value) if node.value is not None else None,
                "help": line.split("#", 1)[1].strip() if "#" in line else "",
            }
    return declared


def type_problems(values: dict[str, Any], declared: dict[str, dict]) -> list[str]:
    """Unknown or mistyped parameters, one sentence each (empty when all is well)."""
    problems = []
    for name in values:
        if name not in declared:
            close = [d for d in declared if d.lower() == name.lower() or d.startswith(name[:4])]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"unknown parameter {name!r}{hint}; known: {', '.join(declared)}")
    for name, value in values.items():
        if name in declared:
            expected = _TYPES.get(declared[name]["type"].split("[")[0])
            wrong = expected is not None and (
                not isinstance(value, expected)
                or (declared[name]["type"] in {"int", "float"} and isinstance(value, bool))
            )
            if wrong:
                problems.append(
                    f"parameter {name!r} should be {declared[name]['type']}, got {type(value).__name__} {value!r}"
                )
    return problems


def check_parameters(namespace: dict[str, Any], notebook: str) -> dict[str, Any]:
    """Check a notebook's parameters right after they are set; return them as a dict.

    Papermill only warns about a parameter the notebook does not declare; here it is an error,
    as is a value of the wrong type (``min_cohort_size="ten"``). It also sets the report up:
    :func:`show_statistical_warnings`.

    Parameters
    ----------
    namespace : dict
        The notebook's ``globals()``.
    notebook : str
        The notebook's name, e.g. ``"01_cohort_retention"``.

    Examples
    --------
    >>> params = check_parameters(globals(), "01_cohort_retention")  # doctest: +SKIP
    """
    declared = declared_parameters(notebook)
    given = {
        k: v
        for k, v in namespace.items()
        if not k.startswith("_") and k not in _IPYTHON_NAMES and not callable(v) and type(v).__name__ != "module"
    }
    problems = type_problems(given, declared)
    if problems:
        raise ParameterError("; ".join(problems))
    show_statistical_warnings()
    escape_styled_tables()
    return {name: given[name] for name in declared if name in given}


def escape_styled_tables() -> None:
    """Make pandas ``Styler`` tables show data as text, never as markup, in this session.

    An account called ``<script>...`` or ``Tom & Jerry's`` must reach a report as text. pandas
    escapes a plain DataFrame's HTML but not a ``Styler``'s (the ranked lists with account names):
    the option ``styler.format.escape`` reaches only a Styler's constructor, every ``.format({...})``
    call rebuilds its formatters without it, and index labels are never escaped. After this call
    ``format`` and ``format_index`` default to HTML escaping and labels are escaped. Called by
    :func:`check_parameters`, so every notebook, in the audit or in JupyterLab, gets it.

    Examples
    --------
    >>> escape_styled_tables()
    >>> df = pd.DataFrame({"name": ["<b>x</b>"]})
    >>> "&lt;b&gt;" in df.style.format({"name": str}).to_html()
    True
    """
    import functools
    import inspect

    from pandas.io.formats.style import Styler

    if getattr(Styler, "_cslab_escapes", False):
        return

    def escaping(method):
        signature = inspect.signature(method)

        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            if bound.arguments.get("escape") is None:
                bound.arguments["escape"] = pd.get_option("styler.format.escape")
            return method(*bound.args, **bound.kwargs)

        return wrapper

    def escaping_labels(init):
        @functools.wraps(init)
        def wrapper(self, *args, **kwargs):
            init(self, *args, **kwargs)
            self.format_index(axis=0)
            self.format_index(axis=1)

        return wrapper

    pd.set_option("styler.format.escape", "html")
    Styler.format = escaping(Styler.format)
    Styler.format_index = escaping(Styler.format_index)
    Styler.__init__ = escaping_labels(Styler.__init__)
    Styler._cslab_escapes = True


def show_statistical_warnings() -> None:
    """Show every :class:`~cslab.errors.StatisticalWarning` as a note in the report, not on stderr.

    A reader of the HTML report sees "*Small sample:* 3 churned accounts ..." under the cell, in
    words, instead of a warning with a file path; other warnings are shown as before. Called by
    :func:`check_parameters`.

    Examples
    --------
    >>> show_statistical_warnings()  # doctest: +SKIP
    """
    previous = warnings.showwarning
    if getattr(previous, "_cslab", False):
        return

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, StatisticalWarning):
            from IPython.display import Markdown, display

            display(Markdown(f"> *Small sample:* {message}"))
        else:
            previous(message, category, filename, lineno, file, line)

    show._cslab = True
    warnings.showwarning = show


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, pd.Index, np.ndarray, pd.Series)):
        return [_jsonable(v) for v in list(value)]
    if isinstance(value, (pd.Timestamp, pd.Period)):
        return str(value.date()) if isinstance(value, pd.Timestamp) else str(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if value is pd.NaT or value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value


def record(**results: Any) -> None:
    """Record key figures (JSON scalars and short lists) for the audit and the tests.

    Every key must be declared in :mod:`cslab.results` (its notebook, kind, label and meaning); an
    undeclared key is refused before anything is recorded. The figures are shown as a small table,
    each value formatted by its declared kind (:func:`key_figures_table`), and carried, under a cslab
    MIME type, in the cell's output, from which the audit reads them back out of the executed
    notebook. NaN becomes null.

    Raises
    ------
    cslab.results.UndeclaredResultError
        A key is not declared in :data:`cslab.results.RESULT_KEYS`.

    Examples
    --------
    >>> record(nrr_12m=1.04, grr_12m=0.91)  # doctest: +SKIP
    """
    from cslab.results import lookup

    for name in results:
        lookup(name)  # raises on an undeclared key, before anything is shown
    clean = _jsonable(results)
    try:
        from IPython.display import display

        table = key_figures_table(clean, currency=_notebook_currency())
        display(
            {
                RESULTS_MIMETYPE: clean,
                "text/plain": table.to_string(index=False),
                "text/html": table.to_html(index=False),
            },
            raw=True,
        )
    except ImportError:  # pragma: no cover - IPython is a dependency
        pass


def _notebook_currency() -> str:
    """The running notebook's ``currency`` parameter, for amounts in the key-figures table ("" outside one)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return ""
    shell = get_ipython()
    currency = shell.user_ns.get("currency", "") if shell is not None else ""
    return currency if isinstance(currency, str) else ""


def key_figures_table(results: dict[str, Any], currency: str = "") -> pd.DataFrame:
    """Recorded figures as a reader sees them: label, value formatted by its declared kind, key.

    Parameters
    ----------
    results : dict
        Recorded key -> JSON value (as :func:`record` stores it).
    currency : str
        Label of amounts (``money`` keys).

    Examples
    --------
    >>> table = key_figures_table({"grr_12m": 0.8299896, "mrr_end": 1422375.0, "top_features": ["csat_90d"]},
    ...                           "USD")
    >>> table["value"].tolist()
    ['83.0%', 'USD 1,422,375', 'CSAT (90 days)']
    """
    from cslab.results import format_value, label_for, lookup, notebook_of

    notebook = notebook_of(results)  # a key such as horizon_months means one thing per notebook
    rows = [
        {
            "figure": label_for(name, notebook),
            "value": format_value(value, lookup(name, notebook).kind, currency),
            "key": name,
        }
        for name, value in results.items()
    ]
    return pd.DataFrame(rows, columns=["figure", "value", "key"])


def tables_folder(tables_dir: str) -> Path:
    """Where a notebook writes its CSV tables: ``tables_dir``, or ``reports/lab/tables`` when empty."""
    folder = Path(tables_dir) if tables_dir else config.REPORTS_DIR / "lab" / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# What a spreadsheet reads as the start of a formula (OWASP, "CSV injection")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?([eE][+-]?\d+)?$")


def _safe_text(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def _safe_labels(labels: pd.Index) -> pd.Index:
    if isinstance(labels, pd.MultiIndex):
        tuples = [tuple(_safe_text(part) for part in label) for label in labels]
        safe = pd.MultiIndex.from_tuples(tuples) if tuples != list(labels) else labels
    else:
        safe = labels.map(_safe_text) if labels.dtype == object else labels
    safe = safe.set_names([_safe_text(n) for n in labels.names])
    return labels if safe.equals(labels) and list(safe.names) == list(labels.names) else safe


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of a table whose text a spreadsheet shows as text, never runs as a formula.

    Names in a CRM are typed by people, and a spreadsheet opening a CSV runs a cell such as
    ``=HYPERLINK("http://x","open")``, ``@SUM(A1)``, ``+1+1`` or ``-2+3`` as a formula ("CSV
    injection"). As OWASP recommends, a text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab
    or a carriage return gets a single quote in front (``'=HYPERLINK(...)``); the spreadsheet then
    shows the text as it was typed. This applies to the cells of text columns (object, string and
    categorical dtypes), to column names and to index labels and names. Numeric, boolean and date
    columns are left untouched, and so is a text cell that is a plain number in full (``-12.5``,
    ``+3``, ``1e-3``): it cannot run, and a spreadsheet reads it as the number it is. Text such as
    ``-5%`` or ``-1+2`` is escaped.

    Parameters
    ----------
    frame : DataFrame
        The table to write.

    Returns
    -------
    DataFrame
        ``frame`` itself when nothing needs escaping, else an escaped copy.

    Examples
    --------
    >>> df = pd.DataFrame({"name": ['=HYPERLINK("http://x")', "-12.5", "@SUM(A1)", "Acme"],
    ...                    "mrr": [-10.0, 2.0, 3.0, 4.0]})
    >>> spreadsheet_safe(df)
                          name   mrr
    0  '=HYPERLINK("http://x") -10.0
    1                    -12.5   2.0
    2                '@SUM(A1)   3.0
    3                     Acme   4.0
    """
    out = frame
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        if not (column.dtype == object or isinstance(column.dtype, (pd.StringDtype, pd.CategoricalDtype))):
            continue
        values = column.tolist()
        safe = [_safe_text(v) for v in values]
        if any(a is not b for a, b in zip(values, safe)):
            if out is frame:
                out = frame.copy()
            dtype = object if isinstance(column.dtype, pd.CategoricalDtype) else column.dtype
            out.isetitem(position, pd.Series(safe, index=column.index, dtype=dtype))
    columns, rows = _safe_labels(frame.columns), _safe_labels(frame.index)
    if columns is not frame.columns or rows is not frame.index:
        out = out.copy() if out is frame else out
        out.columns, out.index = columns, rows
    return out


def save_table(frame: pd.DataFrame, name: str, tables_dir: str, index: bool = False) -> None:
    """Write a table as CSV for CRM import or a spreadsheet (``<tables_dir>/<name>.csv``).

    Text that a spreadsheet would run as a formula is written with a leading ``'``
    (:func:`spreadsheet_safe`).

    Examples
    --------
    >>> save_table(cohorts, "cohort_logo_retention", tables_dir)  # doctest: +SKIP
    """
    path = tables_folder(tables_dir) / f"{name}.csv"
    spreadsheet_safe(frame).to_csv(path, index=index, float_format="%.6g", date_format="%Y-%m-%d")


def pct(value: float | None, digits: int = 1) -> str:
    """A share as a percentage for sentences (``n/a`` when missing).

    Examples
    --------
    >>> pct(0.04321)
    '4.3%'
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value * 100:.{digits}f}%"


def money(value: float | None, currency: str = "USD") -> str:
    """An amount for sentences: ``USD 1.2M``, ``USD 35.4k``, ``USD 950``.

    Examples
    --------
    >>> money(1234567, "EUR")
    'EUR 1.23M'
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    size = abs(value)
    text = f"{value / 1e6:.3g}M" if size >= 1e6 else f"{value / 1e3:.3g}k" if size >= 1e4 else f"{value:,.0f}"
    return f"{currency} {text}"


def skip(reason: str) -> None:
    """Stop the notebook here because the data cannot answer its question; the audit reports it skipped.

    The reason is shown in the notebook as a sentence, then :class:`~cslab.errors.NotebookSkipped`
    stops the run (papermill) or the cell (JupyterLab).

    Examples
    --------
    >>> skip("3 churned accounts: too few to model drivers; at least 30 are needed")  # doctest: +SKIP
    """
    try:
        from IPython.display import Markdown, display

        display(Markdown(f"**Stopped here:** {reason}."))
    except ImportError:  # pragma: no cover - IPython is a dependency
        pass
    raise NotebookSkipped(reason)


def show_inputs(data, screen=None) -> None:
    """Say which usage metric plays which role and which account columns the models leave out.

    Parameters
    ----------
    data : CSData
        The loaded tables (their ``metric_roles``).
    screen : AttributeScreen, optional
        :func:`cslab.leakage.screen_attributes` (or ``screen_snapshot``): a "Left out of the models"
        box lists each column, why, and how to keep it.

    Examples
    --------
    >>> show_inputs(data, screen)  # doctest: +SKIP
    """
    from IPython.display import Markdown, display

    if getattr(data, "usage", None) is not None:
        display(Markdown(data.metric_roles.sentence()))
    if screen is not None and screen.left_out:
        display(
            Markdown(
                f"**Left out of the models:** {len(screen.left_out)} column"
                f"{'s' if len(screen.left_out) != 1 else ''} of the account data "
                "(written at or after churn, or giving the answer away on their own). "
                "Keep one with `-p include_attributes=COLUMN`."
            )
        )
        display(
            screen.summary()
            .style.hide(axis="index")
            .set_properties(**{"text-align": "left"})
            .set_table_styles([{"selector": "th", "props": [("text-align", "left")]}])
        )
