"""Gaussian maximum likelihood: the model the paper's theory is exact for.

The batched functions (:func:`fit_gaussian`, :func:`sample_gaussian`) work on a leading batch axis
so that the same code fits one model in the loop and thousands of seeds at once in
:mod:`autophagy.theory.simulation`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autophagy.theory.sampling import (  # noqa: F401
    check_temperature,
    fit_gaussian,
    safe_cholesky,
    sample_gaussian,
)


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
    closed_form = "gaussian"  # theory.gaussian: expected moments given generation 0
    identifiable = True

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
