"""KDE retrained on its own samples (Fu et al., 2024), through the project's kde model and loop:
a fixed width settles at (n-1) h^2, a rule-of-thumb width grows geometrically, real data keeps
both bounded. Each closed form against Monte Carlo over seeds (about 3 standard errors)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from autophagy.cli import app
from autophagy.data import Dataset
from autophagy.loop import EvalSettings, LoopSettings, run_cell
from autophagy.metrics import Metric
from autophagy.models.families.kde import KernelDensity
from autophagy.policies import make_policy
from autophagy.theory.kde import (
    expected_kde_trajectory,
    expected_kde_variance,
    kde_stationary_variance,
)

REAL = np.random.default_rng(3).normal(0.0, 1.0, size=(20, 1))
M_R = REAL.mean(0)
V_R = float(REAL.var())
SET_VAR = Metric("set_var", lambda ctx: float(ctx.model.data_.var(0).mean()), "MLE variance")
SET_DRIFT = Metric("set_drift", lambda ctx: float(((ctx.model.data_.mean(0) - M_R) ** 2).mean()),
                   "squared drift of the set's mean from the real mean")


def loop_moments(bandwidth, policy, generations, seeds):
    """(v_t, a_t) of every seed, each (seeds, T+1): the training set the kde model holds."""
    dataset = Dataset("g", train=REAL, test=REAL[:5].copy())
    v, a = [], []
    for seed in range(seeds):
        result = run_cell(KernelDensity(bandwidth), dataset, make_policy(policy),
                          LoopSettings(generations, seed),
                          EvalSettings(metrics=(SET_VAR, SET_DRIFT), n_samples=2))
        df = result.metrics.pivot(index="generation", columns="metric", values="value")
        v.append(df["set_var"].to_numpy())
        a.append(df["set_drift"].to_numpy())
    return np.array(v), np.array(a)


def within(sim: np.ndarray, theory: np.ndarray, z: float = 3.5) -> bool:
    se = sim.std(0, ddof=1) / np.sqrt(len(sim))
    return bool(np.all(np.abs(sim.mean(0) - theory) <= z * se + 1e-12))


def test_fixed_width_fully_synthetic_settles_at_n_minus_one_h_squared():
    n, h, T, seeds = len(REAL), 0.5, 12, 300
    v, a = loop_moments(h, "fully_synthetic", T, seeds)
    theory = expected_kde_variance(n=n, generations=T, var0=V_R, h=h)
    np.testing.assert_allclose(theory[1:], (n - 1) / n * (theory[:-1] + h**2))
    assert within(v, theory)
    assert not within(v, expected_kde_variance(n=n, generations=T, var0=V_R, h=1.1 * h))
    long = expected_kde_variance(n=n, generations=2000, var0=V_R, h=h)
    assert long[-1] == pytest.approx(kde_stationary_variance(n, h), rel=1e-9)  # (n-1) h^2
    _, drift = expected_kde_trajectory(n=n, generations=T, real_var=V_R, h=h)
    assert within(a, drift)


def test_rule_of_thumb_width_fully_synthetic_grows_geometrically():
    n, T, seeds = len(REAL), 6, 400
    v, _ = loop_moments("scott", "fully_synthetic", T, seeds)
    b = n ** (-1 / 5)
    theory = expected_kde_variance(n=n, generations=T, var0=V_R, bandwidth_factor=b)
    growth = (n - 1) / n + b**2
    np.testing.assert_allclose(theory, V_R * growth ** np.arange(T + 1))
    assert growth > 1.2
    assert within(v, theory)
    same, _ = expected_kde_trajectory(n=n, generations=T, real_var=V_R, rule="scott")
    np.testing.assert_allclose(same, theory)


@pytest.mark.parametrize("bandwidth", [0.5, "scott"])
def test_real_data_keeps_the_kde_bounded(bandwidth):
    """mixed(lambda = 1): the exact recursion of (E v_t, E a_t) given the real sample, and a
    bounded limit where the fully synthetic loop drifts or explodes."""
    n, T, seeds = len(REAL), 10, 300
    kwargs = {"h": bandwidth} if isinstance(bandwidth, float) else {"rule": bandwidth}
    v, a = loop_moments(bandwidth, "mixed", T, seeds)
    theory_v, theory_a = expected_kde_trajectory(n=n, generations=T, real_var=V_R, lam=1.0,
                                                 **kwargs)
    assert within(v, theory_v) and within(a, theory_a)
    far_v, far_a = expected_kde_trajectory(n=n, generations=500, real_var=V_R, lam=1.0, **kwargs)
    assert abs(far_v[-1] - far_v[-2]) < 1e-9 and far_v[-1] < 2 * V_R + 0.5
    free_v, free_a = expected_kde_trajectory(n=n, generations=500, real_var=V_R, **kwargs)
    assert free_v[-1] > 2 * far_v[-1] and free_a[-1] > 10 * far_a[-1]


def test_theory_kde_command_prints_theory_beside_the_loop():
    result = CliRunner().invoke(app, ["theory", "kde", "--n", "20", "--generations", "4",
                                      "--seeds", "100", "--h", "0.5"])
    assert result.exit_code == 0, result.output
    assert "(n-1) h^2" in result.output and "agree" in result.output
    bad = CliRunner().invoke(app, ["theory", "kde", "--h", "-1"])
    assert bad.exit_code == 2 and "h must be a positive" in bad.output
