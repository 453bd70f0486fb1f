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
        raise ValueError(f"var0 must be a finite number >= 0, got {var0!r}")
    if (h is None) == (bandwidth_factor is None):
        raise ValueError("give exactly one of h (fixed bandwidth) or bandwidth_factor (rule)")
    if spread not in ("unbiased", "mle"):
        raise ValueError(f"spread must be 'unbiased' or 'mle', got {spread!r}")
    keep = (n - 1) / n
    v = np.empty(generations + 1)
    v[0] = var0
    if h is not None:
        if not (math.isfinite(h) and h > 0):
            raise ValueError(f"h must be a positive finite number, got {h!r}")
        for t in range(1, generations + 1):
            v[t] = keep * (v[t - 1] + float(h) ** 2)
        return v
    b2 = float(bandwidth_factor) ** 2
    if not (math.isfinite(b2) and b2 > 0):
        raise ValueError(
            f"bandwidth_factor must be a positive finite number, got {bandwidth_factor!r}"
        )
    growth = keep + b2 if spread == "unbiased" else keep * (1.0 + b2)
    return var0 * growth ** np.arange(generations + 1)


def kde_stationary_variance(n: int, h: float) -> float:
    """Fixed point ``(n - 1) h^2`` of the fixed-bandwidth KDE loop's expected variance."""
    n = _check_int("n", n, 2)
    if not (math.isfinite(h) and h > 0):
        raise ValueError(f"h must be a positive finite number, got {h!r}")
    return (n - 1) * float(h) ** 2
