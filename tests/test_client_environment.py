"""The audit on a client's machine: whatever its environment, and whatever its data holds.

Figures reach the reports when the caller has ``MPLBACKEND=Agg`` (servers, CI images), and a report
that lost its figures is a failure, not a silent ok. Text typed into a CRM that a spreadsheet would
run as a formula (CSV injection) is written to the tables as text.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import nbformat
import pandas as pd

from cslab.audit import INLINE_BACKEND, KERNEL_NAME, current_kernel, lost_figures, run_audit
from cslab.audit.running import kernel_threads
from cslab.data.synth import generate
from cslab.notebook import save_table, spreadsheet_safe

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?([eE][+-]?\d+)?$")
EVIL_NAMES = ['=HYPERLINK("http://evil.example","open")', "@SUM(1+1)", "+1+1", "-1+2", "\tTabbed"]


def quiet(_: str) -> None:
    pass


# --------------------------------------------------------------------------------------------
# Figures whatever the caller's MPLBACKEND
# --------------------------------------------------------------------------------------------
def test_kernel_draws_inline_and_keeps_the_callers_environment(monkeypatch):
    """jupyter_client starts the kernel with os.environ updated by the kernelspec's env."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import start_new_kernel

    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("CSLAB_PROBE", "from-the-caller")
    with current_kernel() as kernel:
        spec = KernelSpecManager().get_kernel_spec(kernel)
        # inline figures, no progress bars, thread caps (cslab.audit.running.kernel_threads)
        assert spec.env == {"MPLBACKEND": INLINE_BACKEND, "CSLAB_BATCH": "1", **kernel_threads()}
        manager, client = start_new_kernel(kernel_name=kernel)
        try:
            seen: list[str] = []

            def hook(message):
                if message["msg_type"] == "stream":
                    seen.append(message["content"]["text"])

            client.execute_interactive(
                "import os, matplotlib; print(os.environ.get('CSLAB_PROBE'), matplotlib.get_backend(), "
                "os.environ.get('OMP_NUM_THREADS'))",
                output_hook=hook,
                timeout=60,
            )
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=True)
    assert "".join(seen).split() == ["from-the-caller", INLINE_BACKEND, kernel_threads()["OMP_NUM_THREADS"]]
    assert KERNEL_NAME == kernel


def test_reports_have_figures_when_the_caller_has_mplbackend_agg(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    folder = generate(n_accounts=150, n_months=14, seed=3).write(tmp_path / "data")
    result = run_audit(folder, tmp_path / "out", only=["01_cohort_retention"], progress=False, echo=quiet)
    run = result.runs["01_cohort_retention"]
    assert run.status == "ok", run.error
    html = (tmp_path / "out" / "01_cohort_retention.html").read_text(encoding="utf-8")
    images = re.findall(r"<img\b[^>]*src=\"data:image/png;base64,", html)
    assert len(images) >= 3, f"{len(images)} figures in the report"
    saved = json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8"))
    assert saved["notebooks"]["01_cohort_retention"]["status"] == "ok"


def _notebook(*outputs) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# Title"),
            nbformat.v4.new_code_cell("ax = plot(); plt.show()", outputs=list(outputs)),
        ]
    )


