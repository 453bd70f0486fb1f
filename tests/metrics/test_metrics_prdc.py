"""Precision / recall / density / coverage: agreement with the ``prdc`` package (the reference
definitions of Kynkäänniemi et al., 2019 and Naeem et al., 2020), edge cases, and the registered
metrics inside the loop."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

import autophagy
from autophagy.data.base import Dataset
from autophagy.metrics import METRICS, EvalContext, get_metric, prdc

KEYS = ("precision", "recall", "density", "coverage")


def reference(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    ref = pytest.importorskip("prdc")
    with contextlib.redirect_stdout(io.StringIO()):  # compute_prdc prints the set sizes
        return {key: float(v) for key, v in ref.compute_prdc(real, fake, k).items()}


@pytest.mark.parametrize(
    ("n", "m", "dim", "k", "dtype"),
    [
        (300, 250, 2, 5, np.float64),
        (500, 400, 8, 3, np.float32),
        (400, 600, 64, 5, np.float32),
        (1000, 800, 16, 10, np.float64),
        (200, 200, 128, 1, np.float32),
    ],
)
def test_prdc_agrees_with_the_prdc_package(n, m, dim, k, dtype):
    rng = np.random.default_rng(n + m + dim + k)
    real = rng.standard_normal((n, dim)).astype(dtype)
    fake = (1.2 * rng.standard_normal((m, dim)) + 0.3).astype(dtype)
    ours = prdc(real, fake, k=k)
    ref = reference(real, fake, k)
    assert set(ours) == set(KEYS)
    for key in KEYS:
        assert ours[key] == pytest.approx(ref[key], rel=1e-6, abs=1e-12), key


def test_prdc_small_chunks_and_a_far_offset_give_the_same_values():
    """Chunking must not change anything; a common offset (large norms) must not either."""
    rng = np.random.default_rng(7)
    real = rng.standard_normal((300, 5))
    fake = rng.standard_normal((350, 5)) * 0.8
    whole = prdc(real, fake, k=4)
    assert prdc(real, fake, k=4, chunk_size=7) == whole
    shifted = prdc(real + 1e4, fake + 1e4, k=4)
    for key in KEYS:
        assert shifted[key] == pytest.approx(whole[key], rel=1e-6), key
    assert whole == pytest.approx(reference(real, fake, 4), rel=1e-6)


def test_prdc_with_duplicates_and_ties_matches_the_reference():
    """Integer grids make exact ties between distances and radii: both sides use ``<``."""
    rng = np.random.default_rng(3)
    real = rng.integers(0, 4, size=(200, 2)).astype(np.float64)
    fake = rng.integers(0, 5, size=(150, 2)).astype(np.float64)
    assert prdc(real, fake, k=3) == pytest.approx(reference(real, fake, 3), rel=1e-6)


def test_prdc_identical_sets_and_torch_inputs():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 3))
    same = prdc(x, x, k=5)
    assert same["precision"] == 1.0 and same["recall"] == 1.0 and same["coverage"] == 1.0
    y = rng.standard_normal((300, 3)) + 5.0  # far apart: nothing overlaps
    apart = prdc(x, y, k=5)
    assert apart == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    z = rng.standard_normal((300, 3))
    assert prdc(torch.from_numpy(x), torch.from_numpy(z), k=5) == prdc(x, z, k=5)


def test_prdc_rejects_bad_arguments():
    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match="more than k points"):
        prdc(x, x[:5], k=5)
    with pytest.raises(ValueError, match="feature dimensions differ"):
        prdc(x, np.zeros((10, 3)), k=2)
    with pytest.raises(ValueError, match="positive whole number"):
        prdc(x, x, k=0)
    with pytest.raises(ValueError, match="finite"):
        prdc(np.full((10, 2), np.nan), x, k=2)


def test_prdc_metrics_are_registered_higher_is_better_and_share_one_computation():
    for name in KEYS:
        assert name in METRICS and METRICS[name].lower_is_better is False
    rng = np.random.default_rng(1)
    held = rng.standard_normal((2500, 2))  # more than PRDC_MAX_SAMPLES: subsampled
    samples = rng.standard_normal((3000, 2)) * 1.1
    ctx = EvalContext(
        model=None,
        samples=samples,
        held_out=held,
        dataset=Dataset("g", train=held, test=held),
        rng=np.random.default_rng(5),
    )
    values = {name: get_metric(name)(ctx) for name in KEYS}
    again = {name: get_metric(name)(ctx) for name in KEYS}
    assert values == again
    assert all(0.0 <= values[k] <= 1.0 for k in ("precision", "recall", "coverage"))
    assert values["density"] > 0.5


def test_prdc_metrics_run_in_the_loop():
    df = autophagy.run_loop("gmm", "moons", "mixed:0.5", generations=1, metrics=list(KEYS), seed=0)
    assert set(df["metric"]) == set(KEYS)
    assert sorted(set(df["generation"])) == [0, 1]
    assert np.isfinite(df["value"]).all() and (df["value"] > 0.3).all()
