"""The audit: run the notebooks with papermill, export code-free HTML, write the index and results.

Layout of an audit folder::

    OUT/index.html                  summary: client, data period, key figures, links, statuses
    OUT/<notebook>.html             code-free report of each notebook, figures embedded
    OUT/executed/<notebook>.ipynb   the executed notebook, for anyone who wants the code
    OUT/tables/*.csv                ranked lists and tables
    OUT/results.json                {"notebooks": {name: {"status", "error", "seconds", "results",
                                    "parameters"}}, "inputs", "environment", ...}

The package is cut along its seams: :mod:`~cslab.audit.spec` (the notebooks and what a run gives
back), :mod:`~cslab.audit.running` (parameters, kernel, papermill, the audit folder),
:mod:`~cslab.audit.exporting` (code-free HTML, the figures check) and :mod:`~cslab.audit.index` (the
index page and its executive summary, from the registry :mod:`cslab.results`); the page templates are
package data in ``cslab/audit/templates/``.

The audit is written into a temporary folder beside ``OUT`` and moved into place at the end, so an
interrupted run never leaves a half report that looks complete.

Reproducible: the same inputs, parameters and seed give the same recorded results, byte-identical
tables and the same reports (timings and the index's date aside); the index states the kit and
package versions, every parameter and the SHA-256 of each input file. With ``anonymize=True`` the
notebooks run on a pseudonymised copy of the input (:mod:`cslab.privacy`).
"""

from __future__ import annotations

from cslab.audit.exporting import export_html, lost_figures
from cslab.audit.index import executive_summary, write_index
from cslab.audit.running import (
    INLINE_BACKEND,
    KERNEL_NAME,
    PATH_PARAMETERS,
    current_kernel,
    effective_parameters,
    inspect_book,
    parameter_rows,
    parse_param,
    read_results,
    run_audit,
    run_notebook,
)
from cslab.audit.spec import NOTEBOOKS, AuditError, AuditResult, NotebookRun, NotebookSpec

__all__ = [
    "NotebookSpec",
    "NOTEBOOKS",
    "AuditError",
    "AuditResult",
    "NotebookRun",
    "run_audit",
    "run_notebook",
    "parse_param",
    "read_results",
    "export_html",
    "effective_parameters",
    "PATH_PARAMETERS",
    "lost_figures",
    "current_kernel",
    "KERNEL_NAME",
    "INLINE_BACKEND",
    "executive_summary",
    "write_index",
    "inspect_book",
    "parameter_rows",
]
