"""As-of feature snapshots for modelling churn and expansion, without leakage.

An *observation date* is a month-end snapshot. For each one, the accounts active on it get features
computed only from data dated up to that snapshot (the monthly panel already cuts every table at each
month's snapshot), and a label from the months after it: churned within the next ``horizon_months``.
Observation dates stop ``horizon_months`` before ``as_of``, so every label is fully observed; the same
code builds the *scoring set* of accounts active on ``as_of`` (features only, no label).

Feature names (the kit's shared vocabulary, see ``data/README.md``): ``tenure_months``, ``mrr``,
``mrr_change_3m``, ``seats``, ``seat_utilisation``, ``usage_<metric>`` and ``usage_<metric>_trend``,
``tickets_90d``, ``csat_90d``, ``cs_<type>_count``, ``days_since_cs_activity``,
``outcomes_achieved_share``, ``months_to_renewal`` and the account and plan attributes. "Last 90 days"
is the last three monthly snapshots.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cslab.data.io import CSData
from cslab.data.roles import usage_column

__all__ = [
    "build_dataset",
    "snapshot_dataset",
    "feature_columns",
    "churn_by_decile",
    "FEATURE_LABELS",
    "label_of",
    "NON_FEATURES",
    "TARGETS",
]

# Columns of the dataset that are not features.
NON_FEATURES = {
    "account_id",
    "observation_date",
    "label",
    "arr",
    "name",
    "csm_id",
    "signup_date",
    "cohort_month",
    "months_to_event",
    "event",
    "duration",
}

FEATURE_LABELS = {
    "tenure_months": "tenure (months)",
    "mrr": "MRR",
    "mrr_change_3m": "MRR change over 3 months",
    "seats": "seats",
    "seat_utilisation": "seat utilisation",
    "tickets_90d": "tickets (90 days)",
    "csat_90d": "CSAT (90 days)",
    "days_since_cs_activity": "days since last CS activity",
    "outcomes_achieved_share": "committed outcomes achieved",
    "months_to_renewal": "months to renewal",
    "billing_period_months": "billing period (months)",
    "employees": "employees",
}


def label_of(feature: str) -> str:
    """A feature's name in plain words (``usage_sessions_trend`` -> ``sessions trend``)."""
    if feature in FEATURE_LABELS:
        return FEATURE_LABELS[feature]
    if feature.startswith("usage_"):
        name = feature[len("usage_") :]
        return name.replace("_trend", " trend").replace("_", " ")
    if feature.startswith("cs_") and feature.endswith("_count"):
        return feature[3:-6].replace("_", " ") + " sessions"
    if feature.endswith("_days"):  # a date attribute as its age (created_date_days)
        return feature[:-5].replace("_", " ") + " (days before)"
    return feature.replace("_", " ")


def _positions(panel: pd.DataFrame) -> np.ndarray:
    """Each row's place among its account's rows (0 for the first); rows grouped by account."""
    account = panel["account_id"].to_numpy()
    first = np.r_[True, account[1:] != account[:-1]] if len(account) else np.zeros(0, dtype=bool)
    index = np.arange(len(account))
    return index - np.maximum.accumulate(np.where(first, index, 0))


def _window(values: np.ndarray, positions: np.ndarray, window: int, how: str = "mean", shift: int = 0) -> np.ndarray:
    """Per-account rolling mean or sum of ``values`` over the last ``window`` rows, optionally
    lagged by ``shift`` rows; missing values are skipped, a window without any gives ``NaN``
    (pandas' ``rolling(window, min_periods=1)``). The window is a few months, so it is the sum of
    that many shifted arrays: vectorised over every account at once, no per-group pass.
    """
    total = np.zeros(len(values))
    count = np.zeros(len(values))
    for k in range(shift, shift + window):
        shifted = np.full(len(values), np.nan)
        shifted[k:] = values[: len(values) - k] if k else values
        shifted[positions < k] = np.nan  # the row k back belongs to another account
        seen = ~np.isnan(shifted)
        total += np.where(seen, shifted, 0.0)
        count += seen
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / count if how == "mean" else total
    return np.where(count > 0, out, np.nan)


