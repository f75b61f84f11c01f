"""Slide-ready figures for the workshop: large fonts, one message each, the kit's theme, as PNG.

Each figure's title is its message. The numbers come from the kit's metric functions on the books
passed in; the drawing is done here and written with matplotlib (this module, like the audit, is
orchestration: the analysis modules never draw and :mod:`cslab.plots` never saves).

Examples
--------
>>> paths = export_figures("/tmp/figures", hand_panel, demo_panel, scenario_panels)  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

__all__ = ["SLIDE_RC", "export_figures"]

#: Large type for a projector: 16:9 figures read from the back of a room.
SLIDE_RC = {
    "figure.figsize": (13.33, 7.5),
    "font.size": 20,
    "axes.titlesize": 28,
    "axes.titleweight": "bold",
    "axes.labelsize": 22,
    "xtick.labelsize": 19,
    "ytick.labelsize": 19,
    "legend.fontsize": 19,
    "lines.linewidth": 4,
    "savefig.dpi": 100,
}


def _pct_axis(ax, axis: str = "y") -> None:
    from matplotlib.ticker import PercentFormatter

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(PercentFormatter(1.0, decimals=0))


def _save(fig, folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _compounding(folder: Path) -> Path:
    from cslab.workshop import churn_over

    fig, ax = plt.subplots()
    months = np.arange(13)
    for rate, colour in ((0.01, "#2a9d8f"), (0.03, "#f4a261"), (0.08, "#e76f51")):
        kept = [1 - churn_over(rate, int(m)) for m in months]
        ax.plot(months, kept, color=colour, label=f"{rate:.0%} a month: {churn_over(rate, 12):.0%} gone in a year")
    _pct_axis(ax)
    ax.set(
        xlabel="months since the start of the year",
        ylabel="customers still here",
        ylim=(0, 1.02),
        title="8% a month loses 63% of customers in a year",
    )
    ax.legend(loc="lower left")
    return _save(fig, folder, "01_monthly_to_annual_churn")


def _bridge(folder: Path, hand: pd.DataFrame) -> Path:
    from cslab import metrics, plots

    bridge = metrics.mrr_bridge(hand)
    fig, ax = plt.subplots()
    plots.plot_mrr_bridge(bridge, ax=ax)
    from matplotlib.ticker import StrMethodFormatter

    steps = bridge.set_index("step")["amount"]
    gained = steps[["new", "expansion", "reactivation"]].sum()
    lost = -steps[["contraction", "churn"]].sum()
    verb = "grew" if steps["end"] >= steps["start"] else "fell"
    ax.set_title(
        f"MRR {verb} from {steps['start']:,.0f} to {steps['end']:,.0f}: {gained:,.0f} gained, {lost:,.0f} lost",
        fontsize=26,
    )
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    for label in ax.texts:
        label.set_fontsize(18)
    ax.set_xlabel("")
    return _save(fig, folder, "02_mrr_bridge_hand_book")


def _grr_nrr(folder: Path, scenarios: dict[str, dict]) -> Path:
    names = list(scenarios)
    grr = [scenarios[n]["grr_12m"] for n in names]
    nrr = [scenarios[n]["nrr_12m"] for n in names]
    x = np.arange(len(names))
    fig, ax = plt.subplots()
    ax.bar(x - 0.2, grr, 0.4, label="GRR (no account above what it paid)", color="#8d99ae")
    ax.bar(x + 0.2, nrr, 0.4, label="NRR (expansion included)", color="#457b9d")
    ax.axhline(1.0, color="black", linewidth=2, linestyle="--")
    ax.set_xticks(x, [n.replace("-", " ") for n in names])
    _pct_axis(ax)
    ax.set(
        ylim=(0, max(nrr + [1.0]) * 1.2),
        ylabel="kept from last year's customers",
        title="NRR above 100% needs expansion; GRR never passes it",
    )
    ax.legend(loc="upper left")
    return _save(fig, folder, "03_grr_vs_nrr_by_scenario")


def _cohorts(folder: Path, demo: pd.DataFrame) -> Path:
    from cslab import metrics, plots

    table = metrics.cohort_table(demo, period="Q", kind="logo", min_cohort_size=20)
    fig, ax = plt.subplots()
    plots.plot_cohort_heatmap(table, ax=ax, annotate=False)
    ax.set_title("Read a cohort triangle along its rows: each row is one signup quarter", fontsize=24)
    return _save(fig, folder, "04_cohort_triangle")


def _survival(folder: Path, demo: pd.DataFrame) -> Path:
    from cslab import survival

    fitter = survival.kaplan_meier(survival.account_lifetimes(demo))["all"]
    curve = fitter.survival_function_.iloc[:, 0]
    median = survival.median_lifetime(fitter)["median"]
    fig, ax = plt.subplots()
    ax.step(curve.index, curve.to_numpy(), where="post", color="#457b9d")
    ax.axhline(0.5, color="#e76f51", linestyle="--", linewidth=2)
    _pct_axis(ax)
    at12 = float(fitter.survival_function_at_times([12]).iloc[0])
    title = (
        f"Half of the customers are gone after {median:.0f} months"
        if median is not None
        else f"{at12:.0%} of customers are still here after a year; the median is not reached yet"
    )
    ax.set(xlabel="months since first payment", ylabel="customers still paying", ylim=(0, 1.02), title=title)
    return _save(fig, folder, "05_survival_curve")


def _heterogeneity(folder: Path) -> Path:
    from cslab.workshop import mixture_retention

    mix = mixture_retention([0.20, 0.02], months=24)
    fig, ax = plt.subplots()
    ax.plot(mix.index[1:], mix["retention"].iloc[1:], color="#457b9d", label="the whole book")
    ax.axhline(0.80, color="#e76f51", linestyle=":", label="risky half: always 80%")
    ax.axhline(0.98, color="#2a9d8f", linestyle=":", label="loyal half: always 98%")
    _pct_axis(ax)
    ax.set(
        xlabel="customer age (months)",
        ylabel="monthly retention",
        ylim=(0.70, 1.0),
        title="Retention rises with age because the risky leave first",
    )
    ax.legend(loc="center right", bbox_to_anchor=(1.0, 0.4))
    return _save(fig, folder, "06_retention_rises_with_age")


def _health(folder: Path) -> Path:
    from cslab import drivers

    p = np.linspace(0.0, 0.30, 61)
    bands = drivers.health_scores(p)
    colours = {"green": "#2a9d8f", "yellow": "#e9c46a", "red": "#e76f51"}
    fig, ax = plt.subplots()
    for band, rows in bands.groupby("band"):
        ax.scatter(rows["health_score"], p[rows.index], s=120, color=colours[band], label=band)
    _pct_axis(ax)
    ax.set(
        xlabel="health score (0-100)",
        ylabel="chance of churning in the next 3 months",
        title="A health score is a churn probability, not a feeling",
    )
    ax.invert_xaxis()
    ax.legend(loc="upper right")
    return _save(fig, folder, "07_health_score_is_a_probability")


def _cs_cost(folder: Path, scenarios: dict[str, dict]) -> Path:
    names = list(scenarios)
    share = [scenarios[n]["cs_cost_share"] for n in names]
    fig, ax = plt.subplots()
    ax.axhspan(0.10, 0.25, color="#a7c957", alpha=0.3, label="typical in SaaS: 10-25%")
    ax.bar([n.replace("-", " ") for n in names], share, color=["#e76f51" if s < 0.10 else "#457b9d" for s in share])
    _pct_axis(ax)
    low = min(range(len(names)), key=lambda i: share[i])
    ax.set(
        ylabel="CS cost / recurring revenue",
        ylim=(0, max(share + [0.25]) * 1.2),
        title=f"The thinnest CS team costs {share[low]:.0%} of revenue; 10-25% is typical",
    )
    ax.legend(loc="upper right")
    return _save(fig, folder, "08_cs_cost_share_by_scenario")


def _hidden(folder: Path, panel: pd.DataFrame) -> Path:
    from cslab.data.scenarios import early_churn_by_cohort

    groups = early_churn_by_cohort(panel)
    fig, ax = plt.subplots()
    labels = [f"{a}\nto {b}" for a, b in zip(groups["first_cohort"], groups["last_cohort"])]
    ax.bar(labels, groups["monthly_churn"], color=["#8d99ae"] * (len(groups) - 1) + ["#e76f51"])
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    ax.set(
        xlabel="signup cohorts",
        ylabel="monthly churn, first 6 months",
        title="Newer customers leave faster; NRR cannot see it yet",
    )
    ax.tick_params(axis="x", labelsize=15)
    return _save(fig, folder, "09_hidden_risk_early_churn")


def export_figures(
    folder: str | Path,
    hand: pd.DataFrame,
    demo: pd.DataFrame,
    scenarios: dict[str, dict] | None = None,
    hidden_risk: pd.DataFrame | None = None,
) -> list[Path]:
    """Write the slide figures as PNG into ``folder``; return their paths.

    Parameters
    ----------
    folder : str or Path
        Created if needed.
    hand : DataFrame
        Panel of the hand book (:func:`cslab.panel` of :func:`cslab.workshop.write_hand_book`).
    demo : DataFrame
        Panel of the demo book.
    scenarios : dict, optional
        Scenario name -> :func:`cslab.data.scenarios.realised_metrics` (the GRR/NRR and CS-cost
        figures need them).
    hidden_risk : DataFrame, optional
        Panel of the ``hidden-risk`` book (its early-churn figure).

    Returns
    -------
    list of Path
    """
    from cslab import plots
    from cslab.errors import StatisticalWarning

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    with matplotlib.rc_context(), warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        plots.set_theme(rc=SLIDE_RC)
        paths += [
            _compounding(out),
            _bridge(out, hand),
            _cohorts(out, demo),
            _survival(out, demo),
            _heterogeneity(out),
            _health(out),
        ]
        if scenarios:
            paths += [_grr_nrr(out, scenarios), _cs_cost(out, scenarios)]
        if hidden_risk is not None:
            paths.append(_hidden(out, hidden_risk))
    return sorted(paths)
