"""Normalizing flows (zuko NSF and MAF): maximum likelihood, exact densities, temperature."""

import numpy as np
import pytest
import torch

from autophagy.models.flows import NormalizingFlow

torch.set_num_threads(1)  # tiny models: threads only add overhead (and contention)


def blobs(n=400, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[-3.0, 0.0], [3.0, 0.0]])
    return 10.0 + centres[rng.integers(2, size=n)] + 0.5 * rng.normal(size=(n, 2))


def banana(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    return 10.0 + np.c_[2 * x1, x1**2 + 0.3 * rng.normal(size=n)]


def small(flow, **kw):
    opts = {"transforms": 2, "hidden_features": (16, 16), "device": "cpu", "batch_size": 64,
            "initial_budget": 64 * 100, "lr": 3e-3}
    return NormalizingFlow(flow, **{**opts, **kw})


@pytest.mark.parametrize("flow", ["nsf", "maf"])
def test_flow_nll_decreases_during_training(flow):
    model = small(flow).fit(banana(), rng=np.random.default_rng(0))
    losses = model.last_train_.losses
    assert losses[-10:].mean() < losses[:10].mean() - 0.4


@pytest.mark.parametrize("flow", ["nsf", "maf"])
def test_flow_log_prob_integrates_to_one_in_data_coordinates(flow):
    model = small(flow).fit(banana(), rng=np.random.default_rng(0))
    g = np.linspace(0.0, 25.0, 251)
    xx, yy = np.meshgrid(g, g)
    mass = np.exp(model.log_prob(np.c_[xx.ravel(), yy.ravel()])).sum() * (g[1] - g[0]) ** 2
    assert mass == pytest.approx(1.0, abs=0.03)


def test_nsf_held_out_log_likelihood_beats_a_single_gaussian():
    x, test = blobs(seed=0), blobs(seed=1)
    model = small("nsf").fit(x, rng=np.random.default_rng(0))
    diff = test - x.mean(0)
    cov = np.cov(x.T)
    gauss = -0.5 * (np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
                    + np.log(np.linalg.det(cov)) + 2 * np.log(2 * np.pi))
    assert model.log_prob(test).mean() > gauss.mean() + 0.5


def test_temperature_scales_an_affine_flow_like_a_gaussian():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 2)) * [2.0, 0.5] + 1.0
    model = small("maf", transforms=1, initial_budget=128 * 100).fit(x, rng=rng)
    cold = model.sample(20000, rng=np.random.default_rng(1), temperature=0.25)
    hot = model.sample(20000, rng=np.random.default_rng(1), temperature=1.0)
    np.testing.assert_allclose(cold.std(0) / hot.std(0), 0.5, rtol=0.05)
    with pytest.raises(ValueError, match="temperature"):
        model.sample(5, rng=rng, temperature=0.0)


def test_invalid_options_name_the_argument():
    with pytest.raises(ValueError, match="flow must be one of"):
        NormalizingFlow("realnvp", device="cpu").fit(blobs(), rng=np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="not fitted"):
        NormalizingFlow(device="cpu").sample(3, rng=np.random.default_rng(0))
