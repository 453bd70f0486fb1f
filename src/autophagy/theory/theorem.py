"""Stability of iterative retraining: Bertrand et al. (ICLR 2024, arXiv 2310.00429), and the
bound this project derives from the same assumptions. Every constant here says its source.

Setting: ``G_lam(theta) = argmax_theta' E_data[log p_theta'] +
lam E_{p_theta}[log p_theta']`` is one generation of retraining with infinitely many samples,
``theta*`` the maximum-likelihood fit of the data. The paper's assumptions, near ``theta*``: the
expected log-likelihood is ``alpha``-strongly concave in theta'; ``L`` is a Lipschitz constant *in
x* of a derivative of ``log p_theta(x)`` in theta (the OpenReview discussion of the paper reads its
Assumption 1 as the *Hessian* x -> grad^2_theta log p_theta(x), which is what the step
``||B - F|| <= L eps`` below needs); the best model is ``eps``-close to the data (Wasserstein-1).
The theorem's own text could not be read from here (docs/stability.md says what was and was not
checked), so "paper" below means what the project's notes on the paper (shared/PAPER.md)
attribute to it.

- **Stability condition (paper).** ``lam (1 + L eps / alpha) < 1``: theta* is then a fixed point
  of G and the loop contracts towards it. :func:`stability_condition`, :func:`max_stable_lambda`.
- **Contraction constant (paper).** ``lam (1 + L eps / alpha)``, below 1 exactly when the
  condition holds: :func:`paper_contraction_factor`.
- **Contraction constant (this project's bound).** ``rho = lam (1 + L eps / alpha) / (1 + lam)``,
  tighter than the paper's by ``1 / (1 + lam)``; ``lam / (1 + lam)`` at eps = 0:
  :func:`contraction_factor`. So ``||theta_t - theta*|| <= rho^t d_0``.
- **Finite samples (paper's Theorem 2, with this project's rho).** With probability 1 - delta
  each generation adds at most an optimisation plus statistical error ``e = eps_opt + a(n,
  delta)``, so ``||theta_t - theta*|| <= rho^t d_0 + e (1 - rho^t) / (1 - rho) <= rho^t d_0 + e /
  (1 - rho)``: :func:`distance_bound`.

Why this project's rho: the Jacobian of G at theta* is ``lam (B + lam F)^{-1} F`` with B the data
Hessian (>= alpha) and F the model's Fisher information, ``||B - F|| <= L eps`` (Kantorovich-
Rubinstein applied to the Hessian in x). With eps = 0 it is exactly ``lam / (1 + lam)``, the rate
at which a Gaussian MLE's mean returns to the real fit in the mixed loop
(:func:`autophagy.theory.gaussian.mixed_mean_contraction`); in one dimension the worst case over
``|B - F| <= L eps`` is ``k / (1 + k)`` with ``k = lam (1 + L eps / alpha)``, below rho; in
higher dimensions a random search finds no case above rho (tests/theory). Bounding
``||(B + lam F)^{-1}||`` by ``1 / alpha`` alone, dropping the ``lam F`` the synthetic data adds,
gives the paper's ``lam (1 + L eps / alpha)``. The condition is sufficient, not necessary: the
Gaussian mean contracts for every lam.
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
    """Whether the paper's stability condition holds: ``lam (1 + L eps / alpha) < 1`` (Bertrand
    et al., 2024, as shared/PAPER.md states it).

    A sufficient condition for the retraining loop to contract towards theta*.

    Example:
        >>> stability_condition(0.5, L=2.0, eps=0.1, alpha=1.0)
        True
    """
    return bool(_kappa(lam, L, eps, alpha) < 1.0)


def max_stable_lambda(L: float, eps: float, alpha: float) -> float:
    """The supremum ``1 / (1 + L eps / alpha)`` of the synthetic-to-real ratios the paper's
    condition covers (strict: this value itself is not covered). 1 for a perfect model class."""
    L, eps = _finite("L", L), _finite("eps", eps)
    alpha = _finite("alpha", alpha, positive=True)
    return 1.0 / (1.0 + L * eps / alpha)


def paper_contraction_factor(lam: float, L: float, eps: float, alpha: float) -> float:
    """The paper's contraction constant ``lam (1 + L eps / alpha)``, in [0, 1) (source: the
    statement of Bertrand et al.'s theorem in shared/PAPER.md; see the module docstring).

    An upper bound looser than :func:`contraction_factor` by a factor ``1 + lam``: a measured rho
    below both refutes neither, and sits near this project's. Raises ``InputError`` (naming
    ``lam``) when the stability condition fails.

    Example:
        >>> round(paper_contraction_factor(0.5, L=2.0, eps=0.1, alpha=1.0), 6)
        0.6
    """
    kappa = _kappa(lam, L, eps, alpha)
    if not kappa < 1.0:
        raise InputError(_violation(lam, kappa, L, eps, alpha))
    return kappa


def _violation(lam: float, kappa: float, L: float, eps: float, alpha: float) -> str:
    return (f"lam={lam!r} violates the stability condition lam*(1 + L*eps/alpha) < 1 "
            f"(= {kappa:.6g}); the largest stable lam is {max_stable_lambda(L, eps, alpha):.6g}")


def contraction_factor(lam: float, L: float, eps: float, alpha: float) -> float:
    """This project's bound ``rho = lam (1 + L eps / alpha) / (1 + lam)``, in [0, 1): the paper's
    constant (:func:`paper_contraction_factor`) divided by ``1 + lam``, and exactly the Gaussian
    mean's rate ``lam / (1 + lam)`` at eps = 0.

    Raises ``InputError`` (naming ``lam``) when the paper's stability condition fails: its
    assumptions then give no contraction, and a number below 1 would wrongly suggest one.
    """
    kappa = _kappa(lam, L, eps, alpha)
    if not kappa < 1.0:
        raise InputError(_violation(lam, kappa, L, eps, alpha))
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

    ``rho^t d_0 + error (1 - rho^t) / (1 - rho)`` with rho this project's bound
    (:func:`contraction_factor`): infinite samples when ``error = 0``; the form of the paper's
    finite-sample theorem with ``error = eps_opt + a(n, delta)`` the per-generation optimisation
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
    ``(d_T / d_0)^(1/T)``, to set beside :func:`contraction_factor` (this project's bound) and
    :func:`paper_contraction_factor` (the paper's constant).

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
