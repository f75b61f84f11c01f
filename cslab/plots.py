"""Every figure of the kit: ``plot_*(..., ax=None, **kwargs) -> Axes``, one seaborn theme.

Plots draw what the analyses computed; they never compute statistics and never call
``plt.show()`` or ``savefig``. Call :func:`set_theme` once in a notebook (importing this module
changes no global state).
"""

from __future__ import annotations

from typing import Any, Mapping

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

__all__ = ["set_theme", "MOVEMENT_COLORS", "plot_mrr_bridge", "plot_mrr_movements",
           "plot_retention_over_time", "plot_cohort_heatmap", "plot_survival",
           "plot_sbg_projection", "plot_lifetime_value", "plot_churn_by_decile", "plot_calibration",
           "plot_importance", "plot_shap_beeswarm", "plot_dependence", "plot_health_bands",
           "plot_propensity_overlap", "plot_balance", "plot_hazard_ratios", "plot_adjusted_survival",
           "plot_programme_value", "plot_nrr_components", "plot_utilisation", "plot_adoption",
           "plot_pipeline_by_band"]

MOVEMENT_COLORS = {
    "new": "#2a9d8f", "expansion": "#57cc99", "reactivation": "#a7c957",
    "contraction": "#f4a261", "churn": "#e76f51", "start": "#8d99ae", "end": "#457b9d",
}


def set_theme(**kwargs: Any) -> None:
    """The kit's one theme (seaborn whitegrid, colour-blind palette, readable sizes).

    Examples
    --------
    >>> set_theme()
    """
    rc = {"figure.figsize": (9, 4.5), "figure.dpi": 100, "savefig.dpi": 110,
          "axes.titlesize": 13, "axes.titleweight": "bold", "axes.labelsize": 11,
          "legend.frameon": False}
    rc.update(kwargs.pop("rc", {}))
    sns.set_theme(style="whitegrid", context="notebook", palette="colorblind", rc=rc, **kwargs)


def _ax(ax: Axes | None, figsize: tuple[float, float] | None = None) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _money_axis(axis, currency: str) -> None:
    def fmt(value, _):
        size = abs(value)
        text = (f"{value / 1e6:.1f}M" if size >= 1e6 else f"{value / 1e3:.0f}k" if size >= 1e3
                else f"{value:.0f}")
        return text
    axis.set_major_formatter(mticker.FuncFormatter(fmt))
    axis.set_label_text(f"MRR ({currency})" if currency else "MRR")


def plot_mrr_bridge(bridge: pd.DataFrame, ax: Axes | None = None, currency: str = "",
                    title: str | None = None, **kwargs: Any) -> Axes:
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


def plot_mrr_movements(movements: pd.DataFrame, ax: Axes | None = None, currency: str = "",
                       title: str | None = None, **kwargs: Any) -> Axes:
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
    ax.set_xticks(x[::step], [pd.Timestamp(m).strftime("%Y-%m") for m in frame.index[::step]],
                  rotation=45, ha="right")
    _money_axis(ax.yaxis, currency)
    ax.set_title(title or "MRR movements by month")
    ax.legend(ncol=3, loc="upper left", fontsize=9)
    return ax


def plot_retention_over_time(retention: pd.DataFrame, ax: Axes | None = None,
                             columns: tuple[str, ...] = ("nrr", "grr"), hue: str | None = None,
                             title: str | None = None, **kwargs: Any) -> Axes:
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
            ax.plot(retention["month"], retention[column], marker="o", markersize=3,
                    label=labels.get(column, column), **kwargs)
        ax.legend()
    ax.axhline(1.0, color="#444444", linewidth=0.8, linestyle="--")
    ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("")
    ax.set_ylabel("trailing 12 months")
    ax.set_title(title or "Net and gross revenue retention over time")
    return ax


