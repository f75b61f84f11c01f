"""Churn models and their explanations: who is at risk, and why.

* :class:`ChurnModel`: a regularised logistic regression (standardised, one-hot) or gradient-boosted
  trees (scikit-learn ``HistGradientBoostingClassifier`` on one-hot encoded categories, because shap
  does not read the native categorical splits correctly), calibrated when a held-out calibration
  check says the probabilities need it.
* Evaluation by time (:func:`time_split`: train on earlier observation dates, test on later ones,
  with a gap of one label horizon so no training label peeks into the test period), or stratified for
  a one-row-per-customer table: ROC AUC, top-decile lift, Brier score, calibration curve.
* SHAP (TreeExplainer on a bounded sample) summed back from one-hot columns to the original feature,
  with an additivity check that fails loudly; a Cox model (lifelines) as an interpretable complement;
  retention impact (change in predicted churn when a feature moves by one standard deviation).
* Health scores with Gainsight-style bands, and reasons in plain words for each account.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from cslab.data.panel import MISSING_LABEL
from cslab.errors import CSLabError, StatisticalWarning
from cslab.features import feature_columns, label_of

__all__ = [
    "ChurnModel",
    "time_split",
    "feasible_test_months",
    "stratified_split",
    "evaluate",
    "explain",
    "AdditivityError",
    "importance",
    "fit_cox",
    "retention_impact",
    "health_scores",
    "reasons",
    "band_summary",
    "at_risk_table",
    "expected_calibration_error",
    "MIN_EVENTS",
    "save_shared_model",
    "load_shared_model",
]

MIN_EVENTS = 30


class AdditivityError(CSLabError):
    """SHAP values plus the base value do not add up to the model's raw output."""


