"""The notebooks of the audit (their questions, needs and headline keys) and what a run gives back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cslab.errors import CSLabError

__all__ = ["NotebookSpec", "NOTEBOOKS", "AuditError", "NotebookRun", "AuditResult"]


@dataclass(frozen=True)
class NotebookSpec:
    """A notebook of the audit: its question, what data it needs, its headline figures (registry keys)."""

    name: str
    title: str
    question: str
    snapshot: bool = False  # can it run from a one-row-per-customer table?
    #: recorded keys shown on the index page, in order; their label, kind and meaning come from
    #: :mod:`cslab.results`
    headlines: tuple[str, ...] = ()
    #: tables it cannot run without, each with what it is needed for
    requires: tuple[tuple[str, str], ...] = ()


NOTEBOOKS: dict[str, NotebookSpec] = {
    spec.name: spec
    for spec in [
        NotebookSpec(
            "01_cohort_retention",
            "Cohort retention",
            "How well do we keep customers and revenue, cohort by cohort, and where is it heading?",
            snapshot=True,
            headlines=(
                "nrr_12m",
                "grr_12m",
                "logo_churn_annual",
                "km_survival_12",
                "median_lifetime_months",
                "mrr_end",
                "n_active",
            ),
        ),
        NotebookSpec(
            "02_churn_drivers",
            "Churn drivers",
            "Why do customers leave, which accounts are at risk now, and why each one?",
            snapshot=True,
            headlines=("auc", "top_decile_lift", "top_features", "n_at_risk_red", "arr_at_risk"),
        ),
        NotebookSpec(
            "03_cs_roi",
            "Customer-success ROI",
            "Which CS programmes really reduce churn or drive expansion, and does customer success pay for itself?",
            requires=(
                (
                    "cs_activities",
                    "the dated CS activities (account_id, date, activity_type) say who "
                    "received which programme and when",
                ),
            ),
            headlines=(
                "roi",
                "attributable_value",
                "cs_cost_share_of_revenue",
                "hr_outcome_achieved",
                "ro_attainment_rate",
                "cs_efficiency_ratio",
            ),
        ),
        NotebookSpec(
            "04_expansion_opportunity",
            "Expansion opportunity",
            "Who is ready to expand, how much is it worth, and what should the CSMs do first?",
            headlines=(
                "nrr_12m",
                "expansion_rate_12m",
                "churn_rate_12m",
                "expansion_auc",
                "top_expansion_drivers",
                "pipeline_expected_arr_healthy",
                "n_opportunities",
                "share_at_capacity",
            ),
        ),
    ]
}


class AuditError(CSLabError):
    """The audit cannot start (bad parameters, existing output folder); nothing was written."""


@dataclass
class NotebookRun:
    name: str
    status: str = "skipped"
    error: str | None = None
    seconds: float = 0.0
    results: dict[str, Any] = field(default_factory=dict)
    executed: str | None = None
    report: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "error": self.error,
            "seconds": round(self.seconds, 2),
            "results": self.results,
            "executed": self.executed,
            "report": self.report,
        }


@dataclass
class AuditResult:
    out: Path
    runs: dict[str, NotebookRun]

    @property
    def exit_code(self) -> int:
        """0 when every notebook is ok or skipped, 1 when any failed."""
        return 1 if any(r.status == "failed" for r in self.runs.values()) else 0
