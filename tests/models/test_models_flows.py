"""Normalizing flows (zuko NSF and MAF): maximum likelihood, exact densities, temperature."""

import numpy as np
import pytest
import torch

from autophagy.models.families.flows import NormalizingFlow

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


def test_our_spline_is_zukos_nsf_up_to_float_rounding():
    """The NSF's spline (its softmax written out) against zuko.flows.NSF with the same weights:
    log-density and inverse no further from a float64 evaluation of zuko's than zuko's own
    float32 is, and the same state-dict keys (checkpoints of either load into the other)."""
    import copy

    import zuko

    from autophagy.models.families.flows import build_flow

    torch.manual_seed(0)
    ours = build_flow("nsf", 2, 3, [32, 32], 8)
    torch.manual_seed(0)
    theirs = zuko.flows.NSF(features=2, transforms=3, hidden_features=(32, 32), bins=8)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    assert all(torch.equal(v, theirs.state_dict()[k]) for k, v in ours.state_dict().items())
    exact = copy.deepcopy(theirs).double()
    x = torch.randn(5000, 2, generator=torch.Generator().manual_seed(1)) * 3  # tails included
    z = torch.randn(5000, 2, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        for f in (lambda m, v: m().log_prob(v), lambda m, v: m().transform.inv(v)):
            for v in (x, z):
                truth = f(exact, v.double())
                err_ours = (f(ours, v).double() - truth).abs()
                err_zuko = (f(theirs, v).double() - truth).abs()
                assert err_ours.mean() <= 1.5 * err_zuko.mean() + 1e-7
                assert err_ours.max() <= 2 * err_zuko.max() + 1e-6
