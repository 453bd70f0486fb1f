"""The exact estimators and samplers the closed forms are about, shared with the model families.

Why in the theory layer: a closed form is only checkable against the same arithmetic the loop
runs (the MLE's divisor, the Cholesky jitter, the tempered categorical, the KDE's bandwidth rule).
Keeping that arithmetic here, below the models, lets :mod:`autophagy.theory` stay pure numpy and
still simulate exactly what :class:`~autophagy.models.families.gaussian.GaussianMLE` does.
"""

from __future__ import annotations

import numpy as np

from autophagy.errors import InputError

RULES = ("scott", "silverman")


def check_temperature(temperature: float) -> float:
    """Validate a sampling temperature: a positive finite number."""
    t = float(temperature)
    if not np.isfinite(t) or t <= 0:
        raise InputError(f"temperature must be a positive number, got {temperature!r}")
    return t


def fit_gaussian(x: np.ndarray, *, unbiased: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Mean and full covariance of ``x`` with shape (..., n, d).

    ``unbiased=False`` divides by n (maximum likelihood), ``True`` by n - 1.
    Returns ``mean`` of shape (..., d) and ``cov`` of shape (..., d, d).
    """
    n = x.shape[-2]
    if n < 2:
        raise InputError(f"need at least 2 samples to fit a Gaussian, got {n}")
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


def tempered(p: np.ndarray, temperature: float) -> np.ndarray:
    """``p^(1/temperature)`` normalised (zeros stay zero), computed in log space."""
    tau = check_temperature(temperature)
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore"):
        logits = np.log(p) / tau
    logits -= logits.max()
    q = np.exp(logits)
    return q / q.sum()


def rule_of_thumb_factor(rule: str, n: int, d: int) -> float:
    """Scott's ``n^(-1/(d+4))`` or Silverman's ``(n (d+2) / 4)^(-1/(d+4))`` bandwidth factor."""
    if rule == "scott":
        return n ** (-1.0 / (d + 4))
    if rule == "silverman":
        return (n * (d + 2) / 4.0) ** (-1.0 / (d + 4))
    raise InputError(f"bandwidth rule must be one of {', '.join(RULES)} or a number, got {rule!r}")