def time_split(
    dataset: pd.DataFrame, test_months: int = 6, horizon_months: int = 3
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on earlier observation dates, test on the last ``test_months`` of them.

    Training dates stop ``horizon_months`` before the first test date: a training label looks that
    far ahead, and must not see the test period.

    Examples
    --------
    >>> train, test = time_split(dataset, test_months=6, horizon_months=3)  # doctest: +SKIP
    """
    dates = np.sort(dataset["observation_date"].unique())
    if len(dates) <= test_months + horizon_months:
        raise ValueError(
            f"{len(dates)} observation dates: too few for {test_months} test months after a gap of {horizon_months}"
        )
    first_test = dates[-test_months]
    last_train = dates[-test_months - horizon_months]
    return (
        dataset[dataset["observation_date"] < last_train + np.timedelta64(1, "D")].copy(),
        dataset[dataset["observation_date"] >= first_test].copy(),
    )


def feasible_test_months(
    dataset: pd.DataFrame, test_months: int = 6, horizon_months: int = 3, min_train_dates: int = 2
) -> int:
    """The test months a book allows: ``test_months``, shortened so that at least
    ``min_train_dates`` observation dates stay for training before the ``horizon_months`` gap.

    A short book (a few months of history) still gets a time-ordered test, down to one month; 0
    means it has too few observation dates for any.

    Examples
    --------
    >>> dates = pd.date_range("2024-01-31", periods=8, freq="ME")
    >>> feasible_test_months(pd.DataFrame({"observation_date": dates}), 6, 3)
    4
    """
    n_dates = dataset["observation_date"].nunique() if len(dataset) else 0
    return int(max(0, min(test_months, n_dates - horizon_months - min_train_dates + 1)))


def stratified_split(
    dataset: pd.DataFrame, test_size: float = 0.25, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A stratified random split, for one-row-per-customer tables (no time to order by)."""
    train, test = train_test_split(dataset, test_size=test_size, stratify=dataset["label"], random_state=seed)
    return train.copy(), test.copy()


class ChurnModel:
    """A churn classifier on the kit's features, with one-hot encoding and optional calibration.

    Parameters
    ----------
    kind : {"trees", "logistic"}
        Gradient-boosted trees or a regularised logistic regression.
    calibrate : {"auto", True, False}
        "auto": hold out the latest 20% of training rows; if the raw probabilities miss the observed
        rates there by more than ``max_calibration_error`` (expected calibration error), fit an
        isotonic map on that hold-out. Otherwise the model is refitted on all training rows.
    max_calibration_error : float
    random_state : int

    Attributes
    ----------
    numeric_, categorical_ : list of str
        Original feature columns.
    feature_names_ : list of str
        Columns after encoding; ``original_`` maps each to its original feature.
    calibrated_ : bool
    calibration_error_ : float
        Expected calibration error of the raw model on the calibration hold-out.

    Examples
    --------
    >>> model = ChurnModel("trees").fit(train)  # doctest: +SKIP
    >>> model.predict_proba(test)[:3]  # doctest: +SKIP
    """

    def __init__(
        self, kind: str = "trees", calibrate="auto", max_calibration_error: float = 0.01, random_state: int = 0
    ):
        self.kind = kind
        self.calibrate = calibrate
        self.max_calibration_error = max_calibration_error
        self.random_state = random_state

    def _pipeline(self):
        # at most 20 columns per category: a free-text or id-like CRM column must not explode the design
        onehot = OneHotEncoder(
            handle_unknown="infrequent_if_exist", min_frequency=10, max_categories=20, sparse_output=False
        )
        if self.kind == "logistic":
            numeric = make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler())
            categorical = make_pipeline(SimpleImputer(strategy="constant", fill_value=MISSING_LABEL), onehot)
            estimator = LogisticRegression(C=0.5, max_iter=3000)
        elif self.kind == "trees":
            numeric = "passthrough"  # trees take missing values as they are
            categorical = make_pipeline(SimpleImputer(strategy="constant", fill_value=MISSING_LABEL), onehot)
            estimator = HistGradientBoostingClassifier(
                learning_rate=0.05,
                max_iter=250,
                max_leaf_nodes=15,
                min_samples_leaf=40,
                l2_regularization=1.0,
                random_state=self.random_state,
            )
        else:
            raise ValueError("kind must be 'trees' or 'logistic'")
        encode = ColumnTransformer(
            [("num", numeric, self.numeric_), ("cat", categorical, self.categorical_)], verbose_feature_names_out=False
        )
        return encode, estimator

    def _fit_raw(self, frame: pd.DataFrame):
        encode, estimator = self._pipeline()
        X = encode.fit_transform(
            frame[self.numeric_ + self.categorical_].astype({c: object for c in self.categorical_})
        )
        estimator.fit(X, frame["label"].to_numpy())
        return encode, estimator

    def fit(self, frame: pd.DataFrame) -> ChurnModel:
        """Fit on a dataset with features and ``label`` (rows ordered in time where it matters)."""
        self.numeric_, self.categorical_ = feature_columns(frame)
        self.numeric_ = [c for c in self.numeric_ if frame[c].notna().any()]
        if frame["label"].sum() < MIN_EVENTS:
            warnings.warn(
                f"{int(frame['label'].sum())} churn events in training: fewer than {MIN_EVENTS}, the model is fragile",
                StatisticalWarning,
                stacklevel=2,
            )
        self.calibrated_, self.calibration_error_, self._iso = False, float("nan"), None
        if self.calibrate:
            order = (
                frame["observation_date"].rank(method="first")
                if "observation_date" in frame
                else pd.Series(np.random.default_rng(self.random_state).random(len(frame)), index=frame.index)
            )
            holdout = order > order.quantile(0.8)
            fitting, checking = frame[~holdout], frame[holdout]
            if checking["label"].nunique() == 2 and fitting["label"].nunique() == 2:
                self._encode, self._estimator = self._fit_raw(fitting)
                raw = self._raw_proba(checking)
                self.calibration_error_ = expected_calibration_error(checking["label"], raw)
                if self.calibrate is True or self.calibration_error_ > self.max_calibration_error:
                    self._iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(raw, checking["label"])
                    self.calibrated_ = True
        if not self.calibrated_:
            self._encode, self._estimator = self._fit_raw(frame)
        self.feature_names_ = list(self._encode.get_feature_names_out())
        self.original_ = self._original_names()
        return self

    def _original_names(self) -> list[str]:
        """Each encoded column's original feature (one-hot and missing-indicator columns summed back)."""
        out = []
        for name in self.feature_names_:
            if name in self.numeric_:
                out.append(name)
            elif name.startswith("missingindicator_"):
                out.append(name[len("missingindicator_") :])
            else:
                out.append(
                    next(c for c in sorted(self.categorical_, key=len, reverse=True) if name.startswith(f"{c}_"))
                )
        return out

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Encoded feature matrix."""
        return self._encode.transform(
            frame[self.numeric_ + self.categorical_].astype({c: object for c in self.categorical_})
        )

    def _raw_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self._estimator.predict_proba(self.transform(frame))[:, 1]

    def decision_function(self, frame: pd.DataFrame) -> np.ndarray:
        """Raw model output (log-odds), what SHAP values add up to."""
        return self._estimator.decision_function(self.transform(frame))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Probability of churning within the horizon (calibrated when calibration was needed)."""
        raw = self._raw_proba(frame)
        return self._iso.predict(raw) if self._iso is not None else raw


