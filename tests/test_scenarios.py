"""Workshop scenarios land in the bands their stories state, measured on the realised books with the
kit's own metric functions, for two seeds each; the generator's defaults are untouched."""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import cslab
from cslab import metrics, roi
from cslab.cli import app
from cslab.data.scenarios import SCENARIOS, early_churn_by_cohort, write_scenario
from cslab.data.synth import BookParams, generate

N_ACCOUNTS, N_MONTHS = 800, 36


@pytest.fixture(scope="module")
def books(tmp_path_factory):
    """Every scenario at seeds 1 and 2: (book, data, panel)."""
    out = {}
    for name in SCENARIOS:
        for seed in (1, 2):
            folder = tmp_path_factory.mktemp(f"{name}-{seed}")
            book = write_scenario(name, folder, n_accounts=N_ACCOUNTS, n_months=N_MONTHS, seed=seed)
            data = cslab.load(folder)
            out[name, seed] = (book, data, cslab.panel(data))
    return out


def _measured(data, panel) -> dict:
    """The bands' metrics, straight from the kit's functions (not from the scenario module)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        as_of = panel.attrs["as_of"]
        start = as_of - pd.DateOffset(months=12)
        cost = roi.cs_cost(data, start, as_of)["total"] / roi.revenue(panel, start, as_of)
        signed = data.accounts.loc[data.accounts["signup_date"] > start, "account_id"]
        onboarded = data.cs_activities.loc[data.cs_activities["activity_type"].eq("onboarding"), "account_id"]
        return {
            "churn": metrics.logo_churn_rate(panel, months=12)["monthly"],
            "nrr": metrics.revenue_retention(panel, months=12)["nrr"],
            "grr": metrics.revenue_retention(panel, months=12)["grr"],
            "cost_share": cost,
            "onboarded": signed.isin(onboarded).mean(),
        }


@pytest.mark.parametrize("seed", [1, 2])
def test_leaky_smb(books, seed):
    book, data, panel = books["leaky-smb", seed]
    got = _measured(data, panel)
    assert got["churn"] >= 0.03 and got["nrr"] < 0.90
    assert (data.accounts["segment"] == "SMB").mean() > 0.85


@pytest.mark.parametrize("seed", [1, 2])
def test_expansion_led(books, seed):
    _, data, panel = books["expansion-led", seed]
    got = _measured(data, panel)
    assert got["nrr"] >= 1.10 and got["churn"] <= 0.01
    assert got["grr"] < 1.0  # the growth is expansion, not the absence of churn


@pytest.mark.parametrize("seed", [1, 2])
def test_under_invested_cs(books, seed):
    _, data, panel = books["under-invested-cs", seed]
    got = _measured(data, panel)
    assert got["cost_share"] <= 0.07
    assert got["onboarded"] <= 0.25
    # the demo's staffing and onboarding reach more new accounts, at a similar size
    demo = generate(N_ACCOUNTS, N_MONTHS, seed).tables
    demo_onboarded = demo["cs_activities"].query("activity_type == 'onboarding'")["account_id"].nunique()
    assert demo_onboarded / N_ACCOUNTS > 2 * got["onboarded"]


@pytest.mark.parametrize("seed", [1, 2])
def test_hidden_risk(books, seed):
    _, data, panel = books["hidden-risk", seed]
    got = _measured(data, panel)
    assert got["nrr"] >= 1.0
    groups = early_churn_by_cohort(panel, age=6, group=6)
    latest = groups["monthly_churn"].iloc[-1]
    before = groups.iloc[-3:-1]
    kept = (before["retained"] * before["customers"]).sum() / before["customers"].sum()
    assert latest >= 1.5 * (1 - kept ** (1 / 6))
    assert groups["monthly_churn"].iloc[-1] > groups["monthly_churn"].iloc[-2]  # it rises into the latest


def test_truth_tells_the_story_and_the_realised_figures(books):
    for (name, _seed), (book, data, panel) in books.items():
        story = json.loads((Path(data.source) / "truth.json").read_text())["scenario"]
        assert story["name"] == name and story["story"] == SCENARIOS[name].story
        assert set(story["bands"]) == set(SCENARIOS[name].bands) and all(story["in_band"].values()), story
        measured = _measured(data, panel)
        assert story["realised"]["nrr_12m"] == pytest.approx(measured["nrr"], abs=1e-6)
        assert story["realised"]["logo_churn_monthly"] == pytest.approx(measured["churn"], abs=1e-6)
        assert "programme_hr" in book.truth  # the generator's planted truth is still there


def test_early_churn_by_cohort_by_hand():
    """Two cohorts of 10 (January, February), 6 months of age reached by both: 8 and 5 stay."""
    rows = []
    for cohort, stay in (("2024-01-01", 8), ("2024-02-01", 5)):
        for k in range(10):
            rows.append(
                {
                    "account_id": f"{cohort}-{k}",
                    "start_date": cohort,
                    "end_date": "" if k < stay else "2024-03-31",
                    "mrr": 100,
                }
            )
    folder = Path(tempfile.mkdtemp())
    pd.DataFrame(rows).to_csv(folder / "subscriptions.csv", index=False)
    panel = cslab.panel(cslab.load(folder), as_of="2024-09-30")
    groups = early_churn_by_cohort(panel, age=6, group=1)
    assert groups["customers"].tolist() == [10, 10]
    assert groups["retained"].tolist() == pytest.approx([0.8, 0.5])
    assert groups["monthly_churn"].tolist() == pytest.approx([1 - 0.8 ** (1 / 6), 1 - 0.5 ** (1 / 6)])


def test_default_parameters_are_the_demo_book():
    """BookParams() is the generator's own default: the same book to the byte."""
    a, b = generate(200, 14, 5), generate(200, 14, 5, params=BookParams())
    for name in a.tables:
        assert a.tables[name].equals(b.tables[name]), name
    assert a.truth == b.truth


def test_cli_synth_scenario(tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        app, ["synth", "--scenario", "expansion-led", "--accounts", "600", "--seed", "2", "--out", str(tmp_path / "b")]
    )
    assert result.exit_code == 0, result.output
    assert "expansion-led" in result.output and "in its band" in result.output
    truth = json.loads((tmp_path / "b" / "truth.json").read_text())
    assert truth["scenario"]["name"] == "expansion-led" and truth["n_accounts"] == 600
    assert truth["n_months"] == 36  # the scenario's default length
    bad = runner.invoke(app, ["synth", "--scenario", "nope", "--out", str(tmp_path / "c")])
    assert bad.exit_code == 2 and not (tmp_path / "c").exists()
