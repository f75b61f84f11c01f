"""Churn drivers on planted truth, SHAP additivity, Cox, health bands, and the public table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

import cslab
from cslab import drivers, features
from tests.conftest import PYSURVIVAL


@pytest.fixture(scope="module")
def planted(demo_book):
    _, folder = demo_book
    data = cslab.load(folder)
    panel = cslab.panel(data)
    dataset, scoring = features.build_dataset(data, panel, horizon_months=3)
    train, test = drivers.time_split(dataset, test_months=6, horizon_months=3)
    model = drivers.ChurnModel("trees").fit(train)
    truth = json.loads((folder / "truth.json").read_text())
    truth_panel = pd.read_csv(folder / "truth_panel.csv", parse_dates=["month"])
    return {
        "train": train,
        "test": test,
        "model": model,
        "truth": truth,
        "truth_panel": truth_panel,
        "scoring": scoring,
        "dataset": dataset,
    }


def test_time_split_leaves_a_gap_of_one_horizon(planted):
    train, test = planted["train"], planted["test"]
    gap = (test["observation_date"].min().to_period("M") - train["observation_date"].max().to_period("M")).n
    assert gap == 3 and test["observation_date"].nunique() == 6


def test_top_shap_drivers_are_planted_ones(planted):
    explained = drivers.explain(planted["model"], planted["test"], sample=1000)
    top3 = drivers.importance(explained["values"]).index[:3].tolist()
    strongest5 = planted["truth"]["churn_drivers"][:5]
    assert set(top3) <= set(strongest5), (top3, strongest5)


def test_auc_close_to_the_true_probabilities(planted):
    test, truth = planted["test"], planted["truth_panel"]
    rows = test.assign(month=test["observation_date"].dt.to_period("M").dt.to_timestamp())
    stay = np.ones(len(rows))
    for k in (1, 2, 3):  # true probability of churning in one of the next three months
        ahead = truth.assign(month=truth["month"] - pd.DateOffset(months=k))
        p = rows[["account_id", "month"]].merge(ahead, on=["account_id", "month"], how="left")["p_churn"]
        stay *= 1 - p.fillna(0).to_numpy()
    best = roc_auc_score(rows["label"], 1 - stay)
    auc = roc_auc_score(test["label"], planted["model"].predict_proba(test))
    assert abs(auc - best) < 0.03, (auc, best)
    assert auc > 0.8


def test_shap_additivity_is_checked_every_time(planted, monkeypatch):
    model = planted["model"]
    explained = drivers.explain(model, planted["test"], sample=200)
    assert explained["additivity_gap"] < 1e-6
    assert len(explained["values"]) == 200  # bounded sample
    assert "segment" in explained["values"] and not any("segment_" in c for c in explained["values"])
    real = model._estimator.decision_function
    monkeypatch.setattr(model._estimator, "decision_function", lambda X: real(X) + 0.5)
    with pytest.raises(drivers.AdditivityError):
        drivers.explain(model, planted["test"], sample=50)


def test_calibrated_probabilities_and_logistic_baseline(planted):
    train, test = planted["train"], planted["test"]
    logistic = drivers.ChurnModel("logistic").fit(train)
    ev = drivers.evaluate(test["label"], logistic.predict_proba(test))
    assert ev["auc"] > 0.8 and ev["top_decile_lift"] > 3
    trees = drivers.evaluate(test["label"], planted["model"].predict_proba(test))
    assert trees["calibration_error"] < 0.02
    assert trees["brier"] < trees["base_rate"] * (1 - trees["base_rate"])  # beats the base rate


def test_cox_hazard_ratios_and_concordance(planted):
    from lifelines.utils import concordance_index

    train, test = planted["train"].copy(), planted["test"]
    train["constant"] = 1.0
    train["copy_of_seats"] = train["seats"]  # a duplicate column must not break the fit
    cox, design = drivers.fit_cox(train, sample=5000)
    hr = cox.summary["exp(coef)"]
    assert "constant" not in hr.index and np.isfinite(hr).all()
    assert hr["seat_utilisation"] < 1 and hr["tickets_90d"] > 1  # planted directions
    test = test.assign(constant=1.0, copy_of_seats=test["seats"])
    c = concordance_index(test["months_to_event"], -cox.predict_partial_hazard(design(test)), test["label"])
    assert c > 0.75


def test_retention_impact_signs_follow_the_truth(planted):
    impact = drivers.retention_impact(
        planted["model"], planted["test"], features=["seat_utilisation", "tickets_90d", "segment"]
    ).set_index("feature")
    assert impact.loc["seat_utilisation", "change"] < 0 < impact.loc["tickets_90d", "change"]
    assert " -> " in impact.loc["segment", "move"]


def test_health_bands_and_reasons(planted):
    scoring = planted["scoring"]
    p = planted["model"].predict_proba(scoring)
    health = drivers.health_scores(p, bands=(85, 95))
    assert health["health_score"].between(0, 100).all()
    assert (health.loc[health["band"].eq("red"), "health_score"] < 85).all()
    assert (health.loc[health["band"].eq("green"), "health_score"] >= 95).all()
    explained = drivers.explain(planted["model"], scoring.iloc[:50], sample=50)
    why = drivers.reasons(explained["values"], scoring.iloc[:50])
    assert why.str.contains(r"\(raises risk\)").mean() > 0.9
    table = drivers.at_risk_table(scoring.iloc[:50], p[:50], health.iloc[:50], why)
    assert table["arr_at_risk"].is_monotonic_decreasing
    summary = drivers.band_summary(health, scoring["arr"])
    assert summary["share_accounts"].sum() == pytest.approx(1) and summary["n_accounts"].sum() == len(scoring)


def test_snapshot_mode_on_public_table():
    customers = cslab.load_customers(PYSURVIVAL, event_col="churned", duration_col="months_active").customers
    dataset = features.snapshot_dataset(customers)
    numeric, categorical = features.feature_columns(dataset)
    assert "duration" not in numeric  # the time of churn itself is not a feature
    train, test = drivers.stratified_split(dataset, seed=0)
    model = drivers.ChurnModel("trees").fit(train)
    ev = drivers.evaluate(test["label"], model.predict_proba(test))
    assert ev["auc"] > 0.8
    top = drivers.importance(drivers.explain(model, test, sample=500)["values"]).index[:4].tolist()
    assert "csat_score" in top and any(f.startswith("product_") for f in top)
