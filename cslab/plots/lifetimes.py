"""Figures of customer lifetimes: survival curves, the sBG projection, lifetime value."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.ticker as mticker
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

from cslab.plots.theme import MOVEMENT_COLORS, _ax

__all__ = ["plot_survival", "plot_sbg_projection", "plot_lifetime_value"]


def plot_survival(
    fitters: Mapping[str, Any],
    ax: Axes | None = None,
    ci: bool = True,
    marks: tuple[int, ...] = (12, 24),
    title: str | None = None,
    xlabel: str = "months since first payment",
    **kwargs: Any,
) -> Axes:
    """Kaplan–Meier survival curves with confidence bands, one per group.

    Parameters
    ----------
    fitters : mapping
        Group name -> fitted ``lifelines.KaplanMeierFitter`` (:func:`cslab.survival.kaplan_meier`).
    marks : tuple of int
        Vertical guides at these durations (e.g. 12 and 24 months).
    """
    ax = _ax(ax, (9, 4.5))
    for name, fitter in fitters.items():
        fitter.plot_survival_function(ax=ax, ci_show=ci, label=str(name), **kwargs)
    longest = max(float(f.durations.max()) for f in fitters.values())
    for mark in marks:
        if mark <= longest:  # a guide beyond the data would stretch the axis for nothing
            ax.axvline(mark, color="#888888", linewidth=0.8, linestyle=":")
    ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0, decimals=0))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share still active")
    ax.set_title(title or "Customer survival (Kaplan–Meier, 95% bands)")
    ax.legend(fontsize=9)
    return ax


def plot_sbg_projection(
    projection: pd.DataFrame,
    ax: Axes | None = None,
    title: str | None = None,
    fit_periods: int | None = None,
    period_label: str = "periods since signup",
    **kwargs: Any,
) -> Axes:
    """Actual survival against the shifted-beta-geometric fit and its projection, per cohort.

    Parameters
    ----------
    projection : DataFrame
        Long table with ``cohort``, ``period``, ``actual`` (NaN where not observed) and ``fitted``
        (model survival, extending into the projection horizon).
    fit_periods : int, optional
        Periods used for fitting; later observed periods are the held-out tail and are shaded.
    """
    ax = _ax(ax, (9, 4.5))
    palette = sns.color_palette("colorblind", projection["cohort"].nunique())
    for color, (cohort, group) in zip(palette, projection.groupby("cohort", sort=True)):
        ax.plot(group["period"], group["fitted"], color=color, linestyle="--", linewidth=1.3, **kwargs)
        ax.plot(
            group["period"], group["actual"], color=color, marker="o", markersize=3.5, linewidth=1.2, label=str(cohort)
        )
    if fit_periods is not None:
        ax.axvspan(fit_periods, projection["period"].max(), color="#eeeeee", zorder=0)
        ax.text(fit_periods + 0.2, 0.04, "held-out / projected", fontsize=9, color="#555555")
    ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0, decimals=0))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(period_label)
    ax.set_ylabel("share still active")
    ax.set_title(title or "sBG: actual (dots) vs fitted and projected (dashed)")
    ax.legend(title="cohort", fontsize=8, ncol=2)
    return ax


def plot_lifetime_value(
    values: pd.DataFrame,
    x: str = "cohort",
    y: str = "clv",
    ax: Axes | None = None,
    currency: str = "",
    title: str | None = None,
    **kwargs: Any,
) -> Axes:
    """Customer lifetime value per cohort (or segment) as bars."""
    ax = _ax(ax, (9, 4))
    sns.barplot(data=values, x=x, y=y, ax=ax, color=MOVEMENT_COLORS["end"], **kwargs)
    ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_ylabel(f"lifetime value ({currency})" if currency else "lifetime value")
    ax.set_xlabel("")
    ax.tick_params(axis="x", rotation=45, labelsize=8)
    ax.set_title(title or "Customer lifetime value")
    return ax
