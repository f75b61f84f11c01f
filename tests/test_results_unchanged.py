"""Behaviour unchanged: every result the audit records on a small generated book equals a stored copy.

A refactoring (issue 13: notebooks that only narrate, modules split along their seams) must not move a
single recorded figure. ``tests/data/small_book_results.json`` holds the results of the session's audit
(:data:`tests.conftest.AUDIT_BOOK`, :data:`tests.conftest.AUDIT_PARAMS`) as recorded before the
refactoring; numbers are compared to 1e-6 relative (floating-point sums may differ in the last digits
between machines), everything else exactly. A deliberate change of a result regenerates the copy:

    .venv/bin/python -m tests.test_results_unchanged   # rewrites tests/data/small_book_results.json
"""

from __future__ import annotations

import json
import math
from pathlib import Path

STORED = Path(__file__).parent / "data" / "small_book_results.json"


def recorded(out: Path) -> dict:
    """Notebook -> its recorded results (status and error included) from an audit folder."""
    notebooks = json.loads((out / "results.json").read_text())["notebooks"]
    return {name: {"status": nb["status"], "results": nb["results"]} for name, nb in sorted(notebooks.items())}


def differences(got, want, path="") -> list[str]:
    """Where two recorded structures differ, one line each (numbers to 1e-6 relative)."""
    if isinstance(want, dict) and isinstance(got, dict):
        out = [f"{path}/{k}: missing" for k in want if k not in got]
        out += [f"{path}/{k}: not in the stored copy" for k in got if k not in want]
        for k in want:
            if k in got:
                out += differences(got[k], want[k], f"{path}/{k}")
        return out
    if isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            return [f"{path}: {len(got)} items, stored {len(want)}"]
        return [d for i, (g, w) in enumerate(zip(got, want)) for d in differences(g, w, f"{path}[{i}]")]
    numbers = (int, float)
    if isinstance(want, numbers) and isinstance(got, numbers) and not isinstance(want, bool):
        if math.isnan(want) and math.isnan(got) or math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9):
            return []
        return [f"{path}: {got!r}, stored {want!r}"]
    return [] if got == want else [f"{path}: {got!r}, stored {want!r}"]


def test_recorded_results_equal_the_stored_copy(audited_book):
    _, result, out = audited_book
    assert result.exit_code == 0
    found = differences(recorded(out), json.loads(STORED.read_text()))
    assert not found, "\n".join(found[:40])


if __name__ == "__main__":
    import tempfile

    from cslab.audit import run_audit
    from cslab.data.synth import generate
    from tests.conftest import AUDIT_BOOK, AUDIT_PARAMS

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "book"
        generate(**AUDIT_BOOK).write(folder)
        run_audit(folder, Path(tmp) / "out", client="Test Co", params=AUDIT_PARAMS, progress=False, echo=lambda _: None)
        STORED.parent.mkdir(exist_ok=True)
        STORED.write_text(json.dumps(recorded(Path(tmp) / "out"), indent=1, sort_keys=True) + "\n")
        print(f"wrote {STORED}")
