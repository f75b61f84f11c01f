"""Notebook 04 reuses the churn model notebook 02 leaves in the audit's working folder, and works alone."""

from __future__ import annotations

import papermill as pm

from cslab import config
from cslab.data.synth import generate
from cslab.notebook import RESULTS_MIMETYPE


def _run(name: str, out, kernel: str, **parameters) -> tuple[dict, str]:
    """(recorded results, every Markdown text shown) of one notebook run."""
    executed = out / f"{name}.ipynb"
    nb = pm.execute_notebook(
        str(config.NOTEBOOKS_DIR / f"{name}.ipynb"),
        str(executed),
        parameters=parameters,
        kernel_name=kernel,
        progress_bar=False,
        cwd=str(config.NOTEBOOKS_DIR),
        log_output=False,
    )
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    results = next(o["data"][RESULTS_MIMETYPE] for o in outputs if RESULTS_MIMETYPE in o.get("data", {}))
    text = "\n".join(o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {}))
    return results, text


def test_expansion_reuses_the_churn_model_of_the_churn_report(tmp_path):
    from cslab.audit import current_kernel

    book = tmp_path / "book"
    generate(n_accounts=700, n_months=30, seed=21).write(book)
    work = tmp_path / "work"
    common = {"data_dir": str(book), "tables_dir": str(tmp_path / "tables"), "shap_sample": 100}
    with current_kernel() as kernel:
        alone, alone_text = _run("04_expansion_opportunity", tmp_path, kernel, **common)
        _run("02_churn_drivers", tmp_path, kernel, **common, cox_sample=2000, work_dir=str(work))
        assert (work / "churn_model.joblib").exists()
        shared, shared_text = _run("04_expansion_opportunity", tmp_path, kernel, **common, work_dir=str(work))
    assert "reused from this audit's working folder" in shared_text
    assert "reused" not in alone_text and "refitted" not in alone_text
    assert shared == alone  # same recorded results (a model of another design is refitted: test_expansion_report)
