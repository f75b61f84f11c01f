"""What notebook 04 shows, computed by cslab.expansion_report; the churn model it reuses from notebook 02."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cslab import churn_report, drivers, expansion, expansion_report, features
from cslab.session import Session
from tests.conftest import small_session

PARAMS = {"horizon_months": 3, "test_months": 6, "metric_roles": "", "include_attributes": "", "exclude_attributes": ""}


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    return small_session(tmp_path_factory, "04_expansion_opportunity", PARAMS)


@pytest.fixture(scope="module")
def study(session):
    return expansion_report.prepare(session, horizon_months=3, test_months=6, shap_sample=100)


def test_nrr_view_reads_the_latest_window_and_its_groups(session):
    view = expansion_report.nrr_view(session.monthly)
    parts = expansion.nrr_components(session.monthly)
    assert view["latest"]["nrr"] == parts["nrr"].iloc[-1]
    assert f"**NRR was {100 * parts['nrr'].iloc[-1]:.1f}%**" in view["sentence"]
    assert set(view["by_group"]["by"]) == {"segment", "cohort_year", "csm_id"}
    assert all(label.startswith(("segment: ", "signup year: ")) for label in view["shown"].index)
    assert set(expansion_report.NRR_FORMAT) <= set(view["shown"].columns)
    assert view["csm_sentence"].startswith("By CSM")
    figures = expansion_report.nrr_figures(view["latest"])
    assert figures["nrr_12m"] == pytest.approx(
        1
        + figures["expansion_rate_12m"]
        - figures["contraction_rate_12m"]
        - figures["churn_rate_12m"]
        + figures["reactivation_rate_12m"]
    )


def test_nrr_view_on_a_short_book(session):
    short = session.monthly[session.monthly["month"] >= session.monthly["month"].max() - pd.DateOffset(months=8)]
    view = expansion_report.nrr_view(short)
    assert view["latest"] is None and view["sentence"].startswith("*Short history:*") and view["by_group"].empty
    assert set(expansion_report.nrr_figures(None).values()) == {None}


def test_utilisation_view(session):
    view = expansion_report.utilisation_view(session.monthly, 0.9)
    table = expansion.seat_utilisation(session.monthly, threshold=0.9)
    assert view["measured"] and view["share_at_capacity"] == float(table.loc["all", "share_at_capacity"])
    assert view["sentence"].startswith(f"**{100 * view['share_at_capacity']:.1f}% of active accounts")
    unmeasured = expansion_report.utilisation_view(session.monthly.assign(seats=np.nan), 0.9)
    assert not unmeasured["measured"] and unmeasured["share_at_capacity"] is None


def test_whitespace_view(session):
    view = expansion_report.whitespace_view(session.data, session.monthly)
    gaps, summary = expansion.whitespace(session.data, session.monthly)
    assert view["gaps"].equals(gaps) and view["summary"].equals(summary)
    expected = gaps.groupby("product")["peer_adoption"].sum().idxmax()
    assert view["top_gap"] == expected and f"**{expected}**" in view["sentence"]
    assert ((view["adoption"] >= 0) & (view["adoption"] <= 1)).all().all()


def test_prepare_fits_the_expansion_model_or_says_why_not(session, study):
    assert not study.stop and study.test_months == 6
    fitted = expansion.fit_expansion(study.dataset, test_months=6, horizon_months=3, shap_sample=100)
    assert study.fitted["evaluation"]["auc"] == fitted["evaluation"]["auc"]
    assert f"ROC AUC {fitted['evaluation']['auc']:.3f}" in expansion_report.model_sentence(study, 3)
    short = session.monthly[session.monthly["month"] >= session.monthly["month"].max() - pd.DateOffset(months=6)]
    stopped = expansion_report.prepare(
        Session(name="04", params=session.params, data=session.data, monthly=short),
        horizon_months=3,
        test_months=6,
        shap_sample=100,
    )
    assert "too few to train on earlier months" in stopped.stop and stopped.fitted is None


def test_churn_health_refits_or_reuses_the_churn_drivers_model(session, tmp_path):
    alone = expansion_report.churn_health(session, test_months=6, bands=(85, 95))
    assert not alone["reused"] and alone["note"] == ""
    churn_set, churn_scoring = features.build_dataset(session.data, session.monthly, horizon_months=3)
    train, _ = drivers.time_split(churn_set, test_months=6, horizon_months=3)
    model = drivers.ChurnModel("trees").fit(train)
    bands = drivers.health_scores(model.predict_proba(churn_scoring), (85, 95))["band"]
    assert alone["band"].to_numpy().tolist() == bands.tolist()
    # notebook 02 with the same data and design leaves its model: reused, same bands
    drivers.save_shared_model(str(tmp_path), "churn_model", model, churn_report.model_context(session, test_months=6))
    shared = expansion_report.churn_health(session, test_months=6, bands=(85, 95), work_dir=str(tmp_path))
    assert shared["reused"] and "reused" in shared["note"] and shared["band"].equals(alone["band"])
    # another design: refitted, and said
    other = expansion_report.churn_health(session, test_months=5, bands=(85, 95), work_dir=str(tmp_path))
    assert not other["reused"] and other["note"] == (
        "The churn model is refitted here: the saved model was fitted with another test_months."
    )


def test_rank_pipeline_figures_and_sentences(session, study):
    health = expansion_report.churn_health(session, test_months=6, bands=(85, 95))
    ws = expansion_report.whitespace_view(session.data, session.monthly)
    ranked = expansion_report.rank_pipeline(
        session, study, health["band"], ws["summary"], capacity_threshold=0.9, min_probability=0.15, shap_sample=40
    )
    table = ranked["table"]
    assert table["expected_expansion_arr"].is_monotonic_decreasing
    assert table["reasons"].ne("").sum() <= 40 and table["reasons"].head(40).ne("").any()
    assert table.loc[table["health_band"].eq("red"), "action"].eq(expansion.STABILISE).all()
    assert ranked["by_band"]["accounts"].sum() == len(table) and len(ranked["shown"]) == 15
    figures = expansion_report.pipeline_figures(table)
    assert figures["pipeline_expected_arr"] == pytest.approx(
        figures["pipeline_expected_arr_healthy"] + figures["pipeline_expected_arr_red"]
    )
    assert figures["n_opportunities"] == int(table["action"].eq("expand").sum())
    sentences = expansion_report.pipeline_sentences(ranked, horizon_months=3, min_probability=0.15)
    assert sentences[0].startswith("**Pipeline to expand:") and len(sentences) == 3
    steps = expansion_report.quarter_steps(table, measured=True, top_gap=ws["top_gap"], min_probability=0.15)
    assert steps.startswith("1. **Call the top") and f"**Cross-sell {ws['top_gap']}**" in steps
