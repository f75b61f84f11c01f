"""Figures of expansion: NRR components, seat utilisation, adoption, the pipeline by health band."""

from __future__ import annotations

from typing import Any

import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

from cslab.plots.theme import MOVEMENT_COLORS, _ax, _money_axis

__all__ = ["plot_nrr_components", "plot_utilisation", "plot_adoption", "plot_pipeline_by_band"]


def plot_nrr_components(parts: pd.DataFrame, ax: Axes | None = None, title: str | None = None, **kwargs: Any) -> Axes:
    """NRR at each month as 100% plus stacked gains (above 0) and losses (below 0), NRR − 100% as a line.

    Parameters
    ----------
    parts : DataFrame
        :func:`cslab.expansion.nrr_components` without ``by``: ``month``, ``nrr`` and the four rates.
    """
    ax = _ax(ax, (10, 4.2))
    x = parts["month"]
    width = 20  # days: one bar a month
    up = np.zeros(len(parts))
    for column, color, label in (
        ("expansion_rate", MOVEMENT_COLORS["expansion"], "expansion"),
        ("reactivation_rate", MOVEMENT_COLORS["reactivation"], "reactivation"),
    ):
        ax.bar(x, parts[column], width, bottom=up, color=color, label=label, **kwargs)
        up += parts[column].to_numpy()
    down = np.zeros(len(parts))
    for column, color, label in (
        ("contraction_rate", MOVEMENT_COLORS["contraction"], "contraction"),
        ("churn_rate", MOVEMENT_COLORS["churn"], "churn"),
    ):
        ax.bar(x, -parts[column], width, bottom=-down, color=color, label=label, **kwargs)
        down += parts[column].to_numpy()
    ax.plot(x, parts["nrr"] - 1, color="#222222", marker="o", markersize=3, label="NRR − 100%")
    ax.axhline(0, color="#444444", linewidth=0.8)
    ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0, decimals=0))
    ax.set_ylabel("share of starting MRR (trailing 12 months)")
    ax.set_title(title or "Where NRR comes from: gains above the line, losses below")
    ax.legend(fontsize=9, ncol=5, loc="lower left")
    return ax


def plot_utilisation(
    accounts: pd.DataFrame,
    ax: Axes | None = None,
    by: str | None = "segment",
    threshold: float = 0.9,
    title: str | None = None,
    **kwargs: Any,
) -> Axes:
    """Distribution of seat utilisation (active users / seats), per group, with the capacity line.

    Parameters
    ----------
    accounts : DataFrame
        :func:`cslab.expansion.at_capacity`: ``seat_utilisation`` (and ``by``).
    """
    ax = _ax(ax, (8, 3.8))
    frame = accounts.dropna(subset=["seat_utilisation"])
    top = max(1.2, float(frame["seat_utilisation"].quantile(0.99)))
    bins = np.linspace(0, top, 31)
    groups = frame.groupby(by) if by and by in frame else [("all accounts", frame)]
    for name, group in groups:
        ax.hist(
            group["seat_utilisation"].clip(upper=top),
            bins=bins,
            histtype="step",
            linewidth=1.8,
            label=f"{name} ({len(group):,})",
            **kwargs,
        )
    ax.axvline(threshold, color="#d62828", linestyle="--", linewidth=1, label=f"capacity ({threshold:.0%})")
    ax.xaxis.set_major_formatter(mticker.PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("seat utilisation (active users / seats)")
    ax.set_ylabel("accounts")
    ax.set_title(title or "Seat utilisation of active accounts")
    ax.legend(fontsize=9)
    return ax


def plot_adoption(adoption: pd.DataFrame, ax: Axes | None = None, title: str | None = None, **kwargs: Any) -> Axes:
    """Heatmap of product adoption: groups as rows, products as columns, share of accounts in cells."""
    ax = _ax(ax, (1.1 * adoption.shape[1] + 3, 0.5 * adoption.shape[0] + 1.5))
    sns.heatmap(
        adoption, annot=True, fmt=".0%", cmap="Greens", vmin=0, vmax=1, cbar=False, ax=ax, linewidths=0.5, **kwargs
    )
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.tick_params(axis="x", rotation=0)
    ax.set_title(title or "Share of active accounts running each product")
    return ax


def plot_pipeline_by_band(
    pipeline: pd.DataFrame, ax: Axes | None = None, currency: str = "", title: str | None = None, **kwargs: Any
) -> Axes:
    """Expected expansion ARR by health band (horizontal bars), with the number of accounts.

    Parameters
    ----------
    pipeline : DataFrame
        Index band (red, yellow, green); ``expected_expansion_arr`` and ``accounts``.
    """
    colors = {"red": "#d62828", "yellow": "#f4a261", "green": "#2a9d8f"}
    bands = [b for b in ("green", "yellow", "red") if b in pipeline.index]
    ax = _ax(ax, (7, 2.6))
    values = pipeline.loc[bands, "expected_expansion_arr"]
    ax.barh(bands, values, color=[colors[b] for b in bands], **kwargs)
    for k, band in enumerate(bands):
        ax.text(values[band], k, f"  {int(pipeline.loc[band, 'accounts']):,} accounts", va="center", fontsize=9)
    _money_axis(ax.xaxis, currency)
    ax.xaxis.set_label_text(f"expected expansion ARR ({currency})" if currency else "expected expansion ARR")
    ax.set_xlim(0, float(values.max()) * 1.3 if len(values) and values.max() > 0 else 1)
    ax.set_title(title or "Expected expansion ARR by health band")
    return ax