def expected_calibration_error(y, p, bins: int = 10) -> float:
    """Mean absolute gap between predicted and observed rates over quantile bins, weighted by size."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    gaps = [
        abs(y[which == b].mean() - p[which == b].mean()) * (which == b).mean()
        for b in range(len(edges) - 1)
        if (which == b).any()
    ]
    return float(np.sum(gaps))


def evaluate(y, p, bins: int = 10) -> dict:
    """ROC AUC, top-decile lift, Brier score and the calibration curve of predicted probabilities.

    Top-decile lift = churn rate among the 10% highest scores / overall churn rate.
    """
    y, p = np.asarray(y, int), np.asarray(p, float)
    top = p >= np.quantile(p, 0.9)
    frac, mean = calibration_curve(y, p, n_bins=bins, strategy="quantile")
    return {
        "auc": float(roc_auc_score(y, p)),
        "top_decile_lift": float(y[top].mean() / y.mean()),
        "brier": float(brier_score_loss(y, p)),
        "base_rate": float(y.mean()),
        "n": int(len(y)),
        "calibration": pd.DataFrame({"predicted": mean, "observed": frac}),
        "calibration_error": expected_calibration_error(y, p, bins),
    }


def explain(model: ChurnModel, frame: pd.DataFrame, sample: int = 1000, seed: int = 0) -> dict:
    """SHAP values of the trees model on a bounded sample, summed back to the original features.

    The additivity check (SHAP values + base value = raw output, to 1e-6) runs every time and raises
    :class:`AdditivityError` when it fails.

    Returns
    -------
    dict
        ``values`` (DataFrame: rows x original features, log-odds contributions), ``encoded`` (the
        same per encoded column), ``base_value``, ``rows`` (the sampled rows of ``frame``).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # shap's import warns about notebook progress bars
        import shap

    if model.kind != "trees":
        raise ValueError("explain() uses TreeExplainer: pass the trees model")
    rows = frame.sample(n=min(sample, len(frame)), random_state=seed) if len(frame) > sample else frame
    X = model.transform(rows)
    explainer = shap.TreeExplainer(model._estimator)
    values = np.asarray(explainer.shap_values(X))
    if values.ndim == 3:  # some shap versions return one array per class
        values = values[..., 1] if values.shape[-1] == 2 else values[1]
    base = float(np.ravel(explainer.expected_value)[-1])
    raw = model._estimator.decision_function(X)
    gap = np.abs(values.sum(axis=1) + base - raw).max()
    if not gap < 1e-6:
        raise AdditivityError(f"SHAP values + base value differ from the model's output by {gap:.2e}")
    encoded = pd.DataFrame(values, columns=model.feature_names_, index=rows.index)
    summed = encoded.T.groupby(np.array(model.original_), sort=False).sum().T
    return {"values": summed, "encoded": encoded, "base_value": base, "rows": rows, "additivity_gap": float(gap)}


