"""The notebooks: conventions, and recorded results equal to direct library calls."""

from __future__ import annotations

import json

import nbformat
import pandas as pd
import papermill as pm
import pytest

import cslab
from cslab import config, metrics, retention, survival
from cslab.audit import NOTEBOOKS, run_audit
from cslab.notebook import declared_parameters
from tests.conftest import PYSURVIVAL

COHORT_KEYS = {
    "logo_churn_monthly",
    "logo_churn_annual",
    "grr_12m",
    "nrr_12m",
    "headwind_12m",
    "tailwind_12m",
    "km_survival_12",
    "km_survival_24",
    "median_lifetime_months",
    "sbg_alpha",
    "sbg_beta",
    "n_accounts",
    "n_active",
    "mrr_end",
}


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_conventions(name):
    path = config.NOTEBOOKS_DIR / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert "parameters" in nb.cells[1].metadata.get("tags", [])
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    declared = declared_parameters(name)
    # papermill must read every declaration (a '=' in a comment, for one, defeats its parser)
    assert set(pm.inspect_notebook(str(path))) == set(declared)
    assert all(d["help"] for d in declared.values()), "every parameter is commented"
    # one set-up call checks the parameters first (cslab.session.start calls check_parameters)
    setup = nb.cells[2].source
    assert "start(globals()" in setup or "check_parameters(globals()" in setup
    # notebooks narrate: no function or class defined in a notebook
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not any(
                line.lstrip().startswith(("def ", "class ")) or "lambda" in line for line in cell.source.splitlines()
            ), cell.source[:200]


@pytest.fixture(scope="module")
def small_book(audited_book):
    return audited_book[0]


@pytest.fixture(scope="module")
def audit_run(audited_book):
    return audited_book[1], audited_book[2]


def test_cohort_notebook_records_what_the_library_computes(small_book, audit_run):
    result, out = audit_run
    assert result.exit_code == 0
    recorded = json.loads((out / "results.json").read_text())["notebooks"]["01_cohort_retention"]
    assert recorded["status"] == "ok", recorded["error"]
    got = recorded["results"]
    assert COHORT_KEYS <= set(got)

    panel = cslab.panel(cslab.load(small_book))
    kept = metrics.revenue_retention(panel, months=12)
    logo = metrics.logo_churn_rate(panel, months=12)
    fitter = survival.kaplan_meier(survival.account_lifetimes(panel))["all"]
    at = survival.survival_at(fitter, times=(12, 24))["survival"]
    pooled = retention.fit_cohorts(panel, period="Q", min_cohort_size=10)["pooled"]
    expected = {
        "nrr_12m": kept["nrr"],
        "grr_12m": kept["grr"],
        "headwind_12m": kept["headwind"],
        "tailwind_12m": kept["tailwind"],
        "logo_churn_monthly": logo["monthly"],
        "logo_churn_annual": logo["annual"],
        "km_survival_12": at[12],
        "km_survival_24": at[24],
        "sbg_alpha": pooled.alpha_,
        "sbg_beta": pooled.beta_,
        "mrr_end": panel.loc[panel["month"].eq(panel["month"].max()), "mrr"].sum(),
    }
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9), key
    assert got["n_active"] == int(panel.loc[panel["month"].eq(panel["month"].max()), "active"].sum())
    assert 0 < got["grr_12m"] <= 1 and got["nrr_12m"] > 0


def test_cohort_notebook_report_and_tables(audit_run):
    _, out = audit_run
    tables = sorted(p.name for p in (out / "tables").iterdir())
    assert {
        "cohort_logo_retention.csv",
        "cohort_revenue_retention.csv",
        "mrr_movements.csv",
        "sbg_cohort_projection.csv",
        "cohort_lifetime_value.csv",
    } <= set(tables)
    report = (out / "01_cohort_retention.html").read_text()
    assert report.count("<img") >= 8  # every figure embedded: the folder stands alone
    assert "data:image/png;base64" in report
    assert "Traceback" not in report and "check_parameters" not in report
    index = (out / "index.html").read_text()
    assert "Net revenue retention (12 months)" in index and "Test Co" in index


