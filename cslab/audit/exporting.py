"""Exporting: an executed notebook as a code-free HTML report for a client, and the check that its figures arrived."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import jinja2
import nbformat

from cslab.notebook import RESULTS_MIMETYPE

__all__ = ["export_html", "lost_figures", "TEMPLATES"]

#: The audit's page templates (package data). ``cslab_report.html.j2`` is the lab template without the
#: scripts it fetches from CDNs (require.js, MathJax, mermaid): the reports use none of them, an offline
#: reader's browser would log an error for each, and opening a client's report should not call out to a
#: third party. (No file here may be called ``index.html.j2``: it would hide nbconvert's own.)
TEMPLATES = Path(__file__).parent / "templates"


def _client_safe(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy fit for a client: no tracebacks, no papermill error banners, no recorded JSON.

    Cell ids are renumbered (papermill gives its injected cell a random one) so that a rerun
    gives the same report.
    """
    notebook = nbformat.from_dict(json.loads(json.dumps(notebook)))
    keep = []
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and "papermill-error-cell-tag" in cell.metadata.get("tags", []):
            continue
        if cell.cell_type == "code":
            outputs = []
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    if output.get("ename") != "NotebookSkipped":  # a skip has said why already
                        outputs.append(
                            nbformat.v4.new_output(
                                "stream",
                                name="stderr",
                                text=f"This step failed: {output.get('ename')}: {output.get('evalue')}\n",
                            )
                        )
                    continue
                output.get("data", {}).pop(RESULTS_MIMETYPE, None)
                outputs.append(output)
            cell.outputs = outputs
        keep.append(cell)
    for i, cell in enumerate(keep, 1):
        cell.id = f"cell-{i}"
    notebook.cells = keep
    return notebook


# pandas gives every Styler table a random five-digit id (``T_3fa1c``) used by its CSS selectors
_STYLER_ID = re.compile(r"\bT_([0-9a-f]{5})(?=[_\"'\s{,.:])")


def _stable_styler_ids(html: str) -> str:
    """Replace pandas' random Styler ids by ``T_s001``, ``T_s002``... in order of appearance."""
    seen: dict[str, str] = {}

    def rename(match: re.Match) -> str:
        return seen.setdefault(match.group(1), f"T_s{len(seen) + 1:03d}")

    return _STYLER_ID.sub(rename, html)


def export_html(notebook: nbformat.NotebookNode, path: Path, title: str) -> None:
    """Code-free HTML through nbconvert: inputs and prompts excluded, figures embedded.

    The page loads nothing from the network, and the same notebook gives the same bytes.
    """
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        template_file="cslab_report.html.j2",
        extra_loaders=[jinja2.FileSystemLoader(TEMPLATES)],
    )
    notebook = _client_safe(notebook)
    notebook.metadata["title"] = title
    body, _ = exporter.from_notebook_node(notebook)
    path.write_text(_stable_styler_ids(body), encoding="utf-8")


_FIGURE_TYPES = ("image/png", "image/svg+xml")
# matplotlib's repr of a Figure shown as text, i.e. drawn with a non-inline backend such as Agg
_FIGURE_REPR = re.compile(r"^<Figure size \d+(?:\.\d+)?x\d+(?:\.\d+)? with \d+ Axes>$")
_HTML_FIGURE = re.compile(r"<img\b|data-mime-type=\"image/svg\+xml\"")


def lost_figures(notebook: nbformat.NotebookNode, html: str) -> str | None:
    """Why the figures a notebook drew did not reach its HTML report, or ``None`` when they did.

    Two signs: the executed notebook holds more figure outputs (PNG or SVG) than the HTML holds
    images; or an output shows a matplotlib ``<Figure size 640x480 with 1 Axes>`` as text with no
    image beside it (or matplotlib said it cannot show a figure), which is what a non-inline backend
    such as ``MPLBACKEND=Agg`` leaves behind.

    Examples
    --------
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("fig", outputs=[
    ...     nbformat.v4.new_output("display_data", {"image/png": "iVBORw0KGgo="})])])
    >>> lost_figures(nb, "<html><img src='data:image/png;base64,iVBORw0KGgo='></html>") is None
    True
    >>> lost_figures(nb, "<html></html>")[:31]
    'figures were drawn but none (of'
    """
    drawn, as_text = 0, 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = output.get("data", {})
            if any(kind in data for kind in _FIGURE_TYPES):
                # nbconvert shows HTML or Markdown in preference to an image in the same output
                drawn += not ("text/html" in data or "text/markdown" in data)
            elif _FIGURE_REPR.match(str(data.get("text/plain", "")).strip()) or (
                "and thus cannot be shown" in str(output.get("text", ""))
            ):
                as_text += 1
    shown = len(_HTML_FIGURE.findall(html))
    backend = os.environ.get("MPLBACKEND")
    hint = f" (MPLBACKEND={backend}?)" if backend else " (matplotlib backend not inline?)"
    if drawn > shown:
        if shown:
            return f"{drawn - shown} of {drawn} figures drawn did not reach the report{hint}"
        return f"figures were drawn but none (of {drawn}) reached the report{hint}"
    if as_text and not drawn:
        return f"figures were drawn but none reached the report: {as_text} shown as text, not as images{hint}"
    return None
