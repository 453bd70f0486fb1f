"""Diffusion: schedules, the samplers against the closed form of a Gaussian, and the models.

With Gaussian data N(m, s^2) the optimal denoiser is known, E[x0 | x_t] = m + a s^2 (x_t - a m) /
(a^2 s^2 + b^2) for x_t = a x0 + b eps, so plugging it into a sampler must return N(m, s^2): a
strong test of the sampler code with no training.
"""

import numpy as np
import pytest
import torch

from autophagy.models.families.diffusion import (
    DDPM,
    EDM,
    ddim_sample,
    ddpm_sample,
    ddpm_schedule,
    edm_denoise,
    edm_loss,
    edm_sample,
    karras_sigmas,
)

torch.set_num_threads(1)  # tiny models: threads only add overhead (and contention)

M = torch.tensor([1.0, -0.5], dtype=torch.float64)
S = torch.tensor([0.5, 2.0], dtype=torch.float64)
N = 20000


def posterior_mean(x, a, b):
    return M + a * S**2 * (x - a * M) / (a**2 * S**2 + b**2)


def exact_eps(betas):
    abar = torch.cumprod(1 - betas, 0)

    def eps(x, c):
        t = int(round(float(c[0]) * len(betas)))
        a, b = abar[t].sqrt(), (1 - abar[t]).sqrt()
        return (x - a * posterior_mean(x, a, b)) / b

    return eps


def noise_from(seed):
    g = torch.Generator().manual_seed(seed)
    return lambda shape: torch.randn(shape, generator=g, dtype=torch.float64)


def assert_gaussian(x, atol_mean=0.03, rtol_std=0.03):
    np.testing.assert_allclose(x.mean(0).numpy(), M.numpy(), atol=atol_mean)
    np.testing.assert_allclose(x.std(0).numpy(), S.numpy(), rtol=rtol_std)


def test_schedules_are_valid_noise_levels():
    for schedule in ("linear", "cosine"):
        betas = ddpm_schedule(schedule, 1000)
        assert betas.shape == (1000,) and (betas > 0).all() and (betas < 1).all()
        assert torch.cumprod(1 - betas, 0)[-1] < 1e-4
    sigmas = karras_sigmas(18, 0.002, 80.0, 7.0)
    assert sigmas[0] == pytest.approx(80.0) and sigmas[-2] == pytest.approx(0.002)
    assert sigmas[-1] == 0 and (sigmas.diff() < 0).all()


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_ddpm_ancestral_sampler_with_the_exact_denoiser_returns_the_gaussian(schedule):
    betas = ddpm_schedule(schedule, 200)
    noise = noise_from(0)
    x = ddpm_sample(exact_eps(betas), noise((N, 2)), betas, noise)
    assert_gaussian(x, rtol_std=0.04)


@pytest.mark.parametrize("steps,eta,rtol", [(200, 0.0, 0.03), (200, 1.0, 0.06)])
def test_ddim_sampler_with_the_exact_denoiser_returns_the_gaussian(steps, eta, rtol):
    betas = ddpm_schedule("linear", 200)
    noise = noise_from(1)
    x = ddim_sample(exact_eps(betas), noise((N, 2)), betas, noise, steps=steps, eta=eta)
    assert_gaussian(x, rtol_std=rtol)  # eta = 1 uses the posterior variance: O(1/T) low


def test_deterministic_ddim_and_edm_samplers_agree_and_are_exact_under_temperature():
    sigmas = karras_sigmas(40, 0.002, 80.0, 7.0)

    def denoiser(x, sigma):
        return posterior_mean(x, 1.0, sigma[:, None])

    z = noise_from(2)((N, 2))
    x = edm_sample(denoiser, z * sigmas[0], sigmas)
    assert_gaussian(x)
    # the probability-flow ODE of a Gaussian is linear: scaling the noise by sqrt(tau) about the
    # ODE's image of 0 scales the samples by sqrt(tau) about the mean, i.e. samples p^(1/tau)
    x0 = edm_sample(denoiser, 0 * z, sigmas)
    x_cold = edm_sample(denoiser, 0.5 * z * sigmas[0], sigmas)
    torch.testing.assert_close(x_cold - x0, 0.5 * (x - x0))


def test_edm_preconditioning_with_a_zero_network_is_the_scaled_input():
    x, sigma = torch.randn(5, 2), torch.full((5,), 2.0)
    d = edm_denoise(lambda y, c: torch.zeros_like(y), x, sigma, sigma_data=0.5)
    torch.testing.assert_close(d, x * 0.25 / (4 + 0.25))
    # the loss weight makes the initial loss about one per dimension for unit-variance data
    y = torch.randn(4000, 2)
    loss = edm_loss(lambda v, c: torch.zeros_like(v), y, torch.randn(4000), torch.randn(4000, 2))
    assert loss.item() == pytest.approx(2.0, rel=0.1)


def clusters(n=400, seed=0):
    rng = np.random.default_rng(seed)
    return np.array([[-2.0, 0.0], [2.0, 0.0]])[rng.integers(2, size=n)] + 0.05 * rng.normal(
        size=(n, 2))


@pytest.mark.parametrize("cls,options,steps,ratio", [
    (DDPM, {"timesteps": 100, "sampler": "ddim", "steps": 20}, 150, 0.5),
    # EDM's weighted loss is about 1 per dimension at init and cannot go far below it here: the
    # standardised y coordinate is pure Gaussian noise (irreducible loss 1)
    (EDM, {"steps": 10}, 600, 0.85),
])
def test_diffusion_loss_decreases_on_a_fixed_evaluation_batch(cls, options, steps, ratio):
    x = clusters()
    model = cls(**options, hidden_features=(32, 32), time_features=8, device="cpu",
                batch_size=128, initial_budget=128 * 150, lr=3e-3)
    model.fit(x, rng=np.random.default_rng(0), budget=0)

    def loss():
        with torch.no_grad():
            batch = model._to_model_space(x)
            return model._loss(model.eval_module, batch, torch.Generator().manual_seed(0)).item()

    before = loss()
    model.fit(x, warm_start=True, budget=128 * steps, rng=np.random.default_rng(1))
    assert loss() < ratio * before
    assert np.isfinite(model.sample(100, rng=np.random.default_rng(2))).all()