DRIVER_KEYS = {
    "n_observations",
    "base_rate",
    "auc",
    "auc_logistic",
    "top_decile_lift",
    "brier",
    "top_features",
    "c_index_cox",
    "n_at_risk_red",
    "arr_at_risk",
}


def test_churn_notebook_records_what_the_library_computes(small_book, audit_run):
    from cslab import drivers, features

    _, out = audit_run
    recorded = json.loads((out / "results.json").read_text())["notebooks"]["02_churn_drivers"]
    assert recorded["status"] == "ok", recorded["error"]
    got = recorded["results"]
    assert DRIVER_KEYS <= set(got) and len(got["top_features"]) >= 10
    data = cslab.load(small_book)
    dataset, scoring = features.build_dataset(data, cslab.panel(data), horizon_months=3)
    train, test = drivers.time_split(dataset, test_months=6, horizon_months=3)
    trees = drivers.ChurnModel("trees").fit(train)
    ev = drivers.evaluate(test["label"], trees.predict_proba(test))
    assert got["n_observations"] == len(dataset)
    assert got["base_rate"] == pytest.approx(dataset["label"].mean())
    assert got["auc"] == pytest.approx(ev["auc"]) and got["brier"] == pytest.approx(ev["brier"])
    p_now = trees.predict_proba(scoring)
    assert got["arr_at_risk"] == pytest.approx(float((scoring["arr"] * p_now).sum()))
    assert got["n_at_risk_red"] == int((drivers.health_scores(p_now, (85, 95))["band"] == "red").sum())
    at_risk = pd.read_csv(out / "tables" / "at_risk_accounts.csv")
    assert list(at_risk.columns[:1]) == ["account_id"] and len(at_risk) == len(scoring)
    assert {"arr", "churn_probability", "arr_at_risk", "health_score", "band", "top_reasons"} <= set(at_risk.columns)
    assert at_risk["arr_at_risk"].is_monotonic_decreasing
    backtest = pd.read_csv(out / "tables" / "churn_scores_backtest.csv")
    assert list(backtest.columns) == ["account_id", "observation_date", "label", "score"]
    assert len(backtest) == len(test)


ROI_KEYS = {
    "hr_outcome_achieved",
    "ro_attainment_rate",
    "attributable_value",
    "cs_cost",
    "cs_cost_share_of_revenue",
    "roi",
    "roi_low",
    "roi_high",
    "cs_efficiency_ratio",
    "value_window",
    "cost_window",
    "gross_margin",
    "value_horizon_months",
    "n_bootstrap",
    "n_bootstrap_failed",
}


