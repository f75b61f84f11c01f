"""The value of one window's CS programme work against its cost, with an account bootstrap.

:func:`cs_roi` refits every stage of :class:`cslab.programmes.ProgrammeEffects` (propensity model
choice, weights, outcome and landmark models, value) on resampled accounts and returns an
:class:`ROIEstimate`: the estimate, percentile intervals and every replicate, failures counted.

Examples
--------
>>> model = ProgrammeEffects().fit(rows, ["onboarding", "qbr"]).plan_value("2025-01-01", "2025-12-31")  # doctest: +SKIP
>>> cs_roi(model, cost=1.2e6).roi  # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cslab.glm import ConvergenceError
from cslab.weighting import e_value

__all__ = ["bootstrap_interval", "ROIEstimate", "cs_roi", "DEFAULT_GROSS_MARGIN", "DEFAULT_N_BOOTSTRAP"]


def bootstrap_interval(values, estimate: float, level: float = 0.95) -> tuple[float, float]:
    """Interval of an estimate from its bootstrap replicates.

    With fewer than 200 replicates, the normal interval from the bootstrap standard error (a few
    dozen replicates estimate a standard error well, but not the tails a percentile interval needs);
    from 200 on, the percentile interval.

    Examples
    --------
    >>> [round(limit, 2) for limit in bootstrap_interval([1.0, 2.0, 3.0], 2.0)]
    [0.04, 3.96]
    """
    from scipy.stats import norm

    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return float("nan"), float("nan")
    if len(values) >= 200:
        low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
        return float(low), float(high)
    half = norm.ppf((1 + level) / 2) * values.std(ddof=1)
    return round(float(estimate - half), 12), round(float(estimate + half), 12)


# ------------------------------------------------------------------------------------------------
# Money: cost, revenue, magic number, coverage
# ------------------------------------------------------------------------------------------------
#: Gross margin used when the caller gives none: a typical SaaS subscription gross margin.
DEFAULT_GROSS_MARGIN = 0.80
#: Bootstrap replicates by default (percentile intervals need at least 200).
DEFAULT_N_BOOTSTRAP = 200


@dataclass
class ROIEstimate:
    """What CS returned over one window, with its interval and every bootstrap replicate.

    Attributes
    ----------
    effects : DataFrame
        Per programme: exposure type, naive / total / direct hazard ratios, the total effect's
        bootstrap percentile interval (``hr_low``, ``hr_high``), the expansion hazard ratio and its
        interval, the value of the window's deliveries of that programme alone and its interval,
        balance and E-values.
    value, value_low, value_high : float
        Gross-margin value of all the window's deliveries (joint counterfactual).
    retained, expansion : float
        Its two parts: churn averted and expansion added.
    cost, cost_low, cost_high : float
        CS cost of the same window (an interval only when it is estimated from hours).
    roi, roi_low, roi_high : float
        (value − cost) / cost.
    replicates : DataFrame
        One row per replicate: ``replicate``, ``value``, ``retained``, ``expansion``, ``cost``,
        ``roi``, ``failed`` (why, or empty), and per programme ``hr_P``, ``expansion_hr_P``,
        ``value_P``, ``model_P`` (the propensity model chosen in that replicate).
    n_bootstrap, n_failed : int
    value_window, cost_window : str
        ``"YYYY-MM to YYYY-MM"``; the value is counted over ``horizon_months`` after each account's
        first delivery in ``value_window``.
    """

    effects: pd.DataFrame
    value: float
    value_low: float
    value_high: float
    retained: float
    expansion: float
    cost: float
    cost_low: float
    cost_high: float
    roi: float
    roi_low: float
    roi_high: float
    replicates: pd.DataFrame
    n_bootstrap: int
    n_failed: int
    value_window: str
    cost_window: str
    horizon_months: int
    gross_margin: float
    accounts_valued: int
    seconds: float = 0.0


def _one_replicate(model, seeds, gross_margin: float, account_cost) -> list[dict]:
    out = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        n = model._n_accounts
        freq = rng.multinomial(n, np.full(n, 1.0 / n)).astype(float)
        record, value = {"failed": ""}, None
        with np.errstate(all="ignore"):
            estimates = model.replicate(freq)
        if estimates["failed"]:
            record["failed"] = "; ".join(f"{p}: {why}" for p, why in estimates["failed"].items())
        for p, e in estimates["programmes"].items():
            record.update(
                {
                    f"hr_{p}": e["hr"],
                    f"expansion_hr_{p}": e.get("expansion_hr", np.nan),
                    f"model_{p}": e["propensity_model"],
                }
            )
        if not estimates["failed"]:
            try:
                with np.errstate(all="ignore"):
                    value = model.value(estimates, freq, gross_margin)
            except (ConvergenceError, np.linalg.LinAlgError) as error:
                record["failed"] = f"value: {error}"
                value = None
        if value is not None:
            record.update(
                value=value["total"],
                retained=value["retained"],
                expansion=value["expansion"],
                **{f"value_{p}": v for p, v in value["by_programme"].items()},
            )
        if account_cost is not None:  # the sampled accounts' cost stands for all accounts'
            record["cost"] = float(freq @ account_cost) / model.sample_fraction_
        out.append(record)
    return out


def cs_roi(
    model,
    cost: float,
    *,
    account_cost=None,
    gross_margin: float = DEFAULT_GROSS_MARGIN,
    n_bootstrap: int = DEFAULT_N_BOOTSTRAP,
    seed: int = 0,
    level: float = 0.95,
    n_jobs: int = 1,
    progress: bool = False,
) -> ROIEstimate:
    """The ROI of CS over one window: value of the window's deliveries against the window's cost.

    ``model`` is a fitted :class:`cslab.programmes.ProgrammeEffects` on which
    :meth:`~cslab.programmes.ProgrammeEffects.plan_value` was called for the cost window. The
    accounts are resampled with replacement ``n_bootstrap`` times (as frequency weights, so memory
    stays at one design whatever the number of replicates or workers); every stage is refitted in
    each replicate, including the choice of propensity model; a replicate where a model fails is
    counted in ``n_failed`` and its reason kept in the replicate table, never silently dropped (the
    intervals use the replicates that succeeded). Intervals are bootstrap percentiles from 200
    replicates on, else normal intervals from the bootstrap standard error.

    Parameters
    ----------
    cost : float
        CS cost of the window.
    account_cost : array, optional
        Cost per account (model order, ``model._n_accounts``) when the cost is estimated from
        activity hours: each replicate then re-adds the cost of its accounts, so the interval carries
        the cost's uncertainty too.
    gross_margin : float
        Share of revenue kept after the cost of serving it; value is margin, not revenue.
    n_jobs : int
        Worker processes (joblib); replicates are split in chunks, each worker holds one copy of
        the design (memory-mapped, read-only).
    progress : bool
        Show a progress bar (tqdm; a widget in JupyterLab), unless the environment variable
        ``CSLAB_BATCH`` is set (the audit sets it: nobody watches a report being made).

    Examples
    --------
    >>> model = ProgrammeEffects().fit(rows, programmes).plan_value("2025-01-01", "2025-12-31")  # doctest: +SKIP
    >>> result = cs_roi(model, cost=1.2e6, n_bootstrap=200)  # doctest: +SKIP
    >>> result.roi, result.roi_low, result.roi_high  # doctest: +SKIP
    """
    import time

    started = time.perf_counter()
    if not 0 < gross_margin <= 1:
        raise ValueError("gross_margin must be in (0, 1]")
    point = model.value(gross_margin=gross_margin)
    account_cost = None if account_cost is None else np.asarray(account_cost, float)
    seeds = np.random.SeedSequence(seed).spawn(n_bootstrap)
    chunk = max(1, min(25, n_bootstrap // max(1, 4 * n_jobs)))
    chunks = [seeds[i : i + chunk] for i in range(0, n_bootstrap, chunk)]
    bar = None
    if progress and n_bootstrap and not os.environ.get("CSLAB_BATCH"):
        from tqdm.auto import tqdm

        bar = tqdm(total=n_bootstrap, desc="bootstrap replicates", leave=False)
    records = []
    if n_jobs == 1:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):  # small matrices: BLAS threads cost more than they give
            for part in chunks:
                records += _one_replicate(model, part, gross_margin, account_cost)
                bar is not None and bar.update(len(part))
    else:
        from joblib import Parallel, delayed

        runs = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_one_replicate)(model, part, gross_margin, account_cost) for part in chunks
        )
        for part, run in zip(chunks, runs):
            records += run
            bar is not None and bar.update(len(part))
    if bar is not None:
        bar.close()
    boot = pd.DataFrame(records)
    boot.insert(0, "replicate", np.arange(len(boot)))
    if "cost" not in boot:
        boot["cost"] = cost
    if "value" not in boot:
        boot["value"] = np.nan
    boot["roi"] = (boot["value"] - boot["cost"]) / boot["cost"]
    n_failed = int((boot["failed"] != "").sum()) if len(boot) else 0

    def interval(column, estimate, ratio=False):
        if column not in boot or not len(boot):
            return float("nan"), float("nan")
        if ratio:  # hazard ratios: on the log scale, so a normal interval never goes below 0
            if estimate is None or not np.isfinite(float(estimate)) or float(estimate) <= 0:
                return float("nan"), float("nan")
            with np.errstate(divide="ignore", invalid="ignore"):
                low, high = bootstrap_interval(np.log(boot[column].astype(float)), float(np.log(estimate)), level)
            return float(np.exp(low)), float(np.exp(high))
        return bootstrap_interval(boot[column], estimate, level)

    roi_point = (point["total"] - cost) / cost if cost else float("nan")
    effects = model.summary.copy()
    for p in effects.index:
        effects.loc[p, "hr_low"], effects.loc[p, "hr_high"] = interval(f"hr_{p}", effects.loc[p, "hr"], True)
        effects.loc[p, "expansion_hr_low"], effects.loc[p, "expansion_hr_high"] = interval(
            f"expansion_hr_{p}", effects.loc[p, "expansion_hr"], True
        )
        effects.loc[p, "value"] = point["by_programme"].get(p, np.nan)
        effects.loc[p, "value_low"], effects.loc[p, "value_high"] = interval(f"value_{p}", effects.loc[p, "value"])
        models = boot.get(f"model_{p}")
        effects.loc[p, "propensity_model_share"] = (
            float(models.eq(effects.loc[p, "propensity_model"]).mean()) if models is not None else np.nan
        )
    if not n_bootstrap:  # no replicates: the model's interval (clustered by account) for the effects
        effects["hr_low"], effects["hr_high"] = effects["hr_low_model"], effects["hr_high_model"]
    rare = float(model._label[model._fit_rows].mean()) < 0.15  # as the point estimate's E-value
    for p in effects.index:  # the E-value of the interval the report shows
        low, high = float(effects.loc[p, "hr_low"]), float(effects.loc[p, "hr_high"])
        if np.isfinite([low, high]).all():
            effects.loc[p, "evalue_limit"] = e_value(float(effects.loc[p, "hr"]), low, high, rare_outcome=rare)["limit"]
    value_low, value_high = interval("value", point["total"])
    cost_low, cost_high = interval("cost", cost) if account_cost is not None else (cost, cost)
    roi_low, roi_high = interval("roi", roi_point)
    start, end = model.value_plan_["window"]
    window = f"{start.strftime('%Y-%m')} to {end.strftime('%Y-%m')}"
    return ROIEstimate(
        effects=effects,
        value=point["total"],
        value_low=value_low,
        value_high=value_high,
        retained=point["retained"],
        expansion=point["expansion"],
        cost=float(cost),
        cost_low=cost_low,
        cost_high=cost_high,
        roi=roi_point,
        roi_low=roi_low,
        roi_high=roi_high,
        replicates=boot,
        n_bootstrap=int(n_bootstrap),
        n_failed=n_failed,
        value_window=window,
        cost_window=window,
        horizon_months=model.value_plan_["H"],
        gross_margin=gross_margin,
        accounts_valued=point["accounts"],
        seconds=time.perf_counter() - started,
    )


# ------------------------------------------------------------------------------------------------
# Efficiency ratios, each with its formula
# ------------------------------------------------------------------------------------------------
