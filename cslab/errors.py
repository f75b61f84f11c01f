"""The package's own error and warning types."""

from __future__ import annotations

__all__ = ["CSLabError", "DataValidationError", "NotebookSkipped", "StatisticalWarning"]


class CSLabError(Exception):
    """Base class of every error cslab raises on purpose."""


class DataValidationError(CSLabError):
    """A data folder breaks the data contract.

    ``report`` holds the :class:`~cslab.data.validation.ValidationReport` listing every problem.
    """

    def __init__(self, report):
        self.report = report
        super().__init__(report.format())


class NotebookSkipped(CSLabError):
    """A notebook stops on purpose: the data cannot answer its question (the message says why).

    The audit reports the notebook as *skipped* with the message, not as failed.
    """


class StatisticalWarning(UserWarning):
    """An estimate rests on too little data (small samples, few events) to be trusted."""