def importance(shap_values: pd.DataFrame) -> pd.Series:
    """Mean absolute SHAP value per original feature, most important first."""
    return shap_values.abs().mean().sort_values(ascending=False)


def fit_cox(
    train: pd.DataFrame,
    duration_col: str = "months_to_event",
    event_col: str = "label",
    cluster_col: str | None = "account_id",
    penalizer: float = 0.01,
    sample: int = 8000,
    seed: int = 0,
):
    """A Cox proportional-hazards model on the same features: hazard ratios per standard deviation.

    Numeric features are median-imputed and standardised (hazard ratio per SD); categories are
    one-hot encoded against their most common level; constant and duplicate columns are dropped; a
    small penalizer keeps collinear data from failing. With several observation dates per account,
    standard errors are clustered by account (robust sandwich estimator).

    Returns
    -------
    (fitter, design) : the fitted ``CoxPHFitter`` and a function turning a dataset into its design
    matrix (for concordance on test rows). ``fitter.ph_note`` says whether the proportional-hazards
    check (on a sample) flagged any feature.
    """
    from lifelines import CoxPHFitter
    from lifelines.statistics import proportional_hazard_test

    rows = train.sample(n=min(sample, len(train)), random_state=seed) if len(train) > sample else train
    numeric, categorical = feature_columns(rows)
    numeric = [c for c in numeric if rows[c].notna().any()]
    centre, scale = rows[numeric].median(), rows[numeric].std().replace(0, np.nan)
    levels = {c: rows[c].astype(str).value_counts().index.tolist() for c in categorical}

    def design(frame: pd.DataFrame) -> pd.DataFrame:
        out = ((frame[numeric].fillna(centre) - centre) / scale).fillna(0.0)
        for c in categorical:
            values = frame[c].astype(str)
            for level in levels[c][1:21]:
                out[f"{c}={level}"] = (values == level).astype(float)
        return out

    X = design(rows)
    X = X.loc[:, X.std() > 0]
    X = X.T.drop_duplicates().T  # identical columns make the Hessian singular
    columns = list(X.columns)
    data = X.assign(_duration=rows[duration_col].to_numpy(), _event=rows[event_col].to_numpy())
    if cluster_col:
        data["_cluster"] = rows[cluster_col].to_numpy()
    fitter = CoxPHFitter(penalizer=penalizer)
    fitter.fit(
        data,
        duration_col="_duration",
        event_col="_event",
        cluster_col="_cluster" if cluster_col else None,
        robust=bool(cluster_col),
    )
    fitter.ph_note = ""
    try:
        # lifelines tests on the training frame itself (it reuses the fitted residuals)
        test = proportional_hazard_test(fitter, data, time_transform="rank")
        failing = test.summary.index[test.summary["p"] < 0.01].tolist()
        if failing:
            fitter.ph_note = (
                "the proportional-hazards check flags "
                + ", ".join(map(str, failing[:5]))
                + ": their hazard ratios are averages over time"
            )
    except Exception as exc:  # noqa: BLE001 - the check is advisory; say it could not run
        fitter.ph_note = f"proportional-hazards check not run ({type(exc).__name__})"
    return fitter, (lambda frame: design(frame)[columns])


