"""Replace against accumulate in linear regression (Gerstgrasser et al., 2024), through the
project's linear_regression model, dataset, policies and loop: replacing adds
sigma^2 d / (T - d - 1) of test error a generation, accumulating stays under pi^2/6 of it.
Each closed form against Monte Carlo over seeds (about 3.5 standard errors, fixed seeds)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from typer.testing import CliRunner

from autophagy.analysis.agreement import regression_loop_errors
from autophagy.cli import app
from autophagy.config import load_config
from autophagy.data import load_dataset
from autophagy.loop import EvalSettings, LoopSettings, run_cell
from autophagy.metrics import get_metric
from autophagy.models.families.regression import LinearRegression
from autophagy.models.registry import build_model
from autophagy.policies import make_policy
from autophagy.theory.regression import (
    ACCUMULATE_BOUND,
    design_error_constant,
    expected_regression_error,
    regression_error_constant,
    regression_error_factors,
    regression_error_terms,
)

T, D = 20, 8


def within(runs: np.ndarray, theory: np.ndarray, z: float = 3.5) -> bool:
    se = runs.std(0, ddof=1) / np.sqrt(len(runs))
    return bool(np.all(np.abs(runs.mean(0) - theory) <= z * se + 1e-12))


# -- the model ---------------------------------------------------------------------------------
def rows(n=T, d=3, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    return np.column_stack([x, x @ np.arange(1.0, d + 1) + noise * rng.standard_normal(n)])


def test_fit_recovers_the_coefficients_and_sample_keeps_the_design_in_order():
    data = rows()
    model = LinearRegression(noise_std=0.5).fit(data, rng=np.random.default_rng(0))
    np.testing.assert_allclose(model.coef_, [1.0, 2.0, 3.0])
    out = model.sample(2 * T + 3, rng=np.random.default_rng(1))
    assert out.shape == (2 * T + 3, 4)
    np.testing.assert_array_equal(out[:T, :-1], data[:, :-1])  # n = T: the design itself
    np.testing.assert_array_equal(out[T : 2 * T, :-1], data[:, :-1])  # cycled: copies
    resid = out[:, -1] - out[:, :-1] @ model.coef_
    assert 0.35 < resid.std() < 0.65


def test_temperature_scales_the_label_noise_variance_exactly():
    model = LinearRegression(noise_std=1.0).fit(rows(n=5000), rng=np.random.default_rng(0))
    rng = np.random.default_rng(2)
    out = model.sample(5000, rng=rng, temperature=0.25)
    resid = out[:, -1] - out[:, :-1] @ model.coef_
    assert resid.var() == pytest.approx(0.25, rel=0.06)
    assert model.sampling_temperature == "exact"


def test_noise_is_estimated_without_noise_std_and_the_state_round_trips():
    model = build_model("linear_regression").fit(rows(n=4000, noise=2.0), rng=None)
    assert model.noise_std_ == pytest.approx(2.0, rel=0.05)
    again = LinearRegression()
    again.load_state_dict(model.state_dict())
    a = model.sample(7, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a, again.sample(7, rng=np.random.default_rng(3)))


def test_bad_input_fails_with_a_message_naming_it():
    with pytest.raises(ValueError, match="noise_std must be a number >= 0"):
        LinearRegression(noise_std=-1)
    with pytest.raises(ValueError, match=r"rows \(x_1, ..., x_d, y\)"):
        LinearRegression().fit(np.zeros((5, 1)))
    with pytest.raises(ValueError, match="rank 1 < 2 features"):
        LinearRegression(noise_std=1).fit(np.column_stack([np.ones(6), np.ones(6), np.ones(6)]))
    with pytest.raises(ValueError, match="give noise_std"):
        LinearRegression().fit(rows(n=3))


def test_the_test_error_metric_is_the_excess_risk_from_the_truth():
    ds = load_dataset("linear_regression", n_train=T, n_test=20000, seed=0, dim=D, noise=1.5)
    model = LinearRegression(noise_std=1.5).fit(ds.train)
    result = run_cell(model, ds, make_policy("fully_synthetic"), LoopSettings(0, seed=0),
                      EvalSettings(metrics=("test_error", "test_mse"), n_samples=4))
    values = result.metrics.set_index("metric")["value"]
    delta = model.coef_ - np.ones(D)
    assert values["test_error"] == pytest.approx(delta @ delta)
    assert values["test_mse"] == pytest.approx(1.5**2 + delta @ delta, rel=0.03)
    assert get_metric("test_error").lower_is_better


# -- the closed forms ----------------------------------------------------------------------------
def test_the_factors_are_t_plus_one_replacing_and_the_basel_sums_accumulating():
    np.testing.assert_allclose(regression_error_factors("fully_synthetic", 9), np.arange(1, 11))
    basel = np.cumsum(1.0 / np.arange(1, 31) ** 2)
    acc = regression_error_factors("accumulate", 29)
    np.testing.assert_allclose(acc, basel)
    assert np.all(np.diff(acc) > 0) and acc[-1] < ACCUMULATE_BOUND
    a, b = regression_error_terms("accumulate", 4)
    np.testing.assert_allclose(a, 1.0)  # every fit keeps the first fit's error in full
    np.testing.assert_allclose(b, basel[:5] - 1.0)
    assert regression_error_constant(T, D, 2.0) == pytest.approx(4.0 * D / (T - D - 1))
    with pytest.raises(ValueError, match="whole number"):
        regression_error_factors("accumulate", 3, lam=0.5)
    with pytest.raises(ValueError, match="n must exceed dim"):
        regression_error_constant(5, 4)


# -- the theorem, through the loop ---------------------------------------------------------------
@pytest.mark.parametrize("policy", ["fully_synthetic", "accumulate"])
def test_the_loop_matches_the_theorem_over_gaussian_designs(policy):
    """Each run its own design X and labels: E err_t = sigma^2 d / (T - d - 1) * factor_t; the
    constant with T - d in place of T - d - 1 is rejected by the same interval."""
    G, seeds = 3, 1200
    errors = regression_loop_errors(policy, n=T, dim=D, generations=G, seeds=seeds, noise=1.0)
    theory = expected_regression_error(policy, n=T, dim=D, generations=G)
    assert within(errors, theory)
    assert not within(errors, theory * (T - D - 1) / (T - D))
    if policy == "accumulate":
        assert np.all(errors.mean(0) < ACCUMULATE_BOUND * regression_error_constant(T, D))


@pytest.mark.parametrize("policy, lam", [("fully_synthetic", 1), ("accumulate", 1),
                                         ("accumulate", 2), ("mixed", 2)])
def test_given_the_real_sample_the_loop_matches_the_exact_conditional_expectation(policy, lam):
    """One real sample (X, y_0) shared by every run: E[err_t] = a_t err_0 + b_t C_X with
    C_X = sigma^2 tr((X^T X)^{-1}); lambda = 2 draws the design twice a generation."""
    G, seeds, seed = 6, 300, 7
    errors = regression_loop_errors(policy, n=T, dim=D, generations=G, seeds=seeds, noise=1.0,
                                    lam=lam, design_seed=seed)
    x = load_dataset("linear_regression", n_train=T, n_test=2, seed=seed, dim=D).train[:, :-1]
    theory = expected_regression_error(policy, n=T, dim=D, generations=G, lam=lam, design=x,
                                       first_error=errors[0, 0])
    assert np.ptp(errors[:, 0]) == 0  # the first fit is the same real sample in every run
    assert within(errors[:, 1:], theory[1:])
    c = design_error_constant(x)
    wrong = theory + 0.15 * c * np.arange(G + 1)
    assert not within(errors[:, 1:], wrong[1:])


def test_replace_diverges_linearly_while_accumulate_stays_bounded_in_a_long_run():
    G = 60
    errors = {p: regression_loop_errors(p, n=T, dim=D, generations=G, seeds=40)
              for p in ("fully_synthetic", "accumulate")}
    c = regression_error_constant(T, D)
    assert errors["fully_synthetic"][:, -1].mean() > 25 * c
    assert errors["accumulate"][:, -1].mean() < ACCUMULATE_BOUND * c * 1.3


# -- the command line and the preset ---------------------------------------------------------------
def test_theory_regression_prints_the_theorem_beside_the_loop():
    result = CliRunner().invoke(app, ["theory", "regression", "--seeds", "200",
                                      "--generations", "3"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "replace" in text and "accumulate" in text and "4/4 generations inside" in text
    assert f"{regression_error_constant(20, 8):.4g}" in text
    assert f"{ACCUMULATE_BOUND * regression_error_constant(20, 8):.4g}" in text
    bad = CliRunner().invoke(app, ["theory", "regression", "--n", "5", "--dim", "4"])
    assert bad.exit_code == 2 and "n must exceed dim + 1" in bad.output


def test_the_toy_regression_preset_runs_and_draws_the_conditional_theory(tmp_path):
    import autophagy

    out = tmp_path / "run"
    args = ["run", "--preset", "toy-regression", "--out", str(out), "--set", "seed=[0, 1]",
            "--set", "loop.generations=3", "--set", "run.executor=inline"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    theory = autophagy.open_run(out).theory()
    assert set(theory["metric"]) == {"test_error"}
    df = autophagy.load_results(out)
    first = df[(df.metric == "test_error") & (df.generation == 0)].value
    assert math.isfinite(float(first.mean()))
    config = load_config(preset="toy-regression")
    assert config.model.options == {"noise_std": 1.0}