def plot_cohort_heatmap(table: pd.DataFrame, ax: Axes | None = None, values: str = "pct",
                        title: str | None = None, annotate: bool | None = None,
                        **kwargs: Any) -> Axes:
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
        options = dict(cmap="RdYlGn", vmin=0.4 if np.nanmin(data.to_numpy()) >= 0.4 else 0.0,
                       vmax=max(1.0, float(np.nanmax(data.to_numpy()))), fmt=".0%")
    else:
        options = dict(cmap="Blues", fmt=",.0f")
    options.update(kwargs)
    fmt = options.pop("fmt")
    sns.heatmap(data, ax=ax, annot=annotate, fmt=fmt, linewidths=0.4, linecolor="white",
                annot_kws={"fontsize": 7.5}, cbar_kws={"shrink": 0.7}, **options)
    if values == "pct":
        ax.collections[0].colorbar.ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0, decimals=0))
    ax.set_xlabel(f"{table.columns.name or 'periods since signup'}")
    ax.set_ylabel("signup cohort")
    ax.tick_params(axis="y", labelsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_title(title or "Cohort retention")
    return ax


def plot_survival(fitters: Mapping[str, Any], ax: Axes | None = None, ci: bool = True,
                  marks: tuple[int, ...] = (12, 24), title: str | None = None,
                  xlabel: str = "months since first payment", **kwargs: Any) -> Axes:
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


def plot_sbg_projection(projection: pd.DataFrame, ax: Axes | None = None,
                        title: str | None = None, fit_periods: int | None = None,
                        period_label: str = "periods since signup", **kwargs: Any) -> Axes:
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
        ax.plot(group["period"], group["actual"], color=color, marker="o", markersize=3.5,
                linewidth=1.2, label=str(cohort))
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


def plot_lifetime_value(values: pd.DataFrame, x: str = "cohort", y: str = "clv",
                        ax: Axes | None = None, currency: str = "", title: str | None = None,
                        **kwargs: Any) -> Axes:
    """Customer lifetime value per cohort (or segment) as bars."""
    ax = _ax(ax, (9, 4))
    sns.barplot(data=values, x=x, y=y, ax=ax, color=MOVEMENT_COLORS["end"], **kwargs)
    ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_ylabel(f"lifetime value ({currency})" if currency else "lifetime value")
    ax.set_xlabel("")
    ax.tick_params(axis="x", rotation=45, labelsize=8)
    ax.set_title(title or "Customer lifetime value")
    return ax


def plot_churn_by_decile(table: pd.DataFrame, ax: Axes | None = None, base_rate: float | None = None,
                         title: str | None = None, **kwargs: Any) -> Axes:
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
    ax.set_xlabel(f"deciles of {feature.replace('_', ' ')} (low to high)", fontsize=9)
    ax.set_ylabel("churn rate")
    ax.set_title(title or feature.replace("_", " "), fontsize=10)
    return ax


def plot_calibration(curves: Mapping[str, pd.DataFrame], ax: Axes | None = None,
                     title: str | None = None, event: str = "churn", **kwargs: Any) -> Axes:
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


def plot_importance(importance: pd.Series, ax: Axes | None = None, top: int = 15,
                    title: str | None = None, xlabel: str = "mean |SHAP value| (log-odds)",
                    **kwargs: Any) -> Axes:
    """Horizontal bars of feature importance, most important on top."""
    shown = importance.head(top)[::-1]
    ax = _ax(ax, (8, 0.35 * len(shown) + 1.2))
    ax.barh([str(i).replace("_", " ") for i in shown.index], shown.to_numpy(),
            color=MOVEMENT_COLORS["end"], **kwargs)
    ax.set_xlabel(xlabel)
    ax.set_title(title or "What drives churn (SHAP)")
    return ax


def plot_shap_beeswarm(shap_values: pd.DataFrame, rows: pd.DataFrame, ax: Axes | None = None,
                       top: int = 12, title: str | None = None, seed: int = 0, event: str = "churn risk",
                       **kwargs: Any) -> Axes:
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
    from cslab.features import label_of

    ax.set_yticks(range(len(order)), [label_of(str(f)) for f in order[::-1]])
    ax.set_xlabel(f"SHAP value (raises {event} →)")
    mappable = plt.cm.ScalarMappable(cmap=cmap)
    bar = ax.figure.colorbar(mappable, ax=ax, shrink=0.6, pad=0.02)
    bar.set_ticks([0, 1], labels=["low", "high"])
    bar.set_label("feature value", fontsize=9)
    ax.set_title(title or "How each feature moves churn risk, account by account")
    return ax


def plot_dependence(shap_values: pd.DataFrame, rows: pd.DataFrame, feature: str,
                    ax: Axes | None = None, title: str | None = None, **kwargs: Any) -> Axes:
    """SHAP value of one feature against its value: the shape of its effect."""
    ax = _ax(ax, (5, 3.5))
    ax.scatter(rows.loc[shap_values.index, feature], shap_values[feature], s=8, alpha=0.5,
               color=MOVEMENT_COLORS["end"], linewidths=0, **kwargs)
    ax.axhline(0, color="#444444", linewidth=0.8)
    ax.set_xlabel(feature.replace("_", " "))
    ax.set_ylabel("SHAP value")
    ax.set_title(title or feature.replace("_", " "), fontsize=10)
    return ax


def plot_health_bands(summary: pd.DataFrame, ax: Axes | None = None, title: str | None = None,
                      **kwargs: Any) -> Axes:
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
                ax.text(left + width / 2, row, f"{band} {width:.0%}", ha="center", va="center",
                        fontsize=9, color="white" if band != "yellow" else "#222222")
            left += width
    ax.set_yticks(range(len(columns)), ["accounts", "ARR"][:len(columns)])
    ax.xaxis.set_major_formatter(mticker.PercentFormatter(1.0, decimals=0))
    ax.set_xlim(0, 1)
    ax.set_title(title or ("Health bands: share of accounts and of ARR" if len(columns) > 1
                           else "Health bands: share of accounts"))
    return ax


# ------------------------------------------------------------------------------------------------
# Customer-success ROI
# ------------------------------------------------------------------------------------------------
def plot_propensity_overlap(decisions: pd.DataFrame, ax: Axes | None = None, title: str | None = None,
                            **kwargs: Any) -> Axes:
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


def plot_balance(balance: pd.DataFrame, ax: Axes | None = None, threshold: float = 0.1,
                 top: int = 15, title: str | None = None, **kwargs: Any) -> Axes:
    """Love plot: absolute standardised mean differences before and after weighting.

    Parameters
    ----------
    balance : DataFrame
        Columns ``before`` and ``after``, one row per signal (``programme_effect(...)["balance"]``).
    threshold : float
        The usual mark of balance, drawn as a dashed line.
    """
    from cslab.features import label_of

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
            return f"{label_of(column[:-len('_missing')])} missing"
        return {"has_csm": "has a CSM"}.get(column, label_of(column))

    ax.set_yticks(y, [name_of(name) for name in shown.index], fontsize=9)
    ax.set_xlabel("|standardised mean difference|")
    ax.set_title(title or "Balance of the signals")
    ax.legend(fontsize=9, loc="lower right")
    return ax


def plot_hazard_ratios(effects: pd.DataFrame, ax: Axes | None = None, title: str | None = None,
                       label: str = "adjusted (95% interval)", **kwargs: Any) -> Axes:
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
    ax.errorbar(effects["hr"], y, xerr=[effects["hr"] - effects["hr_low"], effects["hr_high"] - effects["hr"]],
                fmt="o", color="#264653", capsize=3, label=label, **kwargs)
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


def plot_adjusted_survival(curves: pd.DataFrame, ax: Axes | None = None, title: str | None = None,
                           **kwargs: Any) -> Axes:
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


def plot_programme_value(result, ax: Axes | None = None, currency: str = "", title: str | None = None,
                         **kwargs: Any) -> Axes:
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
def plot_nrr_components(parts: pd.DataFrame, ax: Axes | None = None, title: str | None = None,
                        **kwargs: Any) -> Axes:
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
    for column, color, label in (("expansion_rate", MOVEMENT_COLORS["expansion"], "expansion"),
                                 ("reactivation_rate", MOVEMENT_COLORS["reactivation"], "reactivation")):
        ax.bar(x, parts[column], width, bottom=up, color=color, label=label, **kwargs)
        up += parts[column].to_numpy()
    down = np.zeros(len(parts))
    for column, color, label in (("contraction_rate", MOVEMENT_COLORS["contraction"], "contraction"),
                                 ("churn_rate", MOVEMENT_COLORS["churn"], "churn")):
        ax.bar(x, -parts[column], width, bottom=-down, color=color, label=label, **kwargs)
        down += parts[column].to_numpy()
    ax.plot(x, parts["nrr"] - 1, color="#222222", marker="o", markersize=3, label="NRR − 100%")
    ax.axhline(0, color="#444444", linewidth=0.8)
    ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0, decimals=0))
    ax.set_ylabel("share of starting MRR (trailing 12 months)")
    ax.set_title(title or "Where NRR comes from: gains above the line, losses below")
    ax.legend(fontsize=9, ncol=5, loc="lower left")
    return ax


