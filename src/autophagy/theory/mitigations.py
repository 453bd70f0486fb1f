"""Closed forms for the mitigated loops on the Gaussian family: subsampled accumulation and
self-correction.

**Accumulate-subsample** (Kazdan, Schaeffer et al., 2024, "Collapse or Thrive?"): every
generation adds ``k`` draws of the previous model to a growing pool (the n real points first),
and the next model is the Gaussian fitted to ``s = n`` points drawn from the pool without
replacement. Write ``R`` for the pool's scatter and ``P`` for its size. For a simple random
sample of ``s`` of the ``P`` points, ``E[scatter_S | pool] = (s - 1) R / (P - 1)`` and
``E[(mean_S - m)(.)^T | pool] = (P - s) R / (s P (P - 1))``; so the fit's expected covariance
is ``c_P R`` and its mean's spread around the pool mean ``d_P R``, with

    c_P = (s - 1) / ((P - 1) D),       d_P = (P - s) / (s P (P - 1)),

``D = s`` (MLE) or ``s - 1`` (unbiased). Pooling ``k`` new draws from ``N(mu, tau Sigma)`` into
the pool (as in :mod:`autophagy.theory.gaussian`) gives, in units of ``Sigma_0``,

    E R_t = E R_{t-1} [1 + tau (k - 1) c + (P k / (P + k)) (d + tau c / k)]
    E f_t = E f_{t-1} + (k / (P + k))^2 (d + tau c / k) E R_{t-1}

where ``f_t`` is the pool mean's drift from ``mu_0`` and ``c, d`` are taken at the old pool size
``P``; then ``E Sigma_t = c_{P+k} E R_t`` and ``E (mu_t - mu_0)^2 = E f_t + d_{P+k} E R_t``. All
of it is linear, so the expectation is exact in any dimension.

**Self-correction** (Gillman et al., 2024, "Self-Correcting Self-Consuming Loops"): each
synthetic sample is moved toward the data before training, ``x' = x + w (pi(x) - x)`` with
``w = gamma / (1 + gamma)``. For the ``moments`` correction ``pi`` is the optimal transport map of
the synthetic batch's own Gaussian fit onto the real data's (``mu_0, sigma_0``): in one dimension
``pi(x) = mu_0 + (sigma_0 / s)(x - ybar)``, so the corrected batch has mean
``(1 - w) ybar + w mu_0`` and standard deviation ``(1 - w) s + w sigma_0``. With ``s^2 = tau
sigma_{t-1}^2 chi2_{k-1} / k`` and ``E sqrt(chi2_{k-1} / k) = c4(k) sqrt((k - 1) / k)``, the
moments ``(E sigma_t, E sigma_t^2, E e_t^2)`` follow a linear recursion: exact, for fully
synthetic training and for all real data plus the corrected draws. The correction contracts the
error by ``1 - w`` each generation (the exponential stability the paper proves), where the
uncorrected loop drifts.
"""

from __future__ import annotations

import math

import numpy as np

from autophagy.errors import InputError
from autophagy.theory.gaussian import (
    ExpectedGaussianTrajectory,
    _as_cov,
    _check_int,
    _check_positive,
    c4,
)


def _check_lam(lam: float) -> float:
    if isinstance(lam, bool) or not (isinstance(lam, int | float) and math.isfinite(lam)
                                     and lam >= 0):
        raise InputError(f"lambda must be a finite number >= 0, got {lam!r}")
    return float(lam)


