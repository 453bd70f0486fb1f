"""Temperature on a finite support: heat death (Marchi et al., 2024), in closed form.

With infinitely many samples a generation, fitting the frequencies of samples drawn at
temperature tau maps p to ``p^(1/tau)`` normalised, so fully synthetic

    p_t ∝ p_0^(1/tau^t)   (tau < 1: to the argmax; tau > 1: to uniform on p_0's support).

With real data at share w of each training set (the ``mixed`` policy: ``w = 1 / (1 + lambda)``)
the map is ``p -> w p_data + (1 - w) p^(1/tau)``, whose fixed point stays away from both ends;
:func:`heat_death_fixed_point` says how far. At tau = 1 with n samples a generation the
frequencies are a martingale absorbed at a vertex, atom i with probability ``p_0(i)``.
"""

from __future__ import annotations

import numpy as np

from autophagy.errors import InputError
from autophagy.theory.sampling import tempered


def heat_death(p0, temperature: float, generations: int) -> np.ndarray:
    """``p_t ∝ p_0^(1/tau^t)`` for t = 0..T, shape (T+1, m) (infinite samples, no real data)."""
    p0 = np.asarray(p0, dtype=np.float64)
    return np.array([tempered(p0, float(temperature) ** t) for t in range(int(generations) + 1)])


def heat_death_trajectory(p0, temperature: float, generations: int, *, real_weight: float = 0.0,
                          p_data=None) -> np.ndarray:
    """``p_{t+1} = w p_data + (1 - w) tempered(p_t)`` for t = 0..T, shape (T+1, m)."""
    p = np.asarray(p0, dtype=np.float64)
    data = p if p_data is None else np.asarray(p_data, dtype=np.float64)
    out = [p]
    for _ in range(int(generations)):
        p = real_weight * data + (1 - real_weight) * tempered(p, temperature)
        out.append(p)
    return np.array(out)


def heat_death_fixed_point(p_data, temperature: float, *, real_weight: float,
                           tol: float = 1e-13, max_iter: int = 100_000) -> np.ndarray:
    """Fixed point of ``p = w p_data + (1 - w) p^(1/tau)`` (real share ``w`` in (0, 1))."""
    if not 0 < real_weight < 1:
        raise InputError(f"a fixed point needs real_weight in (0, 1), got {real_weight!r}")
    p = np.asarray(p_data, dtype=np.float64)
    for _ in range(max_iter):
        q = real_weight * p_data + (1 - real_weight) * tempered(p, temperature)
        if np.abs(q - p).max() < tol:
            return q
        p = q
    return p


def entropy(p) -> np.ndarray:
    """Entropy in nats of each row of ``p``."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(-1)