def _rolling(
    panel: pd.DataFrame,
    column: str,
    window: int,
    how: str = "mean",
    shift: int = 0,
    positions: np.ndarray | None = None,
) -> pd.Series:
    """Per-account rolling statistic over monthly rows (grouped by account, ordered by month),
    optionally lagged."""
    positions = _positions(panel) if positions is None else positions
    values = panel[column].to_numpy(dtype=float)
    return pd.Series(_window(values, positions, window, how, shift), index=panel.index)


def _in_panel_order(panel: pd.DataFrame) -> bool:
    """Whether rows are ordered by account, then month, with the index 0, 1, 2, ..."""
    if not panel.index.equals(pd.RangeIndex(len(panel))):
        return False
    account, month = panel["account_id"].to_numpy(), panel["month"].to_numpy()
    same = account[1:] == account[:-1]
    return bool(np.all((account[1:] > account[:-1]) | (same & (month[1:] > month[:-1]))))


def _features_from_panel(panel: pd.DataFrame) -> pd.DataFrame:
    """Features of every account-month of the panel, each using only rows up to that month."""
    if not _in_panel_order(panel):  # cslab.panel's own order needs neither a sort nor a copy
        panel = panel.sort_values(["account_id", "month"], kind="stable").reset_index(drop=True)
    out = panel[["account_id", "month", "tenure_months", "mrr", "seats"]].copy()
    out["tenure_months"] = out["tenure_months"].astype(float)
    mrr_3 = panel.groupby("account_id", sort=False)["mrr"].shift(3)
    out["mrr_change_3m"] = np.where(mrr_3 > 0, panel["mrr"] / mrr_3 - 1, np.nan)
    usage = [c for c in panel.columns if c.startswith("usage_")]
    positions = _positions(panel)
    for column in usage:
        recent = _rolling(panel, column, 3, positions=positions)
        before = _rolling(panel, column, 3, shift=3, positions=positions)
        out[column] = recent
        out[f"{column}_trend"] = np.where(before > 0, recent / before - 1, np.nan)
    users = usage_column(panel, "active_users")  # WAU, MAU, active seats...: the data's own name
    if users is not None and panel["seats"].notna().any():
        out["seat_utilisation"] = panel[users] / panel["seats"].where(panel["seats"] > 0)
    if "tickets" in panel:
        out["tickets_90d"] = _rolling(panel, "tickets", 3, how="sum", positions=positions)
        if "csat" in panel:
            # CSAT over the window, each month's mean weighted by its tickets
            weight = panel["tickets"].where(panel["csat"].notna(), 0).to_numpy(dtype=float)
            rated = _window(panel["csat"].fillna(0).to_numpy(dtype=float) * weight, positions, 3, how="sum")
            count = _window(weight, positions, 3, how="sum")
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = np.where(count > 0, rated / count, np.nan)
            out["csat_90d"] = ratio
    starts = np.arange(len(panel)) - positions  # each row's account's first row
    for column in [c for c in panel.columns if c.startswith("cs_")]:
        if not pd.api.types.is_integer_dtype(panel[column]):  # counts with gaps: pandas skips them
            out[f"{column}_count"] = panel.groupby("account_id", sort=False)[column].cumsum()
            continue
        # running count to date within the account: the total so far minus the total before the
        # account's first row (whole counts, so exact)
        total = panel[column].to_numpy().cumsum()
        before = np.where(starts > 0, total[np.maximum(starts - 1, 0)], 0)
        out[f"{column}_count"] = total - before
    if "outcomes_committed" in panel:
        out["outcomes_achieved_share"] = panel["outcomes_achieved"] / panel["outcomes_committed"].where(
            panel["outcomes_committed"] > 0
        )
    if "billing_period_months" in panel:
        period = panel["billing_period_months"].fillna(1).clip(lower=1)
        out["billing_period_months"] = panel["billing_period_months"]
        out["months_to_renewal"] = (period - panel["tenure_months"].astype(float) % period) % period
    for column in ("name", "csm_id", "plan", "segment", "industry", "region", "employees"):
        if column in panel:
            out[column] = panel[column]
    known = set(out.columns) | {
        "movement",
        "movement_mrr",
        "active",
        "lifetime",
        "tickets",
        "csat",
        "outcomes_committed",
        "outcomes_achieved",
        "cohort_month",
    }
    extra = [
        c for c in panel.columns if c not in known and c not in NON_FEATURES and not c.startswith(("usage_", "cs_"))
    ]
    snapshot = panel["month"] + pd.offsets.MonthEnd(0)
    for column in extra:  # any other account attribute becomes a feature
        if pd.api.types.is_datetime64_any_dtype(panel[column]):
            # a date attribute as its age in days at the snapshot; a date still to come is not known then
            days = (snapshot - panel[column]).dt.days.astype(float)
            out[f"{column}_days"] = days.where(days >= 0)
        else:
            out[column] = panel[column]
    out["active"] = panel["active"].to_numpy()
    out["churn_now"] = panel["movement"].eq("churn").to_numpy()
    out["expansion_now"] = panel["movement"].eq("expansion").to_numpy()
    return out


