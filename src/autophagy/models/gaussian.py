"""Gaussian maximum likelihood: the model the paper's theory is exact for.

The batched functions (:func:`fit_gaussian`, :func:`sample_gaussian`) work on a leading batch axis
so that the same code fits one model in the loop and thousands of seeds at once in
:mod:`autophagy.theory.simulation`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autophagy.models.base import check_temperature


def fit_gaussian(x: np.ndarray, *, unbiased: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Mean and full covariance of ``x`` with shape (..., n, d).

    ``unbiased=False`` divides by n (maximum likelihood), ``True`` by n - 1.
    Returns ``mean`` of shape (..., d) and ``cov`` of shape (..., d, d).
    """
    n = x.shape[-2]
    if n < 2:
        raise ValueError(f"need at least 2 samples to fit a Gaussian, got {n}")
    mean = x.mean(axis=-2)
    centred = x - mean[..., None, :]
    cov = np.einsum("...ni,...nj->...ij", centred, centred) / (n - 1 if unbiased else n)
    return mean, cov


def safe_cholesky(cov: np.ndarray) -> np.ndarray:
    """Cholesky factor of a batch of covariances, with jitter for (near-)singular ones.

    Fully synthetic retraining drives covariances to zero; the jitter keeps sampling defined when
    they reach machine precision instead of crashing the run.
    """
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        d = cov.shape[-1]
        scale = np.maximum(np.trace(cov, axis1=-2, axis2=-1) / d, 1e-300)[..., None, None]
        return np.linalg.cholesky(cov + 1e-10 * scale * np.eye(d))


def sample_gaussian(
    mean: np.ndarray,
    chol: np.ndarray,
    n: int,
    rng: np.random.Generator,
    temperature: float = 1.0,
) -> np.ndarray:
    """``n`` draws from N(mean, temperature * chol chol^T), batched over leading axes.

    A temperature tau samples from p ** (1 / tau), which for a Gaussian is the same mean with
    covariance scaled by tau (MAD's "sampling bias" is this knob with tau <= 1).
    """
    z = rng.standard_normal(mean.shape[:-1] + (n, mean.shape[-1]))
    return mean[..., None, :] + np.sqrt(temperature) * np.einsum("...ij,...nj->...ni", chol, z)


class GaussianMLE:
    """A full-covariance Gaussian fitted by maximum likelihood.

    The warm-up example of Bertrand et al. (2024) and of Shumailov et al. (2023): under fully
    synthetic retraining its covariance shrinks to zero; with real data in the mix it settles near
    the real-data fit. ``unbiased=True`` divides the covariance by n - 1 instead of n (its expected
    covariance is then constant, yet it still collapses almost surely).

    Example:
        >>> model = GaussianMLE().fit(x, rng=np.random.default_rng(0))
        >>> model.sample(100, rng=np.random.default_rng(1)).shape
        (100, 2)
    """

    sampling_temperature = "exact"  # N(mu, tau Sigma) is p^(1/tau), normalised

    def __init__(self, unbiased: bool = False):
        self.unbiased = bool(unbiased)

    def fit(self, data, *, warm_start=False, budget=None, rng=None) -> GaussianMLE:
        x = np.asarray(data, dtype=np.float64).reshape(len(data), -1)
        self.mean_, self.cov_ = fit_gaussian(x, unbiased=self.unbiased)
        self.chol_ = safe_cholesky(self.cov_)
        return self

    def sample(self, n, *, rng, temperature=1.0) -> np.ndarray:
        t = check_temperature(temperature)
        return sample_gaussian(self.mean_, self.chol_, int(n), rng, t)

    def log_prob(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        d = x.shape[1]
        sol = np.linalg.solve(self.chol_, (x - self.mean_).T)
        logdet = 2.0 * np.log(np.abs(np.diag(self.chol_))).sum()
        return -0.5 * ((sol**2).sum(axis=0) + logdet + d * np.log(2 * np.pi))

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean_.copy(), "cov": self.cov_.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean_ = np.asarray(state["mean"], dtype=np.float64)
        self.cov_ = np.asarray(state["cov"], dtype=np.float64)
        self.chol_ = safe_cholesky(self.cov_)
