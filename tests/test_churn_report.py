"""What notebook 02 shows, computed by cslab.churn_report, and the churn model shared through a working folder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cslab
from cslab import churn_report, drivers, leakage
from cslab.session import Session
from tests.conftest import small_session

PARAMS = {
    "horizon_months": 3,
    "observation_step": 1,
    "min_tenure_months": 0,
    "test_months": 6,
    "data_dir": "",
    "metric_roles": "",
    "include_attributes": "",
    "exclude_attributes": "",
}


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    return small_session(tmp_path_factory, "02_churn_drivers", PARAMS)


@pytest.fixture(scope="module")
def study(session):
    return churn_report.prepare(session)


@pytest.fixture(scope="module")
def models(study):
    return churn_report.compare_models(study.train, study.test)


def test_prepare_splits_by_time_and_describes_the_data(study):
    assert not study.stop and study.test_months == 6
    gap = (study.test["observation_date"].min().to_period("M") - study.train["observation_date"].max().to_period("M")).n
    assert gap == 3 and study.test["observation_date"].nunique() == 6
    assert f"**{len(study.dataset):,} observations**" in study.notes[0]
    assert study.notes[-1].startswith(f"{len(study.numeric)} numeric and {len(study.categorical)} categorical")


def test_prepare_shortens_the_test_and_stops_when_it_must(session):
    longer = churn_report.prepare(
        Session(
            name="02",
            params={**session.params, "test_months": 40},
            data=session.data,
            monthly=session.monthly,
            screen=session.screen,
        )
    )
    n_dates = longer.dataset["observation_date"].nunique()
    assert longer.test_months == n_dates - 3 - 1 and longer.notes[0].startswith("*Short history:*")
    short = session.monthly[session.monthly["month"] >= session.monthly["month"].max() - pd.DateOffset(months=6)]
    stopped = churn_report.prepare(
        Session(name="02", params=session.params, data=session.data, monthly=short, screen=session.screen)
    )
    assert "too few to train on earlier months" in stopped.stop and stopped.train is None


def test_decile_spread_ranks_features_by_their_spread(study):
    spread = churn_report.decile_spread(study.dataset, study.numeric, top=4)
    assert 0 < len(spread) <= 4
    widths = []
    for table in spread.values():
        solid = table[table["n"] >= min(churn_report.MIN_DECILE_ROWS, table["n"].max())]
        widths.append(solid["churn_rate"].max() - solid["churn_rate"].min())
    assert widths == sorted(widths, reverse=True)
    assert churn_report.decile_sentence(spread).startswith("The widest spread is in **")


def test_compare_models_evaluates_both_on_the_test_rows(study, models):
    trees = drivers.ChurnModel("trees").fit(study.train)
    assert models.ev_trees["auc"] == pytest.approx(
        drivers.evaluate(study.test["label"], trees.predict_proba(study.test))["auc"]
    )
    table = churn_report.model_table(models)
    assert table.loc["ROC AUC", "logistic regression"] == models.ev_logistic["auc"]
    assert list(models.backtest.columns) == ["account_id", "observation_date", "label", "score"]
    assert f"**AUC {models.ev_trees['auc']:.3f}**" in churn_report.model_sentence(models)
    assert churn_report.format_measure(np.bool_(True)) and churn_report.format_measure(0.5) == "0.500"


def test_driver_sentence_and_impact_table(study, models):
    explained = drivers.explain(models.trees, study.test, sample=200)
    ranking = drivers.importance(explained["values"])
    impact = drivers.retention_impact(models.trees, study.test, features=list(ranking.index[:5]), sample=300)
    text = churn_report.driver_sentence(ranking, impact, models.trees.numeric_, 3)
    assert text.count("\n1. ") == 1 and "\n5. " in text
    shown = churn_report.impact_table(impact, top=3)
    assert shown["change in predicted churn (points)"].tolist() == (impact["change"].head(3) * 100).round(2).tolist()


def test_cox_summary(study):
    cox = churn_report.cox_summary(study, snapshot=False, sample=2000)
    assert 0.5 < cox["c_index"] <= 1 and len(cox["hazards"]) <= 12
    assert list(cox["hazards"].columns) == ["hazard ratio", "lower 95%", "upper 95%", "p"]
    assert f"**{cox['c_index']:.3f}**" in cox["sentence"]


def test_health_and_at_risk_views(study, models):
    view = churn_report.health_view(models.trees, study.scoring, (85, 95), snapshot=False, horizon_months=3)
    p_now = models.trees.predict_proba(study.scoring)
    n_red = int((drivers.health_scores(p_now, (85, 95))["band"] == "red").sum())
    assert view["bands"].loc["red", "n_accounts"] == n_red and "within 3 months" in view["sentence"]
    assert view["shown"] is view["bands"]
    risk = churn_report.at_risk_view(
        models.trees,
        study,
        view["p_now"],
        view["health"],
        snapshot=False,
        segment_col="segment",
        shap_sample=50,
        horizon_months=3,
    )
    assert risk["n_red"] == n_red and len(risk["table"]) == len(study.scoring)
    assert risk["arr_at_risk"] == pytest.approx(float((study.scoring["arr"] * p_now).sum()))
    assert risk["table"]["top_reasons"].ne("").sum() == 50 and len(risk["shown"]) == 15
    assert "ARR at risk" in risk["shown"] and "Reasons are computed for the 50 accounts" in risk["sentence"]


def test_shared_model_is_reused_only_on_the_same_context(session, study, models, tmp_path):
    context = churn_report.model_context(session, test_months=study.test_months)
    assert drivers.save_shared_model("", "churn_model", models.trees, context) is None
    assert drivers.load_shared_model("", "churn_model", context) == (None, "")
    assert drivers.load_shared_model(str(tmp_path), "churn_model", context) == (None, "")
    drivers.save_shared_model(str(tmp_path), "churn_model", models.trees, context)
    model, why = drivers.load_shared_model(str(tmp_path), "churn_model", context)
    assert why == "" and np.array_equal(model.predict_proba(study.scoring), models.trees.predict_proba(study.scoring))
    other = churn_report.model_context(session, test_months=4, observation_step=2)
    model, why = drivers.load_shared_model(str(tmp_path), "churn_model", other)
    assert model is None and why == "the saved model was fitted with another observation_step, test_months"


def test_snapshot_mode_tests_on_a_random_quarter_and_counts_without_revenue():
    from tests.conftest import PYSURVIVAL

    data = cslab.load_customers(PYSURVIVAL, event_col="churned", duration_col="months_active")
    screen = leakage.screen_snapshot(data.customers)
    nb = Session(name="02_churn_drivers", params=PARAMS, data=data, screen=screen, snapshot=True)
    study = churn_report.prepare(nb)
    assert not study.stop and study.test_months is None and study.notes[0].startswith("Snapshot mode")
    assert len(study.test) == pytest.approx(0.25 * len(study.dataset), abs=1)
    model = drivers.ChurnModel("trees").fit(study.train)
    view = churn_report.health_view(model, study.scoring, (85, 95), snapshot=True, horizon_months=3)
    assert list(view["shown"].columns) == ["n_accounts", "share_accounts"] and "share_arr" in view["bands"]
    assert "within" not in view["sentence"]
