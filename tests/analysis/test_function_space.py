"""Function-space distances to the fixed point: the estimate where the answer is known.

An affine flow (MAF, one transform) fitted to Gaussian data is the Gaussian MLE up to training
noise, so mixed retraining contracts at rho = lambda / (1 + lambda) in any smooth embedding of
the model, its density included; fully synthetic retraining is a random walk (rho = 1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from autophagy.analysis.contraction import estimate_contraction, variogram_rho
from autophagy.analysis.stability import primary_distance, stability_table, stability_tables
from autophagy.data import load_dataset
from autophagy.loop import CellRun, EvalSettings, LoopSettings, run_cells
from autophagy.models import MODELS, build_model
from autophagy.policies import parse_policy

FUNCTION = ("function_distance", "function_step", "function_lag2")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _ar1(rho: float, seeds: int, gens: int, offset: float, rng) -> np.ndarray:
    """Trajectories theta_t in R^5 of an AR(1) chain around a fixed point ``offset`` away from
    theta_0 (a fit still converging when generation 0 is taken), unit noise."""
    c = np.zeros(5)
    c[0] = offset
    e = np.zeros((seeds, gens + 1, 5))
    e[:, 0] = -c  # theta_0 sits at -c from the fixed point
    for t in range(1, gens + 1):
        e[:, t] = rho * e[:, t - 1] + 0.3 * rng.standard_normal((seeds, 5))
    return e + c  # theta_t - theta_0


def _distances(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = np.linalg.norm(theta, axis=-1)
    s = np.zeros_like(d)
    s[:, 1:] = np.linalg.norm(np.diff(theta, axis=1), axis=-1)
    lag2 = np.full_like(d, np.nan)
    lag2[:, 2:] = np.linalg.norm(theta[:, 2:] - theta[:, :-2], axis=-1)
    return d, s, lag2


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.8])
def test_variogram_needs_no_fixed_point_where_polarization_around_generation_0_is_biased(rho):
    rng = np.random.default_rng(3)
    d, s, lag2 = _distances(_ar1(rho, seeds=400, gens=30, offset=1.0, rng=rng))
    assert variogram_rho(s, lag2) == pytest.approx(rho, abs=0.05)
    est = estimate_contraction(d, s, lag2=lag2)
    assert est.method == "variogram" and est.rho_low <= rho <= est.rho_high
    # the same chains against generation 0, about 3 standard deviations from the fixed point:
    # polarization reads "contracting towards theta_0" and lands far above rho
    assert estimate_contraction(d, s).rho > rho + (1 - rho) / 3


def test_variogram_of_a_random_walk_is_one():
    rng = np.random.default_rng(4)
    theta = np.cumsum(rng.standard_normal((300, 21, 3)), axis=1)
    theta -= theta[:, :1]
    d, s, lag2 = _distances(theta)
    est = estimate_contraction(d, s, lag2=lag2)
    assert est.rho == pytest.approx(1.0, abs=0.06)
    assert est.verdict == "unstable"


def _maf_cells(policies: list[str], seeds: int) -> pd.DataFrame:
    runs, keys = [], []
    for policy in policies:
        for seed in range(seeds):
            data = load_dataset("gaussian", seed=seed, n_train=1000, n_test=1000)
            model = build_model("maf", {"transforms": 1, "hidden_features": [16, 16],
                                        "lr": 0.003, "batch_size": 100, "device": "cpu",
                                        "initial_budget": 80_000, "budget": 20_000})
            runs.append(CellRun(model, data, parse_policy(policy), LoopSettings(10, seed),
                                EvalSettings(metrics=FUNCTION, n_samples=500)))
            keys.append((policy, seed))
    frames = []
    for (policy, seed), result in zip(keys, run_cells(runs), strict=True):
        assert result.status == "done", result.message
        name, _, lam = policy.partition(":")
        frames.append(result.metrics.assign(label=policy, policy=name, cell=f"{policy}/{seed}",
                                            **{"lambda": float(lam) if lam else np.nan}))
    return pd.concat(frames, ignore_index=True)


def test_affine_flow_on_a_gaussian_contracts_at_lambda_over_1_plus_lambda_in_function_space():
    metrics = _maf_cells(["mixed:0.5", "mixed:2", "fully_synthetic"], seeds=6)
    table = stability_table(metrics, distance="function_distance", step="function_step",
                            lag2="function_lag2").set_index("label")
    for lam in (0.5, 2.0):
        row = table.loc[f"mixed:{lam:g}"]
        assert row.rho_low <= lam / (1 + lam) <= row.rho_high, (lam, row.rho, row.rho_high)
        assert row.rho_high - row.rho_low < 0.6  # an interval that says something
    assert table.loc["fully_synthetic", "observed"] != "stable"
    assert table.loc["fully_synthetic", "rho_high"] > 1.0


def test_each_family_declares_the_distance_its_verdict_reads():
    assert primary_distance(MODELS["gaussian"])[0] == "theta_distance"
    assert primary_distance(MODELS["gmm"])[0] == "theta_distance"
    for name in ("nsf", "maf", "cfm", "otcfm", "ddpm", "edm"):
        assert primary_distance(MODELS[name])[0] == "function_distance", name
    assert primary_distance(None)[0] == "theta_distance"


def test_the_primary_table_comes_first_and_says_why():
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(3):
        d, s, lag2 = _distances(_ar1(0.5, seeds=1, gens=8, offset=0.0, rng=rng))
        for name, values in (("function_distance", d), ("function_step", s),
                             ("function_lag2", lag2), ("theta_distance", 3 * d),
                             ("theta_step", 3 * s)):
            rows += [{"label": "mixed λ=1", "policy": "mixed", "lambda": 1.0, "cell": seed,
                      "generation": t, "metric": name, "value": v}
                     for t, v in enumerate(values[0])]
    metrics = pd.DataFrame(rows)
    flow = stability_tables(metrics, family=MODELS["nsf"])
    assert [t.attrs["distance"] for t in flow] == ["function_distance", "theta_distance"]
    assert flow[0].attrs["primary"] and "not identifiable" in flow[0].attrs["why"]
    assert flow[0].attrs["method"] == "variogram"
    gaussian = stability_tables(metrics, family=MODELS["gaussian"])
    assert [t.attrs["distance"] for t in gaussian] == ["theta_distance", "function_distance"]


@pytest.mark.parametrize("name", ["nsf", "cfm", "otcfm", "ddpm", "edm"])
def test_function_values_are_fixed_by_the_probes_and_move_with_the_model(name):
    data = load_dataset("moons", seed=0, n_train=200, n_test=200)
    options = {"device": "cpu", "initial_budget": 2_000, "budget": 1_000, "batch_size": 100}
    if name != "nsf":
        options["hidden_features"] = [32, 32]
    model = build_model(name, options).fit(data.train, rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    probes = model.function_probes(rng, data.test, model.sample(300, rng=rng))
    assert len(probes["x"]) == 200 + 256  # half of 512 a side; the held-out set has 200
    before = model.function_values(probes)
    assert np.array_equal(before, model.function_values(probes))  # its own draws, every time
    if name == "nsf":  # Hellinger coordinates: generation 0 against itself is 1 / sqrt(m)
        np.testing.assert_allclose(before, 1 / np.sqrt(len(probes["x"])), rtol=1e-6)
    model.fit(data.train[::-1], warm_start=True, rng=np.random.default_rng(2))
    assert np.linalg.norm(model.function_values(probes) - before) > 0
