"""Expected spread of a Gaussian KDE retrained on its own samples (Fu et al., 2024).

Generation t's training set is n draws from the KDE fitted on generation t-1's: pick a training
point uniformly, add kernel noise. Each draw has the previous set's (MLE) variance plus the
kernel's, and n draws keep (n-1)/n of that in expectation, so per coordinate

    fixed kernel h^2 I:                    E v_t = ((n-1)/n) (v_{t-1} + h^2)  -> (n-1) h^2
    kernel b^2 x (unbiased data cov):      E v_t = ((n-1)/n + b^2) v_{t-1}    (geometric)
    kernel b^2 x (MLE data cov):           E v_t = ((n-1)/n) (1 + b^2) v_{t-1}

where v_t is the per-coordinate MLE variance ``tr(cov of set t) / d``. A fixed bandwidth
settles; a rule of thumb that follows the data's own spread grows geometrically.
"""

from __future__ import annotations

import math

import numpy as np

from autophagy.errors import InputError
from autophagy.theory.gaussian import _check_int


def expected_kde_variance(
    *,
    n: int,
    generations: int,
    var0: float,
    h: float | None = None,
    bandwidth_factor: float | None = None,
    spread: str = "unbiased",
) -> np.ndarray:
    """``E[v_t | v_0 = var0]``, shape (T+1,), for the fully synthetic KDE loop (module docstring).

    Give exactly one of ``h`` (fixed kernel width) or ``bandwidth_factor`` (kernel covariance
    ``bandwidth_factor^2`` times the training set's covariance, computed with ``spread``
    "unbiased" or "mle"), as :func:`~autophagy.theory.simulation.simulate_kde_loop` does.
    """
    n = _check_int("n", n, 2)
    generations = _check_int("generations", generations, 0)
    var0 = float(var0)
    if not (math.isfinite(var0) and var0 >= 0):
        raise InputError(f"var0 must be a finite number >= 0, got {var0!r}")
    if (h is None) == (bandwidth_factor is None):
        raise InputError("give exactly one of h (fixed bandwidth) or bandwidth_factor (rule)")
    if spread not in ("unbiased", "mle"):
        raise InputError(f"spread must be 'unbiased' or 'mle', got {spread!r}")
    keep = (n - 1) / n
    v = np.empty(generations + 1)
    v[0] = var0
    if h is not None:
        if not (math.isfinite(h) and h > 0):
            raise InputError(f"h must be a positive finite number, got {h!r}")
        for t in range(1, generations + 1):
            v[t] = keep * (v[t - 1] + float(h) ** 2)
        return v
    b2 = float(bandwidth_factor) ** 2
    if not (math.isfinite(b2) and b2 > 0):
        raise InputError(
            f"bandwidth_factor must be a positive finite number, got {bandwidth_factor!r}"
        )
    growth = keep + b2 if spread == "unbiased" else keep * (1.0 + b2)
    return var0 * growth ** np.arange(generations + 1)


def kde_stationary_variance(n: int, h: float) -> float:
    """Fixed point ``(n - 1) h^2`` of the fixed-bandwidth KDE loop's expected variance."""
    n = _check_int("n", n, 2)
    if not (math.isfinite(h) and h > 0):
        raise InputError(f"h must be a positive finite number, got {h!r}")
    return (n - 1) * float(h) ** 2


def _kernel_var(v: float, count: int, d: int, h: float | None, rule: str | float | None,
                spread: str) -> float:
    """Per-coordinate kernel variance of a KDE fitted on ``count`` points of MLE variance v."""
    if h is not None:
        return float(h) ** 2
    from autophagy.theory.sampling import rule_of_thumb_factor

    b = rule_of_thumb_factor(rule, count, d) if isinstance(rule, str) else float(rule)
    return b**2 * (count / (count - 1) if spread == "unbiased" else 1.0) * v


def expected_kde_trajectory(
    *,
    n: int,
    generations: int,
    real_var: float,
    lam: float | None = None,
    h: float | None = None,
    rule: str | float | None = None,
    d: int = 1,
    spread: str = "unbiased",
) -> tuple[np.ndarray, np.ndarray]:
    """``(E v_t, E a_t)`` for t = 0..T given the real sample, exact, for the loop's policies.

    Generation 0 fits the n real points (per-coordinate MLE variance ``real_var``, mean m);
    generation t fits ``fully_synthetic`` (``lam=None``): n draws from the KDE of set t-1, or
    ``mixed`` (``lam``): the n real points plus floor(lam n) such draws. ``v_t`` is set t's
    per-coordinate MLE variance, ``a_t = |mean_t - m|^2 / d`` its mean's drift. The kernel is
    ``h^2 I`` (fixed) or ``rule`` ("scott", "silverman" or a factor b) times the set's covariance
    (``spread`` "unbiased" as :class:`~autophagy.models.families.kde.KernelDensity`). With k
    synthetic
    draws of the previous set (N points, mean mu, variance v, kernel variance s^2):

        E v_t = (n v_R + (k-1)(v + s^2)) / N' + (n k / N'^2)(a + (v + s^2) / k)   (N' = n + k)
        E a_t = (k / N')^2 (a + (v + s^2) / k)

    (fully synthetic: ``E v_t = ((n-1)/n)(v + s^2)``, the mean's drift is not anchored). With
    real data both stay bounded: the real points hold the set's spread and centre.
    """
    n = _check_int("n", n, 2)
    generations = _check_int("generations", generations, 0)
    if (h is None) == (rule is None):
        raise InputError("give exactly one of h (fixed bandwidth) or rule (rule of thumb)")
    if spread not in ("unbiased", "mle"):
        raise InputError(f"spread must be 'unbiased' or 'mle', got {spread!r}")
    if h is not None and not (math.isfinite(h) and h > 0):
        raise InputError(f"h must be a positive finite number, got {h!r}")
    synthetic_only = lam is None or math.isinf(lam)
    k = n if synthetic_only else math.floor(float(lam) * n)
    v, a = np.empty(generations + 1), np.zeros(generations + 1)
    v[0], count = float(real_var), n
    for t in range(1, generations + 1):
        spread_t = v[t - 1] + _kernel_var(v[t - 1], count, d, h, rule, spread)
        if synthetic_only:
            v[t] = (n - 1) / n * spread_t
            a[t] = a[t - 1] + spread_t / n
            continue
        total = n + k
        if k == 0:
            v[t], a[t] = real_var, 0.0
        else:
            drift = a[t - 1] + spread_t / k
            v[t] = (n * real_var + (k - 1) * spread_t) / total + n * k / total**2 * drift
            a[t] = (k / total) ** 2 * drift
        count = total
    return v, a