def _days_since_activity(data: CSData, rows: pd.DataFrame) -> pd.Series:
    """Days from each account's last CS activity (on or before the observation date) to that date."""
    acts = data.cs_activities[["account_id", "date"]].dropna().sort_values("date")
    left = rows[["account_id", "observation_date"]].reset_index().sort_values("observation_date")
    merged = pd.merge_asof(
        left,
        acts.rename(columns={"date": "last_activity"}),
        left_on="observation_date",
        right_on="last_activity",
        by="account_id",
        direction="backward",
    )
    days = (merged["observation_date"] - merged["last_activity"]).dt.days
    return pd.Series(days.to_numpy(), index=merged["index"].to_numpy()).sort_index()


#: The events :func:`build_dataset` can label: the panel movement each one stands for.
TARGETS = {"churn": "churn", "expansion": "expansion"}


def build_dataset(
    data: CSData,
    panel: pd.DataFrame,
    horizon_months: int = 3,
    observation_step: int = 1,
    min_tenure_months: int = 0,
    target: str = "churn",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The modelling set (observations with labels) and the scoring set (accounts active on ``as_of``).

    Parameters
    ----------
    data : CSData
        The loaded tables (for the dates of CS activities).
    panel : DataFrame
        :func:`cslab.panel` built with the analysis date ``as_of``.
    horizon_months : int
        Label: the event happened within this many months after the observation date.
    observation_step : int
        Months between observation dates (1: every month-end).
    min_tenure_months : int
        Skip observations of accounts younger than this.
    target : {"churn", "expansion"}
        The event labelled: the panel movement ``churn`` (default) or ``expansion`` (MRR up on the
        month before, for an account active in both months) in one of the ``horizon_months`` months
        after the observation date. Observations, features and the scoring set are the same for
        both; an account that churns before expanding counts as not expanding.

    Returns
    -------
    (dataset, scoring) : tuple of DataFrame
        ``account_id``, ``observation_date`` (month-end snapshot), the features, ``arr`` (12 x MRR)
        and, in ``dataset``, ``label`` (1 = the event within the horizon) and ``months_to_event``
        (months until the first such event, 1..horizon; the horizon when there is none).

    Examples
    --------
    >>> dataset, scoring = build_dataset(data, cslab.panel(data), horizon_months=3)  # doctest: +SKIP
    >>> upsell, _ = build_dataset(data, cslab.panel(data), target="expansion")  # doctest: +SKIP
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {sorted(TARGETS)}, not {target!r}")
    as_of = panel.attrs.get("as_of", panel["month"].max() + pd.offsets.MonthEnd(0))
    features = _features_from_panel(panel)
    months = np.sort(features["month"].unique())
    last = pd.Timestamp(months[-1])
    # label: the event in any of the next `horizon_months` months
    ahead = features.groupby("account_id", sort=False)[f"{TARGETS[target]}_now"]
    future = sum(ahead.shift(-k, fill_value=False).astype(int) for k in range(1, horizon_months + 1))
    features["label"] = (future > 0).astype(int)
    # months until the first event (1..horizon), or the horizon when none: for survival models
    first = pd.Series(horizon_months, index=features.index, dtype=float)
    for k in range(horizon_months, 0, -1):
        first = first.where(~ahead.shift(-k, fill_value=False).astype(bool), k)
    features["months_to_event"] = first
    snapshot = (features["month"] + pd.offsets.MonthEnd(0)).where(features["month"] < last, pd.Timestamp(as_of))
    features.insert(1, "observation_date", snapshot)
    features["arr"] = 12 * features["mrr"]
    eligible = features["active"] & (features["tenure_months"] >= min_tenure_months)
    cutoff = last - pd.DateOffset(months=horizon_months)
    months_before_last = (features["month"].dt.year * 12 + features["month"].dt.month) - (last.year * 12 + last.month)
    step_ok = months_before_last % observation_step == 0
    # Rows and columns are selected at once (one copy each); the shallow copy only makes the frames
    # their own (no chained-assignment warning), and the index is renumbered in place.
    keep = [c for c in features.columns if c not in ("month", "active", "churn_now", "expansion_now")]
    dataset = features.loc[eligible & (features["month"] <= cutoff) & step_ok, keep].copy(deep=False)
    scoring = features.loc[
        eligible & (features["month"] == last), [c for c in keep if c not in ("label", "months_to_event")]
    ].copy(deep=False)
    for frame in (dataset, scoring):
        frame.index = pd.RangeIndex(len(frame))
        if data.cs_activities is not None:
            frame["days_since_cs_activity"] = _days_since_activity(data, frame)
    return dataset, scoring


def feature_columns(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Numeric and categorical feature columns of a dataset (ids, dates, label, ARR excluded)."""
    columns = [c for c in frame.columns if c not in NON_FEATURES]
    numeric = [
        c for c in columns if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    ]
    categorical = [c for c in columns if c not in numeric]
    return numeric, categorical


def churn_by_decile(dataset: pd.DataFrame, feature: str, bins: int = 10) -> pd.DataFrame:
    """Churn rate by decile of a numeric feature, with the count in each bin (metric cohorts).

    Missing values form their own bin, so "no CSAT given" is visible rather than dropped.

    Examples
    --------
    >>> churn_by_decile(dataset, "seat_utilisation")  # doctest: +SKIP
    """
    values = dataset[feature]
    bins_ = pd.qcut(values, q=bins, duplicates="drop")
    keys = bins_.astype(str).where(values.notna(), "missing")
    table = dataset.groupby(keys, sort=False)["label"].agg(churn_rate="mean", n="size")
    order = [str(c) for c in bins_.cat.categories] + (["missing"] if values.isna().any() else [])
    table = table.reindex([o for o in order if o in table.index])
    table.index.name = feature
    return table.reset_index()


def snapshot_dataset(customers: pd.DataFrame) -> pd.DataFrame:
    """A one-row-per-customer table as a modelling set: ``label`` = the churn flag.

    The duration (tenure) is kept for survival models but is not a feature: for a churned customer
    it is the time of churn itself, so a classifier would learn the answer from it.
    """
    out = customers.rename(columns={"event": "label"}).copy()
    out.insert(1, "observation_date", pd.NaT)
    out["label"] = out["label"].astype(int)
    return out
