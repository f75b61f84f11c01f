"""The sBG model against Fader & Hardie's published numbers, DERL, censoring, and cohort tables."""

from __future__ import annotations

import numpy as np
import pytest

import cslab
from cslab.retention import (
    ShiftedBetaGeometric,
    cohort_survival_table,
    fit_cohorts,
    lifetime_value,
    period_discount_rate,
    project_cohorts,
    to_periods,
)
from tests.conftest import write_folder

# Fader & Hardie (2007), Table 1: customers alive at the start of years 0..12, two cohorts of 1,000.
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241, 223, 207, 194, 183, 173]
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491, 468, 445, 427, 409, 394]


@pytest.mark.parametrize(
    "alive, alpha, beta, loglik",
    [
        (REGULAR, 0.704, 1.182, -1680.3),  # the paper's estimates from years 0-7
        (HIGH_END, 0.668, 3.806, -1611.2),
    ],
)
def test_reproduces_published_estimates(alive, alpha, beta, loglik):
    model = ShiftedBetaGeometric().fit(alive[:8])
    assert model.alpha_ == pytest.approx(alpha, abs=5e-4)
    assert model.beta_ == pytest.approx(beta, abs=5e-4)
    assert model.loglik_ == pytest.approx(loglik, abs=0.05)


@pytest.mark.parametrize("alive", [REGULAR, HIGH_END])
def test_projection_of_years_8_to_12_tracks_the_actuals(alive):
    model = ShiftedBetaGeometric().fit(alive[:8])
    projected = model.expected_alive(np.arange(8, 13), n0=1000)
    actual = np.array(alive[8:])
    # the paper's point: the sBG projection stays within a few percent of what happened
    assert np.all(np.abs(projected - actual) / actual < 0.05)
    # and it errs on the low side by a little (at most 16 of 1,000 customers by year 12)
    assert np.all(actual - projected > 0) and np.all(actual - projected < 20)


def test_closed_forms_agree_with_the_recursion():
    model = ShiftedBetaGeometric().fit(REGULAR[:8])
    a, b = model.alpha_, model.beta_
    t = np.arange(1, 30)
    s = model.survival_function(t)
    assert np.allclose(s[1:] / s[:-1], model.retention_rate(t[1:]))
    assert np.allclose(model.churn_probability(t), np.r_[1.0, s[:-1]] - s)
    assert model.retention_rate(1) == pytest.approx(b / (a + b))
    assert model.expected_lifetime() == float("inf")  # alpha < 1: the mean lifetime diverges


@pytest.mark.parametrize("renewals", [0, 1, 4, 10])
@pytest.mark.parametrize("alive", [REGULAR, HIGH_END])
def test_derl_closed_form_equals_the_discounted_sum(alive, renewals):
    model = ShiftedBetaGeometric().fit(alive[:8])
    d, n = 0.10, renewals + 1
    t = np.arange(n, 3000)
    brute = np.sum(model.survival_function(t) / model.survival_function(n - 1) / (1 + d) ** (t - n))
    assert model.derl(d, renewals) == pytest.approx(brute, rel=1e-9)


def test_derl_grows_with_tenure_and_shrinks_with_discounting():
    model = ShiftedBetaGeometric().fit(HIGH_END[:8])
    values = [model.derl(0.10, r) for r in range(6)]
    assert all(b > a for a, b in zip(values, values[1:]))  # survivors are the loyal ones
    assert model.derl(0.20, 0) < model.derl(0.10, 0)


def test_censored_fit_equals_aggregate_fit_on_complete_data():
    alive = np.array(REGULAR[:8])
    lost = -np.diff(alive)
    durations = np.r_[np.repeat(np.arange(1, 8), lost), np.full(alive[-1], 7)]
    observed = np.r_[np.ones(lost.sum()), np.zeros(alive[-1])]
    a = ShiftedBetaGeometric().fit(alive)
    b = ShiftedBetaGeometric().fit_censored(durations, observed)
    assert (b.alpha_, b.beta_) == pytest.approx((a.alpha_, a.beta_), rel=1e-5)
    assert b.loglik_ == pytest.approx(a.loglik_, rel=1e-9)


