"""The retraining loop: determinism, separate RNG streams, resume, divergence, user models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from killed import killed_at

import autophagy
from autophagy.data import load_dataset
from autophagy.loop import EvalSettings, LoopSettings, resolve_metrics, run_cell
from autophagy.models import GaussianMixture, GaussianMLE
from autophagy.policies import parse_policy
from autophagy.store import CellStore


@pytest.fixture(scope="module")
def moons():
    return load_dataset("moons", n_train=200, n_test=400, seed=0)


class BoxModel:
    """A user's own model, written against the protocol only: uniform on the data's bounding box.

    Its fully synthetic fixed point is known: each generation's box is the range of n uniform
    draws from the previous box, so the box can only shrink.
    """

    def fit(self, data, *, warm_start=False, budget=None, rng=None):
        x = np.asarray(data, dtype=float)
        self.low_, self.high_ = x.min(axis=0), x.max(axis=0)
        return self

    def sample(self, n, *, rng, temperature=1.0):
        return rng.uniform(self.low_, self.high_, size=(n, len(self.low_)))

    def log_prob(self, x):
        x = np.asarray(x, dtype=float)
        inside = np.all((x >= self.low_) & (x <= self.high_), axis=1)
        return np.where(inside, -np.log(np.prod(self.high_ - self.low_)), -np.inf)

    def state_dict(self):
        return {"low": self.low_.copy(), "high": self.high_.copy()}

    def load_state_dict(self, state):
        self.low_, self.high_ = state["low"].copy(), state["high"].copy()


def test_run_loop_returns_long_metrics_frame_for_every_generation(moons):
    df = autophagy.run_loop("gmm", moons, "mixed:0.5", generations=3, seed=0, metrics=["w2", "nll"])
    assert list(df.columns) == ["generation", "metric", "value"]
    assert sorted(df.generation.unique()) == [0, 1, 2, 3]
    assert set(df.metric) == {"w2", "nll"}
    assert np.isfinite(df.value).all()


def test_same_seed_gives_identical_numbers_and_other_seed_differs(moons):
    a = autophagy.run_loop("gmm", moons, "fully_synthetic", generations=3, seed=1, metrics=["w2"])
    b = autophagy.run_loop("gmm", moons, "fully_synthetic", generations=3, seed=1, metrics=["w2"])
    c = autophagy.run_loop("gmm", moons, "fully_synthetic", generations=3, seed=2, metrics=["w2"])
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a.value[1:], c.value[1:])


def test_evaluation_never_moves_the_training_trajectory(moons):
    """More metrics or more evaluation samples draw from the evaluation stream only."""
    few = autophagy.run_loop(
        GaussianMLE(), moons, "fully_synthetic", 5, seed=0, metrics=["cov_trace_ratio"],
        n_samples=50,
    )
    many = autophagy.run_loop(
        GaussianMLE(),
        moons,
        "fully_synthetic",
        5,
        seed=0,
        metrics=["w2", "energy", "mmd", "cov_trace_ratio"],
        n_samples=500,
    )
    ratio = many[many.metric == "cov_trace_ratio"].reset_index(drop=True)
    pd.testing.assert_frame_equal(few, ratio)


def test_metric_value_does_not_depend_on_which_other_metrics_run(moons):
    alone = autophagy.run_loop("gmm", moons, "mixed:1", 2, seed=0, metrics=["sliced_w2"])
    along = autophagy.run_loop("gmm", moons, "mixed:1", 2, seed=0, metrics=["w2", "sliced_w2"])
    np.testing.assert_array_equal(alone.value, along[along.metric == "sliced_w2"].value)


def test_lambda_zero_refits_the_real_data_and_nothing_drifts(moons):
    df = autophagy.run_loop(
        GaussianMLE(), moons, "mixed:0", 4, seed=0, metrics=["cov_trace_ratio", "mean_shift_sq"]
    )
    piv = df.pivot(index="generation", columns="metric", values="value")
    np.testing.assert_allclose(piv.cov_trace_ratio, 1.0)
    np.testing.assert_allclose(piv.mean_shift_sq, 0.0, atol=1e-24)


def test_user_model_runs_through_public_api_and_shrinks_under_fully_synthetic(moons):
    df = autophagy.run_loop(
        BoxModel(), moons, "fully_synthetic", 8, seed=0, metrics=["w2", "nll", "cov_trace_ratio"]
    )
    piv = df.pivot(index="generation", columns="metric", values="value")
    assert set(piv.columns) == {"w2", "nll", "cov_trace_ratio"}
    # the box only shrinks: the sample variance a generation stands for falls
    assert piv.cov_trace_ratio.iloc[-1] < 0.95
    # held-out points fall outside the box: the NLL of a support-limited model is infinite
    assert np.isinf(piv.nll.iloc[-1])


def test_numpy_array_dataset_holds_out_a_fifth(moons):
    x = np.random.default_rng(0).normal(size=(500, 3))
    df = autophagy.run_loop(GaussianMLE(), x, "mixed:0.5", 2, seed=0, metrics=["mean_shift_sq"])
    assert len(df) == 3


@pytest.mark.parametrize("generations", [2.5, "3", True, -1])
def test_run_loop_refuses_bad_generations(moons, generations):
    with pytest.raises(ValueError, match="generations"):
        autophagy.run_loop("gmm", moons, "mixed:0.5", generations, seed=0)


class NaNAfter(GaussianMixture):
    """A real mixture whose sampler breaks at a given generation (counted in fits)."""

    def __init__(self, bad_fit: int, **kw):
        super().__init__(**kw)
        self.bad_fit, self.fits = bad_fit, 0

    def fit(self, data, **kw):
        self.fits += 1
        return super().fit(data, **kw)

    def sample(self, n, *, rng, temperature=1.0):
        x = super().sample(n, rng=rng, temperature=temperature)
        return x * np.nan if self.fits > self.bad_fit else x


def test_divergence_is_recorded_and_earlier_generations_are_kept(moons, tmp_path):
    store = CellStore(tmp_path / "cell")
    result = run_cell(
        NaNAfter(2, n_components=4),
        moons,
        parse_policy("mixed:0.5"),
        LoopSettings(5, seed=0),
        EvalSettings(metrics=("w2",)),
        store=store,
    )
    assert result.status == "diverged"
    assert "non-finite" in result.message
    assert sorted(result.metrics.generation) == [0, 1]
    assert store.info()["status"] == "diverged"
    assert store.generations_saved() == [0, 1]
    with pytest.raises(RuntimeError, match="diverged"):
        autophagy.run_loop(NaNAfter(2, n_components=4), moons, "mixed:0.5", 5, seed=0)


InterruptAt = killed_at(GaussianMixture)  # a real mixture killed during a given fit


@pytest.mark.parametrize("policy", ["accumulate", "fresh_real:0.3", "mixed:0.5"])
def test_resume_after_interruption_equals_an_uninterrupted_run(tmp_path, policy):
    data = load_dataset("eight_gaussians", n_train=150, n_test=300, n_pool=400, seed=3)
    loop, ev = LoopSettings(5, seed=3), EvalSettings(metrics=tuple(resolve_metrics(["w2", "nll"])))
    whole = run_cell(GaussianMixture(n_components=4), data, parse_policy(policy), loop, ev)
    store = CellStore(tmp_path / "cell")
    with pytest.raises(KeyboardInterrupt):
        run_cell(InterruptAt(4, n_components=4), data, parse_policy(policy), loop, ev, store=store)
    assert store.generations_saved() == [0, 1, 2]
    resumed = run_cell(
        GaussianMixture(n_components=4), data, parse_policy(policy), loop, ev, store=store
    )
    assert resumed.status == "done"
    pd.testing.assert_frame_equal(whole.metrics, resumed.metrics)
    pd.testing.assert_frame_equal(whole.metrics, store.metrics())