def plot_utilisation(accounts: pd.DataFrame, ax: Axes | None = None, by: str | None = "segment",
                     threshold: float = 0.9, title: str | None = None, **kwargs: Any) -> Axes:
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
        ax.hist(group["seat_utilisation"].clip(upper=top), bins=bins, histtype="step", linewidth=1.8,
                label=f"{name} ({len(group):,})", **kwargs)
    ax.axvline(threshold, color="#d62828", linestyle="--", linewidth=1, label=f"capacity ({threshold:.0%})")
    ax.xaxis.set_major_formatter(mticker.PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("seat utilisation (active users / seats)")
    ax.set_ylabel("accounts")
    ax.set_title(title or "Seat utilisation of active accounts")
    ax.legend(fontsize=9)
    return ax


def plot_adoption(adoption: pd.DataFrame, ax: Axes | None = None, title: str | None = None,
                  **kwargs: Any) -> Axes:
    """Heatmap of product adoption: groups as rows, products as columns, share of accounts in cells."""
    ax = _ax(ax, (1.1 * adoption.shape[1] + 3, 0.5 * adoption.shape[0] + 1.5))
    sns.heatmap(adoption, annot=True, fmt=".0%", cmap="Greens", vmin=0, vmax=1, cbar=False, ax=ax,
                linewidths=0.5, **kwargs)
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.tick_params(axis="x", rotation=0)
    ax.set_title(title or "Share of active accounts running each product")
    return ax


def plot_pipeline_by_band(pipeline: pd.DataFrame, ax: Axes | None = None, currency: str = "",
                          title: str | None = None, **kwargs: Any) -> Axes:
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