def test_roi_notebook_records_what_the_library_computes(small_book, audit_run):
    from cslab import exposure, features, roi
    from cslab.programmes import ProgrammeEffects

    _, out = audit_run
    recorded = json.loads((out / "results.json").read_text())["notebooks"]["03_cs_roi"]
    assert recorded["status"] == "ok", recorded["error"]
    got = recorded["results"]
    assert ROI_KEYS <= set(got) and "magic_number" not in got
    for programme in got["programmes"]:
        assert {
            f"naive_hr_{programme}",
            f"effect_hr_{programme}",
            f"effect_hr_{programme}_low",
            f"effect_hr_{programme}_high",
            f"max_smd_after_{programme}",
            f"evalue_{programme}",
            f"direct_hr_{programme}",
        } <= set(got)
        assert got[f"exposure_{programme}"] in {"one_time", "recurring"}
    data = cslab.load(small_book)
    panel = cslab.panel(data)
    dataset, scoring = features.build_dataset(data, panel, horizon_months=1)
    rows = roi.person_months(dataset, panel, scoring)
    kinds = exposure.classify_programmes(data.cs_activities)["exposure"].to_dict()
    assert all(got[f"exposure_{p}"] == kinds[p] for p in got["programmes"])
    model = ProgrammeEffects().fit(rows, sorted(kinds), kinds=kinds)
    assert got["effect_hr_onboarding"] == pytest.approx(model.effects_["onboarding"]["hr"], rel=1e-6)
    assert got["evalue_onboarding"] == pytest.approx(model.effects_["onboarding"]["evalue"], rel=1e-6)
    # cost and value cover the same 12 calendar months up to the analysis date
    as_of = pd.Timestamp(panel.attrs["as_of"])
    assert (
        got["cost_window"]
        == got["value_window"]
        == f"{(as_of.to_period('M') - 11).strftime('%Y-%m')} to {as_of.strftime('%Y-%m')}"
    )
    months = data.cs_costs["month"].dt.to_period("M")
    window = (months > as_of.to_period("M") - 12) & (months <= as_of.to_period("M"))
    assert window.sum() == 12 and got["cs_cost"] == pytest.approx(data.cs_costs.loc[window, "cost"].sum())
    billed = panel.loc[panel["month"].dt.to_period("M").isin(months[window]), "mrr"].sum()
    assert got["cs_cost_share_of_revenue"] == pytest.approx(got["cs_cost"] / billed)
    assert got["roi"] == pytest.approx((got["attributable_value"] - got["cs_cost"]) / got["cs_cost"])
    assert got["gross_margin"] == 0.8 and got["value_horizon_months"] == 12
    assert got["roi_low"] < got["roi"] < got["roi_high"] and got["n_bootstrap"] == 4
    assert 0 < got["ro_attainment_rate"] < 1 and 0 < got["hr_outcome_achieved"] < 1
    tables = {p.name for p in (out / "tables").iterdir()}
    assert {"cs_programme_effects.csv", "cs_roi_bootstrap.csv", "cs_programme_value.csv"} <= tables
    boot = pd.read_csv(out / "tables" / "cs_roi_bootstrap.csv")
    assert len(boot) == 4 and {f"hr_{p}" for p in got["programmes"]} <= set(boot.columns)
    assert got["n_bootstrap_failed"] == int(boot["failed"].notna().sum())
    report = (out / "03_cs_roi.html").read_text()
    assert report.count("<img") >= 8 and "Traceback" not in report and "Warning" not in report
    assert "bootstrap replicates:" not in report  # no progress bar in a report


def test_roi_notebook_is_skipped_without_cs_activities(small_book, tmp_path):
    import shutil

    folder = tmp_path / "no_cs"
    shutil.copytree(small_book, folder)
    (folder / "cs_activities.csv").unlink()
    result = run_audit(folder, tmp_path / "out", only=["03_cs_roi"], progress=False, echo=lambda _: None)
    run = result.runs["03_cs_roi"]
    assert run.status == "skipped" and "cs_activities" in run.error
    assert "needs the cs_activities table" in (tmp_path / "out" / "index.html").read_text()


EXPANSION_KEYS = {
    "nrr_12m",
    "expansion_rate_12m",
    "contraction_rate_12m",
    "churn_rate_12m",
    "reactivation_rate_12m",
    "expansion_auc",
    "top_expansion_drivers",
    "pipeline_expected_arr",
    "n_opportunities",
    "share_at_capacity",
}


