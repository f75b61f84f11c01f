"""Every figure of the kit: ``plot_*(..., ax=None, **kwargs) -> Axes``, one seaborn theme.

Plots draw what the analyses computed; they never compute statistics and never call
``plt.show()`` or ``savefig``. Call :func:`set_theme` once in a notebook (importing this module
changes no global state).

One module per subject: :mod:`~cslab.plots.theme` (the theme, colours, shared helpers),
:mod:`~cslab.plots.revenue`, :mod:`~cslab.plots.lifetimes`, :mod:`~cslab.plots.models`,
:mod:`~cslab.plots.programmes` and :mod:`~cslab.plots.expansion`; every figure is importable from
``cslab.plots``. Features are named in plain words by one function, :func:`cslab.features.label_of`.
"""

from __future__ import annotations

from cslab.plots.expansion import plot_adoption, plot_nrr_components, plot_pipeline_by_band, plot_utilisation
from cslab.plots.lifetimes import plot_lifetime_value, plot_sbg_projection, plot_survival
from cslab.plots.models import (
    plot_calibration,
    plot_churn_by_decile,
    plot_dependence,
    plot_health_bands,
    plot_importance,
    plot_shap_beeswarm,
)
from cslab.plots.programmes import (
    plot_adjusted_survival,
    plot_balance,
    plot_hazard_ratios,
    plot_programme_value,
    plot_propensity_overlap,
)
from cslab.plots.revenue import plot_cohort_heatmap, plot_mrr_bridge, plot_mrr_movements, plot_retention_over_time
from cslab.plots.theme import MOVEMENT_COLORS, set_theme

__all__ = [
    "set_theme",
    "MOVEMENT_COLORS",
    "plot_mrr_bridge",
    "plot_mrr_movements",
    "plot_retention_over_time",
    "plot_cohort_heatmap",
    "plot_survival",
    "plot_sbg_projection",
    "plot_lifetime_value",
    "plot_churn_by_decile",
    "plot_calibration",
    "plot_importance",
    "plot_shap_beeswarm",
    "plot_dependence",
    "plot_health_bands",
    "plot_propensity_overlap",
    "plot_balance",
    "plot_hazard_ratios",
    "plot_adjusted_survival",
    "plot_programme_value",
    "plot_nrr_components",
    "plot_utilisation",
    "plot_adoption",
    "plot_pipeline_by_band",
]
