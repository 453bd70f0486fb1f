"""Temperature means p^(1/tau) in every family: the categorical model's heat death (Marchi et al.,
2024) against its closed forms, MAD's Gaussian bias knob E[Sigma_t] = b^t Sigma_0, and the
refusal of a temperature a family cannot honour."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from autophagy.cli import app
from autophagy.data import Dataset
from autophagy.loop import EvalSettings, LoopSettings, run_cell
from autophagy.metrics import Metric
from autophagy.models.base import temperature_support
from autophagy.models.families.categorical import Categorical, tempered
from autophagy.models.families.gaussian import GaussianMLE
from autophagy.models.registry import build_model
from autophagy.policies import make_policy
from autophagy.signatures import ArgumentError
from autophagy.theory import simulate_gaussian_loop
from autophagy.theory.categorical import (
    entropy,
    heat_death,
    heat_death_fixed_point,
    heat_death_trajectory,
)

P0 = np.array([0.4, 0.3, 0.2, 0.1])


def atoms(p: np.ndarray, n: int) -> Dataset:
    x = np.repeat(np.arange(len(p), dtype=float), np.round(p * n).astype(int))[:, None]
    return Dataset("atoms", train=x, test=x[:10].copy())


def _prob(j: int) -> Metric:
    return Metric(f"p{j}", lambda ctx: float(ctx.model.probabilities()[j]), f"p of atom {j}")


def trajectories(p, n, policy, generations, seeds, temperature):
    probs = tuple(_prob(j) for j in range(len(p)))
    out = []
    for seed in range(seeds):
        result = run_cell(Categorical(), atoms(p, n), make_policy(policy),
                          LoopSettings(generations, seed, temperature=temperature),
                          EvalSettings(metrics=probs, n_samples=2))
        assert result.status == "done", result.message
        df = result.metrics.pivot(index="generation", columns="metric", values="value")
        out.append(df[[f"p{j}" for j in range(len(p))]].to_numpy())
    return np.array(out)


@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
def test_categorical_samples_exactly_from_p_to_the_one_over_tau(tau):
    model = Categorical().fit(atoms(P0, 1000).train)
    x = model.sample(200_000, rng=np.random.default_rng(1), temperature=tau)
    freq = np.bincount(x[:, 0].astype(int), minlength=4) / len(x)
    expected = P0 ** (1 / tau) / (P0 ** (1 / tau)).sum()
    se = np.sqrt(expected * (1 - expected) / len(x))
    assert np.all(np.abs(freq - expected) < 3.5 * se)
    np.testing.assert_allclose(tempered(P0, tau), expected)


def test_grid_snapping_makes_points_a_finite_support():
    model = Categorical(grid=0.5).fit(np.array([[0.1, 0.2], [0.05, 0.24], [0.9, -0.1]]))
    np.testing.assert_allclose(model.support_, [[0.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(model.probabilities(), [2 / 3, 1 / 3])


@pytest.mark.parametrize("tau", [0.7, 1.5])
def test_heat_death_follows_p0_to_the_one_over_tau_to_the_t(tau):
    """Large samples: p_t ∝ p_0^(1/tau^t) through the loop; to the argmax below 1, to uniform
    above. Each generation's step is exact in expectation (standardised residuals)."""
    n, T, seeds = 20_000, 8, 3
    p = trajectories(P0, n, "fully_synthetic", T, seeds, tau)
    theory = heat_death(P0, tau, T)
    np.testing.assert_allclose(theory, heat_death_trajectory(P0, tau, T))
    step = np.array([tempered(q, tau) for q in p[:, :-1].reshape(-1, 4)])
    ok = step > 1e-4
    z = (p[:, 1:].reshape(-1, 4) - step)[ok] / np.sqrt(step * (1 - step) / n)[ok]
    assert abs(z.mean()) < 3.5 / np.sqrt(len(z)) and 0.5 < z.var() < 1.6
    assert np.abs(p.mean(0) - theory).max() < 0.02
    h = entropy(p.mean(0))
    if tau < 1:
        assert np.all(np.diff(h) < 0) and theory[-1, 0] > 0.98 and p[:, -1, 0].min() > 0.95
    else:
        assert np.all(np.diff(h) > 0) and np.log(4) - h[-1] < 0.02


def test_temperature_one_with_finite_samples_is_absorbed_at_a_vertex_chosen_by_p0():
    """Wright-Fisher: the frequencies are a martingale absorbed at atom i w.p. p_0(i)."""
    p0 = np.array([0.5, 0.3, 0.2])
    n, T, seeds = 10, 50, 150
    p = trajectories(p0, n, "fully_synthetic", T, seeds, 1.0)
    last = p[:, -1]
    absorbed = last.max(1) == 1.0
    assert absorbed.mean() > 0.97
    share = np.bincount(last[absorbed].argmax(1), minlength=3) / absorbed.sum()
    se = np.sqrt(p0 * (1 - p0) / absorbed.sum())
    assert np.all(np.abs(share - p0) < 3.5 * se), share


