"""Figures of revenue over time: the MRR bridge and movements, retention over time, cohort heatmaps."""

from __future__ import annotations

from typing import Any

import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

from cslab.plots.theme import MOVEMENT_COLORS, _ax, _money_axis

__all__ = ["plot_mrr_bridge", "plot_mrr_movements", "plot_retention_over_time", "plot_cohort_heatmap"]


def plot_mrr_bridge(
    bridge: pd.DataFrame, ax: Axes | None = None, currency: str = "", title: str | None = None, **kwargs: Any
) -> Axes:
    """Waterfall from start MRR through each movement to end MRR.

    Parameters
    ----------
    bridge : DataFrame
        :func:`cslab.metrics.mrr_bridge`: one row per step in waterfall order with ``step`` and
        ``amount`` (movements signed as they act on MRR; first and last rows are the levels).
    """
    ax = _ax(ax, (9, 4.5))
    steps = bridge["step"].tolist()
    amounts = bridge["amount"].to_numpy(dtype=float)
    bottoms, heights, colors = [], [], []
    level = 0.0
    for i, (step, amount) in enumerate(zip(steps, amounts)):
        if i == 0 or i == len(steps) - 1:
            bottoms.append(0.0)
            heights.append(amount)
            colors.append(MOVEMENT_COLORS["start" if i == 0 else "end"])
            level = amount
        else:
            bottoms.append(level if amount >= 0 else level + amount)
            heights.append(abs(amount))
            colors.append(MOVEMENT_COLORS.get(step, "#999999"))
            level += amount
    ax.bar(range(len(steps)), heights, bottom=bottoms, color=colors, width=0.65, **kwargs)
    top = max(b + h for b, h in zip(bottoms, heights))
    for i, (b, h, amount) in enumerate(zip(bottoms, heights, amounts)):
        label = f"{amount:+,.0f}" if 0 < i < len(steps) - 1 else f"{amount:,.0f}"
        ax.text(i, b + h + top * 0.01, label, ha="center", va="bottom", fontsize=9)
    ax.set_xticks(range(len(steps)), [s.replace("_", " ") for s in steps])
    _money_axis(ax.yaxis, currency)
    ax.set_ylim(0, top * 1.1)
    ax.set_title(title or "MRR bridge")
    return ax


def plot_mrr_movements(
    movements: pd.DataFrame, ax: Axes | None = None, currency: str = "", title: str | None = None, **kwargs: Any
) -> Axes:
    """Monthly MRR movements as diverging bars (gains up, losses down) with net new MRR.

    Parameters
    ----------
    movements : DataFrame
        :func:`cslab.metrics.mrr_movements`, indexed or keyed by ``month``.
    """
    ax = _ax(ax, (10, 4.5))
    frame = movements.set_index("month") if "month" in movements else movements
    x = np.arange(len(frame))
    up = np.zeros(len(frame))
    for name in ("new", "expansion", "reactivation"):
        ax.bar(x, frame[name], bottom=up, color=MOVEMENT_COLORS[name], label=name, width=0.8, **kwargs)
        up += frame[name].to_numpy()
    down = np.zeros(len(frame))
    for name in ("contraction", "churn"):
        ax.bar(x, -frame[name], bottom=down, color=MOVEMENT_COLORS[name], label=name, width=0.8, **kwargs)
        down -= frame[name].to_numpy()
    net = up + down
    ax.plot(x, net, color="#222222", marker="o", markersize=3, linewidth=1.2, label="net new MRR")
    ax.axhline(0, color="#444444", linewidth=0.8)
    step = max(1, len(frame) // 12)
    ax.set_xticks(x[::step], [pd.Timestamp(m).strftime("%Y-%m") for m in frame.index[::step]], rotation=45, ha="right")
    _money_axis(ax.yaxis, currency)
    ax.set_title(title or "MRR movements by month")
    ax.legend(ncol=3, loc="upper left", fontsize=9)
    return ax


def plot_retention_over_time(
    retention: pd.DataFrame,
    ax: Axes | None = None,
    columns: tuple[str, ...] = ("nrr", "grr"),
    hue: str | None = None,
    title: str | None = None,
    **kwargs: Any,
) -> Axes:
    """Trailing-12-month NRR and GRR at each month, with the 100% line.

    Parameters
    ----------
    retention : DataFrame
        :func:`cslab.metrics.retention_over_time`: ``month`` and the rate columns (and ``hue``).
    """
    ax = _ax(ax, (9, 4))
    labels = {"nrr": "NRR", "grr": "GRR"}
    if hue:
        long = retention.melt(id_vars=["month", hue], value_vars=list(columns), var_name="metric")
        long["metric"] = long["metric"].map(lambda c: labels.get(c, c))
        sns.lineplot(data=long, x="month", y="value", hue=hue, style="metric", ax=ax, **kwargs)
    else:
        for column in columns:
            ax.plot(
                retention["month"],
                retention[column],
                marker="o",
                markersize=3,
                label=labels.get(column, column),
                **kwargs,
            )
        ax.legend()
    ax.axhline(1.0, color="#444444", linewidth=0.8, linestyle="--")
    ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("")
    ax.set_ylabel("trailing 12 months")
    ax.set_title(title or "Net and gross revenue retention over time")
    return ax


def plot_cohort_heatmap(
    table: pd.DataFrame,
    ax: Axes | None = None,
    values: str = "pct",
    title: str | None = None,
    annotate: bool | None = None,
    **kwargs: Any,
) -> Axes:
    """Cohort triangle as a heat map; cells not yet reached stay blank.

    Parameters
    ----------
    table : DataFrame
        :func:`cslab.metrics.cohort_table`: cohorts as rows, age as columns.
    values : {"pct", "count", "money"}
        How to annotate and scale the cells.
    """
    n_rows, n_cols = table.shape
    ax = _ax(ax, (min(16, 3 + 0.45 * n_cols), min(14, 1.5 + 0.32 * n_rows)))
    annotate = (n_cols <= 16 and n_rows <= 24) if annotate is None else annotate
    data = table.astype(float)
    if values == "pct":
        options = dict(
            cmap="RdYlGn",
            vmin=0.4 if np.nanmin(data.to_numpy()) >= 0.4 else 0.0,
            vmax=max(1.0, float(np.nanmax(data.to_numpy()))),
            fmt=".0%",
        )
    else:
        options = dict(cmap="Blues", fmt=",.0f")
    options.update(kwargs)
    fmt = options.pop("fmt")
    sns.heatmap(
        data,
        ax=ax,
        annot=annotate,
        fmt=fmt,
        linewidths=0.4,
        linecolor="white",
        annot_kws={"fontsize": 7.5},
        cbar_kws={"shrink": 0.7},
        **options,
    )
    if values == "pct":
        ax.collections[0].colorbar.ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0, decimals=0))
    ax.set_xlabel(f"{table.columns.name or 'periods since signup'}")
    ax.set_ylabel("signup cohort")
    ax.tick_params(axis="y", labelsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_title(title or "Cohort retention")
    return ax