def test_expansion_notebook_records_and_ranks(audit_run):
    from cslab import expansion

    _, out = audit_run
    notebooks = json.loads((out / "results.json").read_text())["notebooks"]
    recorded = notebooks["04_expansion_opportunity"]
    assert recorded["status"] == "ok", recorded["error"]
    got = recorded["results"]
    assert EXPANSION_KEYS <= set(got) and len(got["top_expansion_drivers"]) >= 5
    # the decomposition adds up, and agrees with the cohort report's NRR
    assert got["nrr_12m"] == pytest.approx(
        1
        + got["expansion_rate_12m"]
        - got["contraction_rate_12m"]
        - got["churn_rate_12m"]
        + got["reactivation_rate_12m"],
        abs=1e-12,
    )
    assert got["nrr_12m"] == pytest.approx(notebooks["01_cohort_retention"]["results"]["nrr_12m"], rel=1e-12)
    assert 0.55 < got["expansion_auc"] < 1
    table = pd.read_csv(out / "tables" / "expansion_opportunities.csv", keep_default_na=False)
    assert set(table.columns) <= set(expansion.EXPANSION_COLUMNS)
    assert {
        "account_id",
        "arr",
        "probability",
        "expected_uplift_arr",
        "expected_expansion_arr",
        "reasons",
        "whitespace_products",
        "health_band",
        "action",
    } <= set(table.columns)
    assert table["expected_expansion_arr"].astype(float).is_monotonic_decreasing
    assert table.loc[table["health_band"].eq("red"), "action"].eq(expansion.STABILISE).all()
    assert got["pipeline_expected_arr"] == pytest.approx(table["expected_expansion_arr"].astype(float).sum())
    assert got["n_opportunities"] == int(table["action"].eq("expand").sum())
    report = (out / "04_expansion_opportunity.html").read_text()
    assert report.count("<img") >= 6 and "Traceback" not in report and "Warning:" not in report


def test_index_opens_with_an_executive_summary(audit_run):
    import re

    _, out = audit_run
    index = (out / "index.html").read_text()
    summary = index.split("Executive summary", 1)[1].split("</ol>", 1)[0]
    findings = re.findall(r"<li>(.*?)</li>", summary, flags=re.S)
    assert 5 <= len(findings) <= 8
    reports = {"01_cohort_retention.html", "02_churn_drivers.html", "03_cs_roi.html", "04_expansion_opportunity.html"}
    for finding in findings:
        assert re.search(r"\d", finding), finding  # every finding carries its number
        assert any(f'href="{r}"' in finding for r in reports), finding  # and the report it comes from
    recorded = json.loads((out / "results.json").read_text())["notebooks"]
    nrr = recorded["01_cohort_retention"]["results"]["nrr_12m"]
    assert f"Net revenue retention was {100 * nrr:.1f}%" in summary
    assert index.index("Executive summary") < index.index("<h2>Cohort retention")


def test_snapshot_mode_on_public_data(tmp_path):
    out = tmp_path / "snap"
    result = run_audit(
        None,
        out,
        customers={
            "customers_file": str(PYSURVIVAL),
            "id_col": "",
            "event_col": "churned",
            "duration_col": "months_active",
            "segment_col": "company_size",
        },
        progress=False,
        echo=lambda _: None,
    )
    assert result.exit_code == 0
    notebooks = json.loads((out / "results.json").read_text())["notebooks"]
    drivers_got = notebooks["02_churn_drivers"]["results"]
    assert notebooks["02_churn_drivers"]["status"] == "ok"
    assert drivers_got["auc"] > 0.8 and drivers_got["arr_at_risk"] is None
    assert "csat_score" in drivers_got["top_features"][:3]
    got = notebooks["01_cohort_retention"]["results"]
    customers = cslab.load_customers(PYSURVIVAL, event_col="churned", duration_col="months_active").customers
    fitter = survival.kaplan_meier(customers)["all"]
    assert got["km_survival_12"] == pytest.approx(survival.survival_at(fitter, (12,))["survival"].iloc[0])
    assert got["km_survival_24"] is None  # 12 months observed: no extrapolation
    assert got["n_accounts"] == 2000 and "nrr_12m" not in got
    assert got["median_lifetime_months"] == pytest.approx(survival.median_lifetime(fitter)["median"])
    durations = retention.to_periods(customers["duration"], customers["event"], 1)
    pooled = retention.ShiftedBetaGeometric().fit_censored(durations, customers["event"])
    assert got["sbg_alpha"] == pytest.approx(pooled.alpha_, rel=1e-9)
    report = (out / "01_cohort_retention.html").read_text()
    assert "row numbers" in report and "need a subscriptions table" in report
