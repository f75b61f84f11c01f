"""The figures package: every figure importable from cslab.plots, features labelled by one function."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cslab import plots  # noqa: E402
from cslab.features import label_of  # noqa: E402

FEATURES = ["usage_features_used", "csat_90d", "cs_qbr_count", "months_to_renewal"]


def test_every_figure_is_importable_from_cslab_plots():
    names = [n for n in plots.__all__ if n.startswith("plot_")]
    assert len(names) == 22 and all(callable(getattr(plots, n)) for n in names)
    assert callable(plots.set_theme) and "churn" in plots.MOVEMENT_COLORS


def test_shap_bar_chart_and_beeswarm_label_features_alike():
    rng = np.random.default_rng(0)
    shap_values = pd.DataFrame(rng.normal(size=(40, 4)), columns=FEATURES)
    rows = pd.DataFrame(rng.normal(size=(40, 4)), columns=FEATURES)
    importance = shap_values.abs().mean().sort_values(ascending=False)
    _, (left, right) = plt.subplots(1, 2)
    plots.plot_importance(importance, ax=left)
    plots.plot_shap_beeswarm(shap_values, rows, ax=right)
    bar = {t.get_text() for t in left.get_yticklabels()}
    swarm = {t.get_text() for t in right.get_yticklabels()}
    assert bar == swarm == {label_of(f) for f in FEATURES}
    assert {"features used", "CSAT (90 days)", "qbr sessions", "months to renewal"} == bar
    plt.close("all")


def test_dependence_and_deciles_name_the_feature_in_words():
    rng = np.random.default_rng(1)
    shap_values = pd.DataFrame({"csat_90d": rng.normal(size=20)})
    rows = pd.DataFrame({"csat_90d": rng.normal(size=20)})
    ax = plots.plot_dependence(shap_values, rows, "csat_90d")
    assert ax.get_xlabel() == "CSAT (90 days)" and ax.get_title() == "CSAT (90 days)"
    plt.close("all")