def test_censored_fit_recovers_simulated_parameters():
    rng = np.random.default_rng(5)
    theta = rng.beta(1.2, 3.0, 20000)
    lifetime = rng.geometric(theta)  # the period in which each customer leaves (1, 2, ...)
    horizon = rng.integers(3, 16, 20000)  # staggered cohorts: observed 3..15 periods
    observed = lifetime <= horizon
    durations = np.where(observed, lifetime, horizon)
    model = ShiftedBetaGeometric().fit_censored(durations, observed)
    assert model.alpha_ == pytest.approx(1.2, rel=0.1)
    assert model.beta_ == pytest.approx(3.0, rel=0.1)
    se = model.summary["se"]
    assert (se > 0).all() and (se < 0.5).all()


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="never increase"):
        ShiftedBetaGeometric().fit([100, 80, 90])
    with pytest.raises(ValueError, match="at least two"):
        ShiftedBetaGeometric().fit([100])
    with pytest.raises(ValueError, match="no customer churned"):
        ShiftedBetaGeometric().fit([100, 100, 100])


def test_lifetime_value_and_rates():
    assert period_discount_rate(0.10, 12) == pytest.approx(0.10)
    assert (1 + period_discount_rate(0.10, 1)) ** 12 == pytest.approx(1.10)
    model = ShiftedBetaGeometric().fit(REGULAR[:8])
    residual = lifetime_value(100.0, 0.5, model, 0.10, period_months=12, renewals=2)
    assert residual == pytest.approx(100 * 12 * 0.5 * model.derl(0.10, 2))
    new = lifetime_value(100.0, 0.5, model, 0.10, period_months=12)
    t = np.arange(0, 3000)
    assert new == pytest.approx(600 * np.sum(model.survival_function(t) / 1.1**t), rel=1e-9)
    assert to_periods([0, 1, 3, 4, 3], [1, 1, 1, 1, 0], 3).tolist() == [1, 1, 1, 2, 1]


def test_cohort_survival_table_on_a_hand_book(tmp_path):
    folder = write_folder(
        tmp_path / "d",
        {
            "subscriptions": (
                "account_id,start_date,end_date,mrr\n"
                "A,2024-01-01,,10\n"  # January cohort, never churns
                "B,2024-01-01,2024-02-29,10\n"  # January cohort, churns in month 2 (paid Jan-Feb)
                "C,2024-01-01,2024-01-31,10\n"  # January cohort, churns in month 1
                "D,2024-03-01,,10\n"  # March cohort
            )
        },
    )
    panel = cslab.panel(cslab.load(folder), as_of="2024-05-31")
    table = cohort_survival_table(panel, period="M")
    assert table.loc["2024-01"].tolist() == [3, 2, 1, 1, 1]
    assert table.loc["2024-03", [0, 1, 2]].tolist() == [1, 1, 1]
    assert table.loc["2024-03", [3, 4]].isna().all()  # not reached yet: blank, not zero


def test_cohort_fits_and_holdout_projection(tmp_path):
    from cslab.data.synth import generate

    book = generate(n_accounts=800, n_months=24, seed=3)
    book.write(tmp_path / "b")
    panel = cslab.panel(cslab.load(tmp_path / "b"))
    fits = fit_cohorts(panel, period="Q", min_cohort_size=30)
    assert 0 < fits["pooled"].alpha_ and 0 < fits["pooled"].beta_ and len(fits["cohorts"]) >= 4
    projection = project_cohorts(panel, period="Q", horizon=4, holdout=2, min_cohort_size=30)
    held = projection[projection["held_out"]]
    assert len(held) > 0 and held["actual"].notna().all()
    assert (held["fitted"] - held["actual"]).abs().mean() < 0.1
    assert (projection.groupby("cohort")["fitted"].first() == 1.0).all()
