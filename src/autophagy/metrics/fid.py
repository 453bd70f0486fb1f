"""Fréchet distance and kernel inception distance between two feature sets.

FID (Heusel et al., 2017) is the Fréchet (2-Wasserstein) distance between Gaussians fitted to two
feature sets; on Inception pool features it is the standard image-generation score, and on raw
points it is the exact W2 between the moment-matched Gaussians, a useful drift measure for
Gaussian-like data. KID (Bińkowski et al., 2018) is an unbiased squared MMD with a cubic
polynomial kernel; unlike FID its estimator has no bias that depends on the sample size.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import scipy.linalg

from autophagy.errors import InputError

__all__ = [
    "FRECHET_MAX_DIM",
    "KIDResult",
    "frechet_distance",
    "frechet_distance_from_moments",
    "kid",
]

FRECHET_MAX_DIM = 1024
"""The registered ``frechet`` metric applies to samples with at most this many features."""


def _features(a: Any, name: str) -> np.ndarray:
    x = np.asarray(a, dtype=np.float64)
    if x.ndim < 2:
        raise InputError(f"{name} must have shape (n, features), got {x.shape}")
    return x.reshape(len(x), -1)


def frechet_distance_from_moments(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2)``, never negative.

    Why not ``sqrtm(S1 @ S2)`` (pytorch-fid, clean-fid): ``S1 S2`` is not symmetric, so its
    Schur-based square root can return complex values and needs an ad-hoc ``eps`` when a
    covariance is singular (fewer samples than features). ``S1^1/2 S2 S1^1/2`` is symmetric
    positive semi-definite and similar to ``S1 S2`` (same eigenvalues), so the trace of the
    matrix square root is the sum of square roots of its eigenvalues: two symmetric
    eigendecompositions (``eigh``), real by construction; round-off negatives are clipped to 0.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    s1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    s2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    d = len(mu1)
    if mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise InputError(
            f"shapes do not match: mu1 {mu1.shape}, sigma1 {s1.shape}, "
            f"mu2 {mu2.shape}, sigma2 {s2.shape}"
        )
    s1 = (s1 + s1.T) / 2
    s2 = (s2 + s2.T) / 2
    w, v = scipy.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    inner = root1 @ s2 @ root1
    eig = scipy.linalg.eigvalsh((inner + inner.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    diff = mu1 - mu2
    value = float(diff @ diff) + float(np.trace(s1)) + float(np.trace(s2)) - 2.0 * tr_covmean
    return max(value, 0.0)


def frechet_distance(feats_a: Any, feats_b: Any) -> float:
    """Fréchet distance between Gaussians fitted to two (n, f) feature sets (FID on Inception
    features). Covariances use ``ddof=1``, as pytorch-fid and clean-fid do."""
    a, b = _features(feats_a, "feats_a"), _features(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise InputError(f"feature dimensions differ: {a.shape[1]} and {b.shape[1]}")
    if len(a) < 2 or len(b) < 2:
        raise InputError(f"need at least 2 points in each set, got {len(a)} and {len(b)}")
    return frechet_distance_from_moments(
        a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    )


class KIDResult(NamedTuple):
    """KID over random subsets: the mean unbiased MMD^2 estimate and its std across subsets."""

    mean: float
    std: float


def kid(
    real: Any,
    fake: Any,
    subsets: int = 100,
    subset_size: int = 1000,
    *,
    rng: np.random.Generator | int | None = 0,
) -> KIDResult:
    """Kernel inception distance: unbiased MMD^2 with ``k(x, y) = (x.y / d + 1)^3``.

    As in Bińkowski et al. (2018) and clean-fid: ``subsets`` times, draw ``min(n_real, n_fake,
    subset_size)`` points of each set without replacement and compute the unbiased estimate
    ``mean_{i!=j} k(x_i, x_j) + mean_{i!=j} k(y_i, y_j) - 2 mean_{i,j} k(x_i, y_j)``; return the
    mean and the standard deviation (``ddof=0``, as torch-fidelity) over subsets. Unbiased, so
    it is about 0, and can be negative, for two samples of one distribution. ``rng`` is a
    generator or a seed (default 0, so the value is reproducible).
    """
    x, y = _features(real, "real"), _features(fake, "fake")
    if x.shape[1] != y.shape[1]:
        raise InputError(f"feature dimensions differ: {x.shape[1]} and {y.shape[1]}")
    m = min(len(x), len(y), int(subset_size))
    if m < 2:
        raise InputError(f"KID needs subsets of at least 2 points, got {m}")
    if subsets < 1:
        raise InputError(f"subsets must be >= 1, got {subsets}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    d = x.shape[1]
    values = np.empty(subsets)
    for s in range(subsets):
        a = x[gen.choice(len(x), m, replace=False)]
        b = y[gen.choice(len(y), m, replace=False)]
        kaa = (a @ a.T / d + 1.0) ** 3
        kbb = (b @ b.T / d + 1.0) ** 3
        kab = (a @ b.T / d + 1.0) ** 3
        within = (kaa.sum() - np.trace(kaa) + kbb.sum() - np.trace(kbb)) / (m * (m - 1))
        values[s] = within - 2.0 * kab.mean()
    return KIDResult(float(values.mean()), float(values.std()))