def accumulate_subsample_trajectory(
    *,
    n: int,
    generations: int,
    cov0,
    lam: float = 1.0,
    unbiased: bool = False,
    temperature: float = 1.0,
) -> ExpectedGaussianTrajectory:
    """Exact ``E[Sigma_t]`` and ``E[(mu_t - mu_0)(.)^T]`` of accumulate-subsample, given
    generation 0 (the fit on the n real points, ``Sigma_0 = cov0``); module docstring.

    Each generation adds ``floor(lam n)`` draws to the pool and refits on n of the pool's
    points drawn without replacement.

    Example:
        >>> accumulate_subsample_trajectory(n=10, generations=2, cov0=1.0).cov_trace_ratio.round(4)
        array([1.    , 0.9237, 0.8929])
    """
    n = _check_int("n", n, 2)
    generations = _check_int("generations", generations, 0)
    tau = _check_positive("temperature", temperature)
    k = math.floor(_check_lam(lam) * n)
    s, D = n, (n - 1 if unbiased else n)

    def c(P: int) -> float:
        return (s - 1) / ((P - 1) * D)

    def d(P: int) -> float:
        return (P - s) / (s * P * (P - 1))

    a, b = np.ones(generations + 1), np.zeros(generations + 1)
    R, f, P = float(D), 0.0, n  # R_0 = D Sigma_0: the real scatter
    for t in range(1, generations + 1):
        if k > 0:
            noise = d(P) + tau * c(P) / k  # E (ybar - pool mean)^2 / R
            R, f = (R * (1 + tau * (k - 1) * c(P) + P * k / (P + k) * noise),
                    f + (k / (P + k)) ** 2 * noise * R)
            P += k
        a[t], b[t] = c(P) * R, f + d(P) * R
    return ExpectedGaussianTrajectory(a, b, _as_cov(cov0), "gen0")


def self_correcting_moments(
    *,
    n: int,
    generations: int,
    gamma: float,
    sigma0: float = 1.0,
    temperature: float = 1.0,
) -> dict[str, np.ndarray]:
    """Exact ``E sigma_t``, ``E sigma_t^2`` and ``E (mu_t - mu_0)^2`` of a 1-D Gaussian MLE
    retrained on n of its own samples after the ``moments`` correction at strength ``gamma``
    (module docstring), given generation 0 (``mu_0``, ``sigma_0``: the MLE of the n real
    points, which the correction maps onto). ``gamma = 0`` is the uncorrected fully synthetic
    loop (``E sigma_t^2 = ((n-1)/n)^t sigma_0^2``); ``gamma = inf`` restores the real moments
    every generation. Returns ``{"std", "var", "mean_shift_sq"}``, each of shape (T+1,).

    Example:
        >>> self_correcting_moments(n=10, generations=2, gamma=0)["var"].round(4)
        array([1.  , 0.9 , 0.81])
    """
    n = _check_int("n", n, 2)
    generations = _check_int("generations", generations, 0)
    tau = _check_positive("temperature", temperature)
    if isinstance(gamma, bool) or not (isinstance(gamma, int | float) and gamma >= 0):
        raise InputError(f"gamma must be a number >= 0 (inf: full correction), got {gamma!r}")
    w = 1.0 if math.isinf(gamma) else gamma / (1 + gamma)
    g1 = c4(n) * math.sqrt((n - 1) / n) * math.sqrt(tau)  # E s / sigma_{t-1}
    g2 = tau * (n - 1) / n  # E s^2 / sigma_{t-1}^2
    sd0 = float(sigma0)
    m1, m2, e2 = np.empty(generations + 1), np.empty(generations + 1), np.empty(generations + 1)
    m1[0], m2[0], e2[0] = sd0, sd0**2, 0.0
    for t in range(1, generations + 1):
        # the corrected batch: std (1-w) s + w sigma_0, mean offset (1-w)(ybar - mu_0)
        m1[t] = (1 - w) * g1 * m1[t - 1] + w * sd0
        m2[t] = (1 - w) ** 2 * g2 * m2[t - 1] + 2 * w * (1 - w) * sd0 * g1 * m1[t - 1] \
            + w**2 * sd0**2
        e2[t] = (1 - w) ** 2 * (e2[t - 1] + tau * m2[t - 1] / n)
    return {"std": m1, "var": m2, "mean_shift_sq": e2}
