"""The kit's one theme, the movement colours and the small helpers every figure shares."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import seaborn as sns
from matplotlib.axes import Axes

MOVEMENT_COLORS = {
    "new": "#2a9d8f",
    "expansion": "#57cc99",
    "reactivation": "#a7c957",
    "contraction": "#f4a261",
    "churn": "#e76f51",
    "start": "#8d99ae",
    "end": "#457b9d",
}

__all__ = ["set_theme", "MOVEMENT_COLORS"]


def set_theme(**kwargs: Any) -> None:
    """The kit's one theme (seaborn whitegrid, colour-blind palette, readable sizes).

    Examples
    --------
    >>> set_theme()
    """
    rc = {
        "figure.figsize": (9, 4.5),
        "figure.dpi": 100,
        "savefig.dpi": 110,
        "axes.titlesize": 13,
        "axes.titleweight": "bold",
        "axes.labelsize": 11,
        "legend.frameon": False,
    }
    rc.update(kwargs.pop("rc", {}))
    sns.set_theme(style="whitegrid", context="notebook", palette="colorblind", rc=rc, **kwargs)


def _ax(ax: Axes | None, figsize: tuple[float, float] | None = None) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _money_axis(axis, currency: str) -> None:
    def fmt(value, _):
        size = abs(value)
        text = f"{value / 1e6:.1f}M" if size >= 1e6 else f"{value / 1e3:.0f}k" if size >= 1e3 else f"{value:.0f}"
        return text

    axis.set_major_formatter(mticker.FuncFormatter(fmt))
    axis.set_label_text(f"MRR ({currency})" if currency else "MRR")