def retention_impact(
    model: ChurnModel, frame: pd.DataFrame, features: list[str] | None = None, sample: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Change in mean predicted churn probability when a feature moves by one standard deviation.

    For a category: the mean probability with every account set to each level; the impact is the
    highest minus the lowest, with both levels named. Model-based and associational, not causal.
    """
    rows = frame.sample(n=min(sample, len(frame)), random_state=seed) if len(frame) > sample else frame
    base = model.predict_proba(rows).mean()
    out = []
    for feature in features or model.numeric_ + model.categorical_:
        if feature in model.numeric_:
            sd = rows[feature].std()
            if not np.isfinite(sd) or sd == 0:
                continue
            moved = rows.assign(**{feature: rows[feature] + sd})
            out.append(
                {
                    "feature": feature,
                    "change": float(model.predict_proba(moved).mean() - base),
                    "move": f"+1 SD ({sd:.3g})",
                }
            )
        elif feature in model.categorical_:
            levels = rows[feature].dropna().astype(str).value_counts().index[:8]
            means = {lv: model.predict_proba(rows.assign(**{feature: lv})).mean() for lv in levels}
            if len(means) > 1:
                hi, lo = max(means, key=means.get), min(means, key=means.get)
                out.append({"feature": feature, "change": float(means[hi] - means[lo]), "move": f"{lo} -> {hi}"})
    table = pd.DataFrame(out)
    table["baseline"] = float(base)
    return table.sort_values("change", key=np.abs, ascending=False, ignore_index=True)


def health_scores(p_churn, bands: tuple[float, float] = (85, 95)) -> pd.DataFrame:
    """Health score 0-100 = 100 x probability of staying, banded red / yellow / green.

    Parameters
    ----------
    bands : (red_below, green_from)
        Scores below the first are red, from the second on green, yellow between.
    """
    score = np.round(100 * (1 - np.asarray(p_churn, float)), 0)
    band = np.where(score < bands[0], "red", np.where(score < bands[1], "yellow", "green"))
    return pd.DataFrame({"health_score": score.astype(int), "band": band})


_NO_HISTORY = {"tenure_months", "months_to_renewal", "billing_period_months", "employees"}
_PERCENT = ("seat_utilisation", "outcomes_achieved_share", "_trend", "mrr_change_3m")


def _format(feature: str, value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "none recorded"
    if isinstance(value, str):
        return value
    if feature.endswith("_trend") or feature == "mrr_change_3m":
        return f"{value:+.0%} vs the 3 months before" if feature.endswith("_trend") else f"{value:+.0%}"
    if any(feature.startswith(p) or feature.endswith(p) for p in _PERCENT):
        return f"{value:.0%}"
    return f"{value:,.1f}".rstrip("0").rstrip(".") if isinstance(value, float) else f"{value:,}"


def reasons(
    shap_values: pd.DataFrame, rows: pd.DataFrame, previous: pd.DataFrame | None = None, top: int = 3
) -> pd.Series:
    """The top reasons behind each account's risk, in plain words.

    Each reason names a feature that raises the account's risk (largest positive SHAP contributions),
    with its value, and where ``previous`` holds the same account's features three months earlier,
    where it came from: "seat utilisation 22%, down from 61% (raises risk)".
    """
    prev = previous.set_index("account_id") if previous is not None else None
    out = {}
    for idx, contributions in shap_values.iterrows():
        row = rows.loc[idx]
        raising = contributions[contributions > 0].sort_values(ascending=False).head(top)
        parts = []
        for feature in raising.index:
            text = f"{label_of(feature)} {_format(feature, row.get(feature))}"
            if feature == "months_to_renewal":
                value = row.get(feature)
                text = (
                    "renewal due this month"
                    if value == 0
                    else f"renewal in {value:.0f} month" + ("s" if value != 1 else "")
                )
            elif (
                prev is not None
                and row["account_id"] in prev.index
                and feature in prev.columns
                and feature not in _NO_HISTORY
                and not feature.endswith("_trend")
                and pd.api.types.is_number(row.get(feature))
            ):
                before = prev.at[row["account_id"], feature]
                now = row.get(feature)
                if pd.notna(before) and pd.notna(now) and _format(feature, before) != _format(feature, now):
                    text += f", {'down' if now < before else 'up'} from {_format(feature, before)}"
            parts.append(text + " (raises risk)")
        out[idx] = "; ".join(parts) if parts else "no single factor stands out"
    return pd.Series(out)


def band_summary(health: pd.DataFrame, arr: pd.Series | None = None) -> pd.DataFrame:
    """Accounts (and ARR, when known) in each health band, as counts and shares."""
    frame = health.assign(arr=np.asarray(arr, float) if arr is not None else np.nan)
    out = frame.groupby("band").agg(n_accounts=("band", "size"), arr=("arr", "sum"))
    out = out.reindex(["red", "yellow", "green"]).fillna(0)
    out["share_accounts"] = out["n_accounts"] / out["n_accounts"].sum()
    total = out["arr"].sum()
    out["share_arr"] = out["arr"] / total if total else np.nan
    out["n_accounts"] = out["n_accounts"].astype(int)
    return out


def at_risk_table(
    scoring: pd.DataFrame,
    p_churn,
    health: pd.DataFrame,
    why: pd.Series,
    extra: tuple[str, ...] = ("name", "segment", "plan", "csm_id"),
) -> pd.DataFrame:
    """Accounts ranked by ARR at risk (ARR x churn probability), or by probability without ARR.

    Columns: ``account_id``, the ``extra`` attributes present, ``arr``, ``churn_probability``,
    ``arr_at_risk``, ``health_score``, ``band``, ``top_reasons``.
    """
    table = scoring[["account_id"] + [c for c in extra if c in scoring]].copy()
    table["arr"] = scoring["arr"].to_numpy() if "arr" in scoring else np.nan
    table["churn_probability"] = np.asarray(p_churn, float)
    table["arr_at_risk"] = table["arr"] * table["churn_probability"]
    table["health_score"] = health["health_score"].to_numpy()
    table["band"] = health["band"].to_numpy()
    table["top_reasons"] = why.reindex(scoring.index).fillna("").to_numpy()
    key = "arr_at_risk" if table["arr"].notna().any() else "churn_probability"
    return table.sort_values([key, "churn_probability"], ascending=False, ignore_index=True)


def save_shared_model(work_dir: str, name: str, model, context: dict) -> Path | None:
    """Leave a fitted model in an audit's working folder for a later notebook to reuse.

    The model is written with joblib together with ``context`` (what it was fitted on: data,
    analysis date, design; :func:`cslab.churn_report.model_context`), so the reader can tell whether
    it fits its own question. Nothing is written when ``work_dir`` is empty (a notebook run alone).

    Returns
    -------
    Path or None
        ``<work_dir>/<name>.joblib``.

    Examples
    --------
    >>> save_shared_model("", "churn_model", None, {})  # no working folder: nothing written
    """
    if not work_dir:
        return None
    import joblib

    path = Path(work_dir) / f"{name}.joblib"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    joblib.dump({"model": model, "context": context}, partial)
    partial.replace(path)  # a reader never sees half a file
    return path


def load_shared_model(work_dir: str, name: str, context: dict) -> tuple[object | None, str]:
    """The model :func:`save_shared_model` left in ``work_dir``, if it was fitted on the same context.

    Returns
    -------
    (model, why)
        The model, or None with the reason it cannot be reused ("" when there is no working folder
        or no model in it: nothing to explain).

    Examples
    --------
    >>> load_shared_model("", "churn_model", {})
    (None, '')
    """
    path = Path(work_dir) / f"{name}.joblib" if work_dir else None
    if path is None or not path.exists():
        return None, ""
    import joblib

    try:
        saved = joblib.load(path)
    except Exception as exc:  # noqa: BLE001 - an unreadable file means refitting, said plainly
        return None, f"the saved model could not be read ({type(exc).__name__})"
    differing = sorted(k for k in set(context) | set(saved["context"]) if context.get(k) != saved["context"].get(k))
    if differing:
        return None, "the saved model was fitted with another " + ", ".join(differing)
    return saved["model"], ""
