"""Kernel density estimation with a Gaussian kernel, the model of Fu et al. (2024)'s theory.

Written by hand (a few lines) rather than with scipy's ``gaussian_kde`` or scikit-learn's
``KernelDensity``: the theory needs both a *fixed absolute* bandwidth (scipy always scales the
kernel by the data covariance) and a rule-of-thumb bandwidth that follows the data's spread
(scikit-learn's "scott" ignores the spread), and sampling must use our RNG.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import logsumexp

from autophagy.errors import InputError
from autophagy.theory.sampling import (  # noqa: F401
    RULES,
    check_temperature,
    fit_gaussian,
    rule_of_thumb_factor,
    safe_cholesky,
)


class KernelDensity:
    """Gaussian KDE: the training points, each blurred by a Gaussian kernel.

    ``bandwidth`` is either a positive number h (kernel covariance h^2 I, fixed across
    generations: the variance then settles at about (n - 1) h^2 under fully synthetic retraining)
    or a rule of thumb, "scott" or "silverman" (kernel covariance factor^2 times the data's
    covariance, re-estimated each generation: the variance then grows geometrically).
    """

    identifiable = True  # its distance to the fixed point is the L2 distance of densities

    def __init__(self, bandwidth: float | str = "scott"):
        if isinstance(bandwidth, str):
            rule_of_thumb_factor(bandwidth, 10, 1)  # validates the name
        elif not (np.isfinite(bandwidth) and float(bandwidth) > 0):
            raise InputError(f"bandwidth must be a positive number or a rule, got {bandwidth!r}")
        self.bandwidth = bandwidth

    def fit(self, data, *, warm_start=False, budget=None, rng=None) -> KernelDensity:
        x = np.asarray(data, dtype=np.float64).reshape(len(data), -1)
        n, d = x.shape
        if isinstance(self.bandwidth, str):
            _, cov = fit_gaussian(x, unbiased=True)
            self.kernel_cov_ = rule_of_thumb_factor(self.bandwidth, n, d) ** 2 * cov
        else:
            self.kernel_cov_ = float(self.bandwidth) ** 2 * np.eye(d)
        self.data_ = x
        self.kernel_chol_ = safe_cholesky(self.kernel_cov_)
        return self

    def sample(self, n, *, rng, temperature=1.0) -> np.ndarray:
        """Pick training points uniformly, add kernel noise (scaled by sqrt(temperature))."""
        t = check_temperature(temperature)
        idx = rng.integers(len(self.data_), size=int(n))
        z = rng.standard_normal((int(n), self.data_.shape[1]))
        return self.data_[idx] + np.sqrt(t) * z @ self.kernel_chol_.T

    def log_prob(self, x, *, chunk: int = 1024) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        d = x.shape[1]
        inv_chol = np.linalg.inv(self.kernel_chol_)
        data_w = self.data_ @ inv_chol.T
        logdet = 2.0 * np.log(np.abs(np.diag(self.kernel_chol_))).sum()
        const = -0.5 * (d * np.log(2 * np.pi) + logdet) - np.log(len(self.data_))
        out = np.empty(len(x))
        for start in range(0, len(x), chunk):
            xw = x[start : start + chunk] @ inv_chol.T
            sq = (
                (xw**2).sum(1)[:, None] + (data_w**2).sum(1)[None, :] - 2.0 * xw @ data_w.T
            )
            out[start : start + chunk] = logsumexp(-0.5 * np.maximum(sq, 0.0), axis=1) + const
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"data": self.data_.copy(), "kernel_cov": self.kernel_cov_.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.data_ = np.asarray(state["data"], dtype=np.float64)
        self.kernel_cov_ = np.asarray(state["kernel_cov"], dtype=np.float64)
        self.kernel_chol_ = safe_cholesky(self.kernel_cov_)
