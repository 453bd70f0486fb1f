"""Feature-space metrics through the loop: the extractor follows the data, real features are
computed once, and a flat-vector model on images is judged as images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import autophagy
from autophagy.data import load_dataset
from autophagy.metrics.extractors import PixelFeatures
from autophagy.metrics.feature_metrics import make_extractor
from autophagy.models import GaussianMLE


@pytest.fixture(autouse=True)
def one_thread(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOPHAGY_CACHE", str(tmp_path / "cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_auto_features_are_raw_values_for_points_and_pixels_for_unlabelled_images(monkeypatch):
    monkeypatch.delenv("AUTOPHAGY_INCEPTION", raising=False)
    moons = load_dataset("moons", n_train=50, n_test=50)
    assert isinstance(make_extractor("auto", moons), PixelFeatures)
    with pytest.raises(ValueError, match="^features: 'classifier' needs a labelled image"):
        make_extractor("classifier", moons)
    with pytest.raises(ValueError, match="^features: unknown extractor 'vgg'"):
        make_extractor("vgg", moons)


def test_gaussian_on_digits_is_judged_by_the_digits_classifier():
    digits = load_dataset("digits", n_train=1000, n_test=400, seed=0)
    df = autophagy.run_loop(
        GaussianMLE(),
        digits,
        "mixed:0.5",
        1,
        seed=0,
        n_samples=400,
        metrics=["fid", "kid", "precision", "recall", "class_kl", "classes_covered"],
    )
    values = df.pivot(index="generation", columns="metric", values="value")
    assert set(values.columns) == {
        "fid",
        "kid",
        "precision",
        "recall",
        "class_kl",
        "classes_covered",
    }
    # a full-covariance Gaussian of 64 pixels draws blurry digits of every class
    assert values.classes_covered.min() == 10
    assert (values.class_kl < 0.2).all()
    assert np.isfinite(values.to_numpy()).all()
    # the same samples judged against themselves: the held-out set's own FID is ~0
    real_vs_real = autophagy.run_loop(
        _Replay(digits.test), digits, "mixed:0", 0, seed=0, n_samples=400, metrics=["fid"]
    )
    assert real_vs_real.value.iloc[0] < 1e-6 < values.fid.iloc[0]


class _Replay:
    """A 'model' that returns the held-out images themselves: the ideal generator."""

    def __init__(self, images):
        self.images = images

    def fit(self, data, **kw):
        return self

    def sample(self, n, *, rng, temperature=1.0):
        return self.images[:n]

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass
