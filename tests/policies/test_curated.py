"""Curated retraining (Ferbach et al., 2024): the Bradley-Terry policy run through the loop on a
finite support (the categorical model), checked against the exact curated operator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from autophagy.cli import app
from autophagy.config import Config, load_config
from autophagy.data import Dataset
from autophagy.loop import EvalSettings, LoopSettings, run_cell
from autophagy.metrics import Metric
from autophagy.models.families.categorical import Categorical
from autophagy.policies import Curated, make_policy
from autophagy.policies.curated import bradley_terry_choice
from autophagy.policies.rewards import check_reward, make_reward, reward_spec
from autophagy.run.grid import expand_grid
from autophagy.theory.curated import (
    curated_fixed_point,
    curated_step,
    curated_trajectory,
    reward_moments,
)

ATOMS = np.array([0.0, 1.0, 2.0, 3.0])
P0 = np.array([0.4, 0.3, 0.2, 0.1])
REWARD = {"name": "linear", "direction": [1.0]}  # r(x) = x on the atoms


def atoms_dataset(n: int) -> Dataset:
    """n points on the atoms 0..3 in the exact proportions P0 (so generation 0 fits P0)."""
    counts = np.round(P0 * n).astype(int)
    x = np.repeat(ATOMS, counts)[:, None]
    return Dataset("atoms", train=x, test=x[:10].copy())


def _prob(j: int) -> Metric:
    return Metric(f"p{j}", lambda ctx: float(ctx.model.probabilities()[j]), f"p of atom {j}")


PROBS = tuple(_prob(j) for j in range(len(ATOMS)))


def trajectories(policy, n, generations, seeds):
    """p_t of every seed, shape (seeds, T+1, atoms), through run_cell and the categorical model."""
    dataset = atoms_dataset(n)
    out = []
    for seed in range(seeds):
        result = run_cell(Categorical(), dataset, policy, LoopSettings(generations, seed),
                          EvalSettings(metrics=PROBS, n_samples=2))
        assert result.status == "done", result.message
        df = result.metrics.pivot(index="generation", columns="metric", values="value")
        out.append(df[[f"p{j}" for j in range(len(ATOMS))]].to_numpy())
    return np.array(out)


def test_bradley_terry_choice_frequencies_match_softmax():
    rng = np.random.default_rng(0)
    r = np.tile([0.0, 1.0, 2.0], (200_000, 1))
    pick = bradley_terry_choice(r, 1.0, rng)
    freq = np.bincount(pick, minlength=3) / len(pick)
    expected = np.exp([0.0, 1.0, 2.0]) / np.exp([0.0, 1.0, 2.0]).sum()
    se = np.sqrt(expected * (1 - expected) / len(pick))
    assert np.all(np.abs(freq - expected) < 3.5 * se)
    assert np.all(bradley_terry_choice(r[:5], np.inf, rng) == 2)


def test_exact_operator_matches_its_closed_forms():
    r = ATOMS
    np.testing.assert_allclose(curated_step(P0, r, k=1), P0)  # one candidate: no choice
    np.testing.assert_allclose(curated_step(P0, r, k=5, beta=0.0), P0)  # uniform choice
    w = np.exp(r)  # K = 2: H_j = E[2 w_j / (w_j + w_X)]
    h = np.array([(P0 * 2 * w[j] / (w[j] + w)).sum() for j in range(4)])
    np.testing.assert_allclose(curated_step(P0, r, k=2), P0 * h)
    best = 1 - (1 - P0[::-1].cumsum()) ** 3  # beta = inf: P(best of 3 draws >= atom)
    np.testing.assert_allclose(curated_step(P0, r, k=3, beta=np.inf)[::-1].cumsum(), best)
    big = curated_step(P0, r, k=60, beta=1.0)  # K -> inf: p e^r normalised
    tilt = P0 * np.exp(r) / (P0 * np.exp(r)).sum()
    assert np.abs(big - tilt).max() < 0.02


def test_one_curated_generation_has_the_exact_expected_law():
    """E[p_1] over seeds = curated(p_0) exactly (the categorical fit is the kept frequencies)."""
    n, seeds = 1000, 40
    policy = make_policy("curated", reward=REWARD, k=3, beta=1.0)
    p = trajectories(policy, n, 1, seeds)
    expected = curated_step(P0, ATOMS, k=3, beta=1.0)
    se = np.sqrt(expected * (1 - expected) / (n * seeds))
    np.testing.assert_allclose(p[:, 0].mean(0), P0)
    assert np.all(np.abs(p[:, 1].mean(0) - expected) < 3.5 * se), (p[:, 1].mean(0), expected)
    wrong = curated_step(P0, ATOMS, k=2, beta=1.0)  # the same test rejects a neighbour
    assert np.any(np.abs(wrong - expected) > 10 * se)


def test_fully_synthetic_curation_raises_the_reward_and_kills_its_variance():
    """Every generation's step is the exact operator (standardised residuals ~ N(0, 1)), the
    reward rises monotonically and its variance goes to 0, as the theory iterated says."""
    n, T, seeds, k = 4000, 8, 6, 4
    policy = make_policy("curated", reward=REWARD, k=k, beta=1.0)
    p = trajectories(policy, n, T, seeds)
    prev = p[:, :-1].reshape(-1, 4)
    step = np.array([curated_step(q, ATOMS, k=k) for q in prev])
    ok = (step > 1e-6) & (step < 1 - 1e-6)
    z = (p[:, 1:].reshape(-1, 4) - step)[ok] / np.sqrt(step * (1 - step) / n)[ok]
    assert abs(z.mean()) < 3 / np.sqrt(len(z)) + 0.05 and 0.6 < z.var() < 1.5
    mean, var = reward_moments(p, ATOMS)
    theory_mean, theory_var = reward_moments(curated_trajectory(P0, ATOMS, k=k, generations=T),
                                             ATOMS)
    assert np.all(np.diff(mean, axis=1) > 0) and np.all(np.diff(theory_mean) > 0)
    assert np.abs(mean.mean(0) - theory_mean).max() < 0.03
    assert var[:, -1].max() < 0.02 and theory_var[-1] < 0.01 < var[:, 0].min()


def test_real_data_holds_a_fixed_point_of_higher_reward_away_from_a_point_mass():
    n, T, seeds, k, w = 4000, 12, 4, 4, 0.5
    policy = make_policy("curated", reward=REWARD, k=k, beta=1.0, real_weight=w)
    assert policy.n_synthetic(n) == k * n
    p = trajectories(policy, n, T, seeds)
    fixed = curated_fixed_point(P0, ATOMS, k=k, real_weight=w)
    mean_fp, _ = reward_moments(fixed, ATOMS)
    mean_data, _ = reward_moments(P0, ATOMS)
    assert mean_fp > mean_data + 0.5
    assert fixed.min() >= w * P0.min() and fixed.max() < 0.5
    last = p[:, -3:].reshape(-1, 4).mean(0)
    se = np.sqrt(fixed * (1 - fixed) / (n * seeds * 3))
    assert np.all(np.abs(last - fixed) < 5 * se + 2e-3), (last, fixed)
    assert p[:, -1].max() < 0.5  # no point mass


def test_point_rewards_and_their_canonical_text():
    x = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 0.0]])
    bump = make_reward({"name": "bump", "center": [1, 0], "width": 0.5})
    np.testing.assert_allclose(bump(x), [1.0, np.exp(-8.0), np.exp(-2.0)])
    np.testing.assert_allclose(make_reward("linear")(x), [1.0, 3.0, 0.0])
    np.testing.assert_allclose(make_reward({"name": "distance", "center": [3, 0]})(x),
                               [-2.0, 0.0, -3.0])
    text = reward_spec({"name": "bump", "width": 0.5, "center": [1, 0]})
    assert text == "bump {center: [1, 0], width: 0.5}" and reward_spec(text) == text
    assert Curated(reward=text) == Curated(reward={"name": "bump", "center": [1, 0],
                                                   "width": 0.5})


def nan_reward(x):
    return np.full(len(x), np.nan)


def raising_reward(x):
    raise ZeroDivisionError("boom")


def scaled_reward(x, scale=1.0):
    return scale * np.asarray(x).reshape(len(x), -1)[:, 0]


def test_a_users_module_function_reward_is_called_with_its_options():
    r = make_reward({"name": "test_curated:scaled_reward", "scale": 2.0})
    np.testing.assert_allclose(r(np.array([[1.0], [2.0]])), [2.0, 4.0])
    with pytest.raises(ValueError, match="unknown option 'scal'"):
        reward_spec({"name": "test_curated:scaled_reward", "scal": 2.0})
    data = atoms_dataset(20)
    with pytest.raises(ValueError, match="non-finite"):
        check_reward("test_curated:nan_reward", data)
    with pytest.raises(ValueError, match="raised ZeroDivisionError: boom"):
        check_reward("test_curated:raising_reward", data)


BASE = [
    "--preset", "toy-curated", "--set", "loop.generations=1", "--set", "run.executor=inline",
]


@pytest.mark.parametrize(
    "override, field",
    [
        ("loop.policies.curated.k=0", "loop.policies.curated.k: k must be a whole number >= 1"),
        ("loop.policies.curated.beta=-1", "loop.policies.curated.beta: beta must be"),
        ("loop.policies.curated.real_weight=1", "loop.policies.curated.real_weight:"),
        ("loop.policies.curated.reward=nope", "loop.policies.curated.reward: unknown reward"),
        ("loop.policies.curated.reward={name: bump, wdth: 1}",
         "loop.policies.curated.reward: reward 'bump': unknown option 'wdth'"),
        ("loop.policies.curated.reward=test_curated:nan_reward",
         "loop.policies.curated.reward: reward 'test_curated:nan_reward' returned non-finite"),
        ("loop.policies.curated.reward=test_curated:raising_reward",
         "loop.policies.curated.reward: reward 'test_curated:raising_reward' raised"),
        ("loop.policies.curated.reward={name: bump, center: [1, 2, 3]}",
         "center has 3 values but the samples have 2"),
    ],
)
def test_bad_curated_options_stop_before_anything_runs_in_one_line(tmp_path, override, field):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", *BASE, "--set", override, "--out", str(out)])
    assert result.exit_code == 2, result.output
    line = " ".join(result.output.split())
    assert field in line, line
    assert not out.exists()


def test_the_toy_curated_preset_validates_and_an_infinite_beta_reaches_the_workers():
    config = load_config(preset="toy-curated", overrides=["loop.policies.curated.beta=[1, .inf]"])
    again = Config.model_validate_json(config.model_dump_json(by_alias=True))
    assert again.loop.policies["curated"]["beta"] == [1, np.inf]
    tags = {s.cell_id for s in expand_grid(again)}
    assert "curated-k4-betainf-rw0.5-seed0" in tags


def test_the_report_draws_class_shares_as_one_histogram(tmp_path):
    from autophagy.report.html import write_report

    rows = [
        {"cell": "c-seed0", "label": "curated k=4 β=1", "policy": "curated", "lambda": np.inf,
         "seed": 0, "generation": g, "metric": f"class_share_{c}",
         "value": (0.5 + 0.5 * g / 3) if c == 0 else (0.5 - 0.5 * g / 3) / 2}
        for g in range(4) for c in range(3)
    ]
    rows += [{**rows[0], "generation": g, "metric": "reward_mean", "value": float(g)}
             for g in range(4)]
    metrics = pd.DataFrame(rows)
    cells = pd.DataFrame([{"cell": "c-seed0", "label": "curated k=4 β=1", "policy": "curated",
                           "lambda": np.inf, "seed": 0, "status": "done", "message": ""}])
    write_report(tmp_path, title="t", config_text="", metrics=metrics, cells=cells,
                 verdict_metric="reward_mean")
    figures = {p.name for p in (tmp_path / "figures").iterdir()}
    assert "class_histogram.png" in figures and "reward_mean.png" in figures
    assert not any(name.startswith("class_share_") for name in figures)
