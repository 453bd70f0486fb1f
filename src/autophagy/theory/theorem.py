"""Stability of iterative retraining: Bertrand et al. (ICLR 2024), Theorems 1 and 2.

Setting: ``G_lam(theta) = argmax_theta' E_data[log p_theta'] +
lam E_{p_theta}[log p_theta']`` is one generation of retraining with infinitely many samples,
``theta*`` the maximum-likelihood fit of the data. Near ``theta*`` the likelihood is
``alpha``-strongly concave in theta', x -> grad log p_theta'(x) is ``L``-Lipschitz, and the best
model is ``eps``-close to the data (Wasserstein-1).

- **Theorem 1 (stability, infinite samples).** If ``lam (1 + L eps / alpha) < 1``, ``theta*`` is
  a fixed point of G and ``||G(theta) - theta*|| <= rho ||theta - theta*||`` with
  ``rho = lam (1 + L eps / alpha) / (1 + lam)``; so ``||theta_t - theta*|| <= rho^t d_0``.
- **Theorem 2 (finite samples).** With probability 1 - delta each generation adds at most an
  optimisation plus statistical error ``e = eps_opt + a(n, delta)``, so
  ``||theta_t - theta*|| <= rho^t d_0 + e (1 - rho^t) / (1 - rho) <= rho^t d_0 + e / (1 - rho)``.

Why this rho: the Jacobian of G at theta* is ``lam (B + lam F)^{-1} F`` with B the data Hessian
(>= alpha) and F the model's Fisher information, ``||B - F|| <= L eps``. With eps = 0 it is exactly
``lam / (1 + lam)``, the rate at which a Gaussian MLE's mean returns to the real fit in the mixed
loop (:func:`autophagy.theory.gaussian.mixed_mean_contraction`); in one dimension the worst case
over ``|B - F| <= L eps`` is ``k / (1 + k)`` with ``k = lam (1 + L eps / alpha)``, below rho. The
condition is sufficient, not necessary: the Gaussian mean contracts for every lam.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from autophagy.errors import InputError


def _finite(name: str, value: float, *, positive: bool = False) -> float:
    """``value`` as a float, or a ValueError naming ``name`` (>= 0, or > 0 with ``positive``)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x) or x < 0 or (positive and x == 0):
        bound = "> 0" if positive else ">= 0"
        raise InputError(f"{name} must be a finite number {bound}, got {value!r}")
    return x


def _kappa(lam: float, L: float, eps: float, alpha: float) -> float:
    lam = _finite("lam", lam)
    L, eps = _finite("L", L), _finite("eps", eps)
    alpha = _finite("alpha", alpha, positive=True)
    return lam * (1.0 + L * eps / alpha)


def stability_condition(lam: float, L: float, eps: float, alpha: float) -> bool:
    """Whether Theorem 1 of Bertrand et al. (2024) applies: ``lam (1 + L eps / alpha) < 1``.

    A sufficient condition for the retraining loop to contract towards theta*.

    Example:
        >>> stability_condition(0.5, L=2.0, eps=0.1, alpha=1.0)
        True
    """
    return bool(_kappa(lam, L, eps, alpha) < 1.0)


def max_stable_lambda(L: float, eps: float, alpha: float) -> float:
    """The supremum ``1 / (1 + L eps / alpha)`` of the synthetic-to-real ratios Theorem 1 covers
    (the condition is strict: this value itself is not covered). 1 for a perfect model class."""
    L, eps = _finite("L", L), _finite("eps", eps)
    alpha = _finite("alpha", alpha, positive=True)
    return 1.0 / (1.0 + L * eps / alpha)


def contraction_factor(lam: float, L: float, eps: float, alpha: float) -> float:
    """Theorem 1's ``rho = lam (1 + L eps / alpha) / (1 + lam)``, in [0, 1).

    Raises ``ValueError`` (naming ``lam``) when the stability condition fails: the theorem then
    gives no contraction, and a number below 1 would wrongly suggest one.
    """
    kappa = _kappa(lam, L, eps, alpha)
    if not kappa < 1.0:
        raise InputError(
            f"lam={lam!r} violates the stability condition lam*(1 + L*eps/alpha) < 1 "
            f"(= {kappa:.6g}); the largest stable lam is {max_stable_lambda(L, eps, alpha):.6g}"
        )
    return kappa / (1.0 + float(lam))


def distance_bound(
    generations: int,
    lam: float,
    L: float,
    eps: float,
    alpha: float,
    *,
    initial_distance: float,
    error: float = 0.0,
) -> np.ndarray:
    """Bound on ``||theta_t - theta*||`` for t = 0..generations, shape (T+1,).

    ``rho^t d_0 + error (1 - rho^t) / (1 - rho)``: Theorem 1 when ``error = 0``, Theorem 2 of
    Bertrand et al. (2024) with ``error = eps_opt + a(n, delta)`` the per-generation optimisation
    plus statistical error (the recursion ``d_t <= rho d_{t-1} + error``, summed exactly; it never
    exceeds the theorem's ``rho^t d_0 + error / (1 - rho)``).

    Example:
        >>> distance_bound(2, 0.5, 2.0, 0.1, 1.0, initial_distance=1.0, error=0.3)
        array([1.  , 0.7 , 0.58])
    """
    if isinstance(generations, bool) or int(generations) != generations or generations < 0:
        raise InputError(f"generations must be an integer >= 0, got {generations!r}")
    d0 = _finite("initial_distance", initial_distance)
    err = _finite("error", error)
    rho = contraction_factor(lam, L, eps, alpha)
    powers = rho ** np.arange(int(generations) + 1, dtype=np.float64)
    return powers * d0 + err * (1.0 - powers) / (1.0 - rho)


def empirical_contraction_factor(distances: ArrayLike) -> float:
    """Geometric mean of the ratios of successive distances to the fixed point,
    ``(d_T / d_0)^(1/T)``, to set beside :func:`contraction_factor`.

    ``distances`` is one trajectory d_0..d_T (e.g. the distance of the seed-averaged parameter to
    theta*); use the generations before it reaches the statistical noise floor, where the ratio
    tends to 1 whatever the true rate.
    """
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 1 or len(d) < 2:
        raise InputError(f"distances must be a 1-D trajectory of length >= 2, got shape {d.shape}")
    if not np.all(np.isfinite(d)) or np.any(d <= 0):
        raise InputError("distances must be finite and > 0 (a ratio of distances is taken)")
    return float(np.exp(np.mean(np.diff(np.log(d)))))