def test_real_data_each_generation_stops_heat_death():
    """mixed(lambda = 1): real share 1/2; the loop settles at the closed-form fixed point."""
    n, T, seeds, tau = 20_000, 12, 3, 0.5
    p = trajectories(P0, n, "mixed", T, seeds, tau)
    fixed = heat_death_fixed_point(P0, tau, real_weight=0.5)
    np.testing.assert_allclose(fixed, 0.5 * P0 + 0.5 * tempered(fixed, tau), atol=1e-12)
    assert np.abs(p[:, -3:].reshape(-1, 4).mean(0) - fixed).max() < 0.01
    assert fixed.min() > 0.5 * P0.min() and entropy(fixed) > 0.5 * entropy(P0)
    collapsed = heat_death(P0, tau, T)[-1]
    assert collapsed.max() > 0.999  # without the real data: the argmax


def test_gaussian_bias_knob_shrinks_the_expected_covariance_by_b_per_generation():
    """MAD's sampling bias b = temperature, unbiased estimator: E[Sigma_t] = b^t Sigma_0,
    through the loop (400 seeds) and the project's vectorised loop (20,000 seeds)."""
    b, n, T, seeds = 0.8, 20, 5, 400
    real = np.random.default_rng(7).multivariate_normal([0, 0], [[1, 0.5], [0.5, 2]], size=n)
    dataset = Dataset("g", train=real, test=real[:5].copy())
    sigma0 = np.cov(real.T, ddof=1)
    traces = []
    for seed in range(seeds):
        result = run_cell(GaussianMLE(unbiased=True), dataset, make_policy("fully_synthetic"),
                          LoopSettings(T, seed, temperature=b),
                          EvalSettings(metrics=("cov_trace_ratio",), n_samples=2))
        traces.append(result.metrics["value"].to_numpy())
    ratio = np.array(traces)
    expected = b ** np.arange(T + 1)
    se = ratio.std(0, ddof=1) / np.sqrt(seeds)
    assert np.all(np.abs(ratio.mean(0) - expected) <= 3 * se + 1e-12)
    assert np.abs(ratio.mean(0)[-1] - ((n - 1) / n * b) ** T) > 3 * se[-1]  # MLE would differ
    sim = simulate_gaussian_loop(n=n, generations=T, policy="fully_synthetic", seeds=20_000,
                                 mean=[0, 0], cov=[[1, 0.5], [0.5, 2]], unbiased=True,
                                 temperature=b, real=real)
    cov = sim.covs.mean(0)
    se_cov = sim.covs.std(0, ddof=1) / np.sqrt(20_000)
    assert np.all(np.abs(cov - expected[:, None, None] * sigma0) <= 3.5 * se_cov + 1e-12)


class NoTemperature:
    """A model whose sample() takes no temperature: it cannot honour one."""

    def fit(self, data, *, warm_start=False, budget=None, rng=None):
        self.mean_ = np.asarray(data, dtype=float).mean(0)
        return self

    def sample(self, n, *, rng):
        return self.mean_ + rng.standard_normal((n, len(self.mean_)))

    def state_dict(self):
        return {"mean": self.mean_}

    def load_state_dict(self, state):
        self.mean_ = state["mean"]


def test_every_family_says_how_it_honours_a_temperature():
    assert temperature_support(GaussianMLE()) == "exact"
    assert temperature_support(Categorical()) == "exact"
    for name in ("gmm", "kde"):
        assert temperature_support(build_model(name)) == "approximate"
    assert temperature_support(NoTemperature()) == "none"


def test_a_family_that_cannot_honour_a_temperature_is_refused_before_anything_runs(tmp_path):
    data = atoms(P0, 20)
    with pytest.raises(ArgumentError, match="temperature: model NoTemperature cannot sample"):
        run_cell(NoTemperature(), data, make_policy("fully_synthetic"),
                 LoopSettings(2, temperature=0.5))
    ok = run_cell(NoTemperature(), data, make_policy("fully_synthetic"), LoopSettings(1),
                  EvalSettings(metrics=("w2",), n_samples=5))
    assert ok.status == "done", ok.message
    out = tmp_path / "run"
    args = ["run", "--preset", "gaussian-theory", "--set", "model.name=test_categorical:"
            "NoTemperature", "--set", "loop.temperature=0.5", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "loop.temperature: model NoTemperature cannot sample at a temperature" in " ".join(
        result.output.split())
    assert not out.exists()