PNG = {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure size 640x480 with 1 Axes>"}
IMG = '<img alt="" src="data:image/png;base64,iVBORw0KGgo=">'


def test_lost_figures_normal_reports_pass():
    figure = nbformat.v4.new_output("display_data", PNG)
    assert lost_figures(_notebook(figure, figure), f"<html>{IMG}<p>x</p>{IMG}</html>") is None
    text = nbformat.v4.new_output("stream", name="stdout", text="12 accounts\n")
    assert lost_figures(_notebook(text), "<html><p>12 accounts</p></html>") is None
    assert lost_figures(_notebook(), "<html></html>") is None
    svg = nbformat.v4.new_output("display_data", {"image/svg+xml": "<svg></svg>"})
    html = '<div class="jp-RenderedSVG" data-mime-type="image/svg+xml"><svg></svg></div>'
    assert lost_figures(_notebook(svg), html) is None


def test_lost_figures_images_missing_from_the_html(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    figure = nbformat.v4.new_output("display_data", PNG)
    error = lost_figures(_notebook(figure, figure), "<html><p>no images</p></html>")
    assert error.startswith("figures were drawn but none (of 2) reached the report")
    assert "MPLBACKEND=Agg" in error
    assert "1 of 2 figures" in lost_figures(_notebook(figure, figure), f"<html>{IMG}</html>")


def test_lost_figures_figure_shown_as_text(monkeypatch):
    monkeypatch.delenv("MPLBACKEND", raising=False)
    as_text = nbformat.v4.new_output(
        "execute_result", {"text/plain": "<Figure size 640x480 with 1 Axes>"}, execution_count=1
    )
    error = lost_figures(_notebook(as_text), "<html><pre>&lt;Figure size 640x480 with 1 Axes&gt;</pre></html>")
    assert error and error.startswith("figures were drawn but none reached the report")
    warning = nbformat.v4.new_output(
        "stream", name="stderr", text=("UserWarning: FigureCanvasAgg is non-interactive, and thus cannot be shown\n")
    )
    assert lost_figures(_notebook(warning), "<html></html>")


def test_run_is_failed_when_figures_are_lost(tmp_path, monkeypatch):
    """run_notebook marks the run failed when its report lost the figures."""
    from cslab import audit

    def export_without_images(notebook, path, title):
        path.write_text("<html><p>no images</p></html>", encoding="utf-8")

    def execute(source, target, **kwargs):
        nbformat.write(_notebook(nbformat.v4.new_output("display_data", PNG)), target)

    import papermill

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    monkeypatch.setattr(audit.running, "export_html", export_without_images)
    (tmp_path / "executed").mkdir()
    run = audit.run_notebook(audit.NOTEBOOKS["01_cohort_retention"], {}, tmp_path, KERNEL_NAME, progress=False)
    assert run.status == "failed"
    assert "reached the report" in run.error


# --------------------------------------------------------------------------------------------
# CSV injection
# --------------------------------------------------------------------------------------------
def test_spreadsheet_safe_escapes_text_that_a_spreadsheet_would_run():
    frame = pd.DataFrame(
        {
            "name": EVIL_NAMES + ["\rReturn", "Acme", "-12.5", "+3", "1e-3", "-5%", None],
            "mrr": [-1.0, 2.0, -3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, -12.0],
            "segment": pd.Categorical(["=seg"] + ["SMB"] * 11),
            "plan": pd.array(["@plan"] + [pd.NA] * 11, dtype="string"),
        }
    )
    safe = spreadsheet_safe(frame)
    assert safe["name"].tolist() == [
        '\'=HYPERLINK("http://evil.example","open")',
        "'@SUM(1+1)",
        "'+1+1",
        "'-1+2",
        "'\tTabbed",
        "'\rReturn",
        "Acme",
        "-12.5",
        "+3",
        "1e-3",
        "'-5%",
        None,
    ]
    assert safe["mrr"].equals(frame["mrr"])  # numbers stay numbers, negative or not
    assert safe["segment"].tolist()[:2] == ["'=seg", "SMB"]
    assert safe["plan"].dtype == frame["plan"].dtype and safe["plan"][0] == "'@plan"
    assert frame["name"][0].startswith("=")  # the caller's frame is not changed


def test_spreadsheet_safe_escapes_labels_and_leaves_safe_tables_alone():
    frame = pd.DataFrame({"=cmd": [1], "ok": [2]}, index=pd.Index(["@x"], name="-id"))
    safe = spreadsheet_safe(frame)
    assert list(safe.columns) == ["'=cmd", "ok"]
    assert list(safe.index) == ["'@x"] and safe.index.name == "'-id"
    plain = pd.DataFrame({"month": pd.to_datetime(["2024-01-01"]), "mrr": [-5.0], "name": ["Acme"]})
    assert spreadsheet_safe(plain) is plain


def test_save_table_writes_formulas_as_text(tmp_path):
    frame = pd.DataFrame(
        {"name": EVIL_NAMES, "mrr": [-1.5, 2, 3, 4, 5]}, index=pd.Index(["=a", "b", "c", "d", "e"], name="@key")
    )
    save_table(frame, "names", str(tmp_path), index=True)
    rows = list(csv.reader((tmp_path / "names.csv").open(newline="", encoding="utf-8")))
    assert rows[0] == ["'@key", "name", "mrr"]
    assert rows[1] == ["'=a", '\'=HYPERLINK("http://evil.example","open")', "-1.5"]
    assert [row[1] for row in rows[2:]] == ["'@SUM(1+1)", "'+1+1", "'-1+2", "'\tTabbed"]


def _dangerous_cells(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            cell
            for row in csv.reader(handle)
            for cell in row
            if cell.startswith(FORMULA_START) and not PLAIN_NUMBER.match(cell)
        ]


def test_audit_tables_carry_no_formulas(tmp_path):
    # big enough for 02 to model the churn drivers (150 x 14 has too few churned accounts)
    folder = generate(n_accounts=600, n_months=24, seed=3).write(tmp_path / "data")
    accounts = pd.read_csv(folder / "accounts.csv", dtype=str, keep_default_na=False)
    accounts["name"] = [
        EVIL_NAMES[i % len(EVIL_NAMES)] + ("" if i < len(EVIL_NAMES) else f" {i}") for i in range(len(accounts))
    ]
    accounts.to_csv(folder / "accounts.csv", index=False)
    result = run_audit(
        folder,
        tmp_path / "out",
        only=["01_cohort_retention", "02_churn_drivers"],
        params={"shap_sample": 100},
        progress=False,
        echo=quiet,
    )
    assert result.runs["01_cohort_retention"].status == "ok", result.runs["01_cohort_retention"].error
    assert result.runs["02_churn_drivers"].status == "ok", result.runs["02_churn_drivers"].error
    tables = sorted((tmp_path / "out" / "tables").glob("*.csv"))
    names = {path.name for path in tables}
    assert "at_risk_accounts.csv" in names and "mrr_movements.csv" in names
    for path in tables:
        assert _dangerous_cells(path) == [], path.name
    at_risk = pd.read_csv(tmp_path / "out" / "tables" / "at_risk_accounts.csv", dtype=str, keep_default_na=False)
    # the names did reach the table, as text
    assert at_risk["name"].str.startswith("'=HYPERLINK(").any()
    assert at_risk["name"].str.startswith(("'@SUM", "'+1+1", "'-1+2")).any()
