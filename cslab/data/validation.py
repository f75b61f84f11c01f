"""Validation reports: every problem of every file at once, one line each."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

__all__ = ["Problem", "ValidationReport", "MAX_EXAMPLES", "shown"]

MAX_EXAMPLES = 5
Severity = Literal["error", "warning", "fixed"]


def shown(value: object, width: int = 40) -> str:
    """A cell value fit for a one-line message: control characters escaped, long values cut.

    Examples
    --------
    >>> shown("A\\n1"), shown("x" * 50, width=10)
    ('A\\\\n1', 'xxxxxxx...')
    """
    text = str(value)
    if not text.isprintable():
        text = repr(text)[1:-1]
    return text if len(text) <= width else text[: width - 3] + "..."


@dataclass(frozen=True)
class Problem:
    """One problem found in one column of one file.

    ``lines`` are line numbers in the file as a spreadsheet shows them (the header is line 1).
    """

    file: str
    message: str
    column: str | None = None
    n_rows: int | None = None
    lines: tuple[int, ...] = ()
    severity: Severity = "error"

    def format(self) -> str:
        """The problem as one line: file, column, how many rows, a few example lines.

        Examples
        --------
        >>> Problem("subscriptions.csv", "negative", "mrr", 3, (4, 9, 12)).format()
        'error: subscriptions.csv: column mrr: negative in 3 rows (lines 4, 9, 12)'
        """
        where = f"{self.file}: column {self.column}: " if self.column else f"{self.file}: "
        text = f"{self.severity}: {where}{self.message}"
        if self.n_rows is not None:
            text += f" in {self.n_rows:,} row{'s' if self.n_rows != 1 else ''}"
        if self.lines:
            shown = ", ".join(str(n) for n in self.lines[:MAX_EXAMPLES])
            text += f" (line{'s' if len(self.lines) > 1 else ''} {shown}"
            text += ", ...)" if self.n_rows and self.n_rows > len(self.lines[:MAX_EXAMPLES]) else ")"
        return text


@dataclass
class ValidationReport:
    """Everything found while reading a data folder: errors, warnings and the fixes made."""

    source: str
    problems: list[Problem] = field(default_factory=list)

    def add(
        self,
        file: str,
        message: str,
        column: str | None = None,
        rows: Iterable | None = None,
        severity: Severity = "error",
        n_rows: int | None = None,
    ) -> None:
        """Record a problem; ``rows`` are 0-based data-row positions, turned into file lines."""
        lines: tuple[int, ...] = ()
        if rows is not None:
            positions = sorted({int(r) for r in rows})
            n_rows = len(positions) if n_rows is None else n_rows
            lines = tuple(p + 2 for p in positions[:MAX_EXAMPLES])  # header is line 1
        self.problems.append(Problem(file, message, column, n_rows, lines, severity))

    def extend(self, other: ValidationReport) -> None:
        self.problems.extend(other.problems)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity != "error"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings and fixes are fine)."""
        return not self.errors

    def format(self) -> str:
        """Errors first, then warnings and fixes, one line each."""
        ordered = self.errors + self.warnings
        return "\n".join(p.format() for p in ordered)

    def to_frame(self) -> pd.DataFrame:
        """The problems as a table (one row each), for notebooks."""
        return pd.DataFrame(
            [p.__dict__ for p in self.problems], columns=["file", "column", "message", "n_rows", "lines", "severity"]
        )
