"""Figures of CS programme effects: propensity overlap, balance, hazard ratios, adjusted survival, the value of
the work."""

from __future__ import annotations

from typing import Any

import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from cslab.features import label_of
from cslab.plots.theme import _ax, _money_axis

__all__ = [
    "plot_propensity_overlap",
    "plot_balance",
    "plot_hazard_ratios",
    "plot_adjusted_survival",
    "plot_programme_value",
]


def plot_propensity_overlap(
    decisions: pd.DataFrame, ax: Axes | None = None, title: str | None = None, **kwargs: Any
) -> Axes:
    """Distributions of the propensity score of the months a programme started and of the others.

    Parameters
    ----------
    decisions : DataFrame
        ``started`` (0/1) and ``p``, as in ``programme_effect(...)["decisions"]``.
    """
    ax = _ax(ax, (6, 3.2))
    bins = np.linspace(0, max(float(decisions["p"].max()), 0.05), 31)
    for flag, name, color in ((0, "not started", "#8d99ae"), (1, "started", "#e76f51")):
        values = decisions.loc[decisions["started"] == flag, "p"]
        ax.hist(values, bins=bins, density=True, alpha=0.55, color=color, label=f"{name} ({len(values):,})", **kwargs)
    ax.set_xlabel("propensity: estimated chance of starting that month")
    ax.set_ylabel("density")
    ax.set_title(title or "Overlap of propensity scores")
    ax.legend(fontsize=9)
    return ax


def plot_balance(
    balance: pd.DataFrame,
    ax: Axes | None = None,
    threshold: float = 0.1,
    top: int = 15,
    title: str | None = None,
    **kwargs: Any,
) -> Axes:
    """Love plot: absolute standardised mean differences before and after weighting.

    Parameters
    ----------
    balance : DataFrame
        Columns ``before`` and ``after``, one row per signal (``programme_effect(...)["balance"]``).
    threshold : float
        The usual mark of balance, drawn as a dashed line.
    """
    shown = balance.abs().sort_values("before", ascending=True).tail(top)
    ax = _ax(ax, (6, 0.3 * len(shown) + 1.2))
    y = np.arange(len(shown))
    ax.scatter(shown["before"], y, color="#e76f51", label="before weighting", zorder=3, **kwargs)
    ax.scatter(shown["after"], y, color="#2a9d8f", label="after weighting", zorder=3, **kwargs)
    ax.axvline(threshold, color="#555555", linestyle="--", linewidth=0.9)

    def name_of(column: str) -> str:
        if "=" in column:
            return f"{label_of(column.split('=')[0])}: {column.split('=', 1)[1]}"
        if column.endswith("_missing"):
            return f"{label_of(column[: -len('_missing')])} missing"
        return {"has_csm": "has a CSM"}.get(column, label_of(column))

    ax.set_yticks(y, [name_of(name) for name in shown.index], fontsize=9)
    ax.set_xlabel("|standardised mean difference|")
    ax.set_title(title or "Balance of the signals")
    ax.legend(fontsize=9, loc="lower right")
    return ax


def plot_hazard_ratios(
    effects: pd.DataFrame,
    ax: Axes | None = None,
    title: str | None = None,
    label: str = "adjusted (95% interval)",
    **kwargs: Any,
) -> Axes:
    """Forest plot: adjusted hazard ratio of each programme with its 95% interval, naive beside it.

    ``label`` names the adjusted estimate in the legend (e.g. "total effect (95% bootstrap interval)").

    Parameters
    ----------
    effects : DataFrame
        Index programme; ``hr``, ``hr_low``, ``hr_high`` and ``naive_hr``. Log scale: 0.5 and 2 are
        equally far from 1.
    """
    ax = _ax(ax, (7, 0.55 * len(effects) + 1.4))
    y = np.arange(len(effects))[::-1]
    ax.errorbar(
        effects["hr"],
        y,
        xerr=[effects["hr"] - effects["hr_low"], effects["hr_high"] - effects["hr"]],
        fmt="o",
        color="#264653",
        capsize=3,
        label=label,
        **kwargs,
    )
    ax.scatter(effects["naive_hr"], y, marker="x", color="#e76f51", label="naive (biased)", zorder=3)
    ax.axvline(1.0, color="#555555", linewidth=0.9)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(mticker.NullFormatter())
    ax.set_xticks([0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4])
    positive = pd.concat([effects["hr_low"], effects["naive_hr"], effects["hr"]]).astype(float)
    low = positive[positive > 0].min() * 0.85  # a log axis: only positive values set its range
    high = max(effects["hr_high"].max(), effects["naive_hr"].max()) * 1.15
    ax.set_xlim(low, high)
    ax.set_yticks(y, [str(p).replace("_", " ") for p in effects.index])
    ax.set_xlabel("hazard ratio of churn (below 1: fewer churns)")
    ax.set_title(title or "Effect of each programme on churn")
    ax.legend(fontsize=9, loc="best")
    return ax


def plot_adjusted_survival(
    curves: pd.DataFrame, ax: Axes | None = None, title: str | None = None, **kwargs: Any
) -> Axes:
    """Model-standardised survival by tenure, one line per column (e.g. treated / not treated)."""
    ax = _ax(ax, (6, 3.5))
    for column, color in zip(curves.columns, ("#2a9d8f", "#8d99ae", "#e76f51")):
        ax.step(curves.index, curves[column], where="post", label=str(column), color=color, **kwargs)
    ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("months since first payment")
    ax.set_ylabel("share still active")
    ax.set_title(title or "Adjusted survival")
    ax.legend(fontsize=9)
    return ax


def plot_programme_value(
    result, ax: Axes | None = None, currency: str = "", title: str | None = None, **kwargs: Any
) -> Axes:
    """Value of one window's programme work beside its cost, with 95% intervals (horizontal bars).

    The first bar is the total (all programmes' deliveries removed at once), then each programme
    alone (lighter: these overlap and do not add up to the total), then the cost.

    Parameters
    ----------
    result : cslab.roi.ROIEstimate
    """
    effects = result.effects
    labels = ["all programmes (total)"] + [f"{str(p).replace('_', ' ')} alone" for p in effects.index] + ["CS cost"]
    values = [result.value, *effects["value"].astype(float), result.cost]
    lows = [result.value_low, *effects["value_low"].astype(float), result.cost_low]
    highs = [result.value_high, *effects["value_high"].astype(float), result.cost_high]
    colors = ["#2a9d8f"] + ["#8ecae6"] * len(effects) + ["#e76f51"]
    ax = _ax(ax, (8, 0.45 * len(labels) + 1.4))
    y = np.arange(len(labels))[::-1]
    ax.barh(y, values, color=colors, **kwargs)
    err = np.array([np.subtract(values, lows), np.subtract(highs, values)])
    ax.errorbar(values, y, xerr=np.clip(np.nan_to_num(err), 0, None), fmt="none", ecolor="#333333", capsize=3)
    ax.axvline(0, color="#555555", linewidth=0.8)
    ax.set_yticks(y, labels)
    _money_axis(ax.xaxis, currency)
    ax.xaxis.set_label_text(f"gross margin and cost{f' ({currency})' if currency else ''}")
    ax.set_title(title or "Value of the programme work and its cost")
    return ax


# ------------------------------------------------------------------------------------------------
# Expansion
# ------------------------------------------------------------------------------------------------
