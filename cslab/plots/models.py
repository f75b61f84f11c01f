"""Figures of the churn and expansion models: deciles, calibration, SHAP importance and beeswarm, dependence,
health bands; every feature named by :func:`cslab.features.label_of`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from cslab.features import label_of
from cslab.plots.theme import MOVEMENT_COLORS, _ax

__all__ = [
    "plot_churn_by_decile",
    "plot_calibration",
    "plot_importance",
    "plot_shap_beeswarm",
    "plot_dependence",
    "plot_health_bands",
]


def plot_churn_by_decile(
    table: pd.DataFrame, ax: Axes | None = None, base_rate: float | None = None, title: str | None = None, **kwargs: Any
) -> Axes:
    """Churn rate by decile of one feature, each bar labelled with its count (metric cohorts).

    Parameters
    ----------
    table : DataFrame
        :func:`cslab.features.churn_by_decile`: the feature's bins, ``churn_rate`` and ``n``.
    """
    ax = _ax(ax, (5, 3.2))
    feature = table.columns[0]
    x = np.arange(len(table))
    ax.bar(x, table["churn_rate"], color=MOVEMENT_COLORS["churn"], width=0.75, **kwargs)
    for i, (rate, n) in enumerate(zip(table["churn_rate"], table["n"])):
        ax.text(i, rate, f"{n:,}", ha="center", va="bottom", fontsize=6.5, color="#555555")
    if base_rate is not None:
        ax.axhline(base_rate, color="#444444", linestyle="--", linewidth=0.8)
    labels = ["missing" if b == "missing" else f"D{i + 1}" for i, b in enumerate(table[feature])]
    ax.set_xticks(x, labels, fontsize=7.5)
    ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0, decimals=0))
    ax.set_xlabel(f"deciles of {label_of(feature)} (low to high)", fontsize=9)
    ax.set_ylabel("churn rate")
    ax.set_title(title or label_of(feature), fontsize=10)
    return ax


def plot_calibration(
    curves: Mapping[str, pd.DataFrame],
    ax: Axes | None = None,
    title: str | None = None,
    event: str = "churn",
    **kwargs: Any,
) -> Axes:
    """Calibration curves (observed vs predicted rate of the ``event`` per bin), one per model."""
    ax = _ax(ax, (5, 4.5))
    top = 0.0
    for name, curve in curves.items():
        ax.plot(curve["predicted"], curve["observed"], marker="o", markersize=4, label=name, **kwargs)
        top = max(top, curve["predicted"].max(), curve["observed"].max())
    ax.plot([0, top], [0, top], color="#444444", linestyle="--", linewidth=0.8, label="perfect")
    ax.xaxis.set_major_formatter(mticker.PercentFormatter(1.0, decimals=0))
    ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0, decimals=0))
    ax.set_xlabel(f"predicted {event} probability (bin mean)")
    ax.set_ylabel(f"observed {event} rate")
    ax.set_title(title or "Calibration on the test period")
    ax.legend(fontsize=9)
    return ax


def plot_importance(
    importance: pd.Series,
    ax: Axes | None = None,
    top: int = 15,
    title: str | None = None,
    xlabel: str = "mean |SHAP value| (log-odds)",
    **kwargs: Any,
) -> Axes:
    """Horizontal bars of feature importance, most important on top."""
    shown = importance.head(top)[::-1]
    ax = _ax(ax, (8, 0.35 * len(shown) + 1.2))
    ax.barh([label_of(str(i)) for i in shown.index], shown.to_numpy(), color=MOVEMENT_COLORS["end"], **kwargs)
    ax.set_xlabel(xlabel)
    ax.set_title(title or "What drives churn (SHAP)")
    return ax


def plot_shap_beeswarm(
    shap_values: pd.DataFrame,
    rows: pd.DataFrame,
    ax: Axes | None = None,
    top: int = 12,
    title: str | None = None,
    seed: int = 0,
    event: str = "churn risk",
    **kwargs: Any,
) -> Axes:
    """One dot per account and feature: its SHAP value, coloured by the feature's value (low to high).

    Categorical features are drawn in grey (their levels have no order).
    """
    order = shap_values.abs().mean().sort_values(ascending=False).index[:top]
    ax = _ax(ax, (9, 0.42 * len(order) + 1.5))
    rng = np.random.default_rng(seed)
    cmap = plt.get_cmap("coolwarm")
    for i, feature in enumerate(order[::-1]):
        values = shap_values[feature].to_numpy()
        y = i + rng.uniform(-0.3, 0.3, len(values))
        raw = rows.loc[shap_values.index, feature] if feature in rows else pd.Series(np.nan, index=shap_values.index)
        if pd.api.types.is_numeric_dtype(raw):
            ranks = raw.rank(pct=True).to_numpy()
            colors = np.where(np.isnan(ranks)[:, None], np.array([[0.6, 0.6, 0.6, 1.0]]), cmap(np.nan_to_num(ranks)))
        else:
            colors = np.tile([0.55, 0.55, 0.55, 1.0], (len(values), 1))
        ax.scatter(values, y, c=colors, s=6, alpha=0.7, linewidths=0, **kwargs)
    ax.axvline(0, color="#444444", linewidth=0.8)
    ax.set_yticks(range(len(order)), [label_of(str(f)) for f in order[::-1]])
    ax.set_xlabel(f"SHAP value (raises {event} →)")
    mappable = plt.cm.ScalarMappable(cmap=cmap)
    bar = ax.figure.colorbar(mappable, ax=ax, shrink=0.6, pad=0.02)
    bar.set_ticks([0, 1], labels=["low", "high"])
    bar.set_label("feature value", fontsize=9)
    ax.set_title(title or "How each feature moves churn risk, account by account")
    return ax


def plot_dependence(
    shap_values: pd.DataFrame,
    rows: pd.DataFrame,
    feature: str,
    ax: Axes | None = None,
    title: str | None = None,
    **kwargs: Any,
) -> Axes:
    """SHAP value of one feature against its value: the shape of its effect."""
    ax = _ax(ax, (5, 3.5))
    ax.scatter(
        rows.loc[shap_values.index, feature],
        shap_values[feature],
        s=8,
        alpha=0.5,
        color=MOVEMENT_COLORS["end"],
        linewidths=0,
        **kwargs,
    )
    ax.axhline(0, color="#444444", linewidth=0.8)
    ax.set_xlabel(label_of(feature))
    ax.set_ylabel("SHAP value")
    ax.set_title(title or label_of(feature), fontsize=10)
    return ax


def plot_health_bands(summary: pd.DataFrame, ax: Axes | None = None, title: str | None = None, **kwargs: Any) -> Axes:
    """Share of accounts and of ARR in each health band."""
    ax = _ax(ax, (7, 3))
    colors = {"red": "#d62828", "yellow": "#f4a261", "green": "#2a9d8f"}
    bands = [b for b in ("red", "yellow", "green") if b in summary.index]
    columns = ["share_accounts"] + (["share_arr"] if summary["share_arr"].notna().any() else [])
    for row, column in enumerate(columns):
        left = 0.0
        for band in bands:
            width = float(summary.loc[band, column])
            ax.barh(row, width, left=left, color=colors[band], **kwargs)
            if width > 0.1:  # narrower bars: the table below gives the number
                ax.text(
                    left + width / 2,
                    row,
                    f"{band} {width:.0%}",
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if band != "yellow" else "#222222",
                )
            left += width
    ax.set_yticks(range(len(columns)), ["accounts", "ARR"][: len(columns)])
    ax.xaxis.set_major_formatter(mticker.PercentFormatter(1.0, decimals=0))
    ax.set_xlim(0, 1)
    ax.set_title(
        title
        or ("Health bands: share of accounts and of ARR" if len(columns) > 1 else "Health bands: share of accounts")
    )
    return ax


# ------------------------------------------------------------------------------------------------
# Customer-success ROI
# ------------------------------------------------------------------------------------------------
