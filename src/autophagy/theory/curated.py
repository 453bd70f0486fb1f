"""The curated retraining operator on a finite support, computed exactly (Ferbach et al., 2024).

Keep one of K draws from p with Bradley-Terry probabilities ``e^{beta r_i} / sum_j e^{beta r_j}``.
On atoms 1..m, the K draws are a multinomial count vector c (sum K) and atom j is kept with
probability ``c_j w_j / sum_i c_i w_i`` (``w = e^{beta r}``), so

    (curated p)_j = sum_c Mult(c; K, p) c_j w_j / (c . w)  =  p_j H_j,

``H_j = E[K w_j / (w_j + sum_{i<K} w_{x_i})]`` over K-1 other draws, enumerated exactly over the
``C(K+m-1, m-1)`` count vectors. ``beta = inf`` keeps the best atom drawn (ties split by counts).
Fully synthetic, ``p_{t+1} = curated(p_t)``: the expected reward rises and its variance falls to 0
as the mass moves to the best atom; with real data at share w, ``p_{t+1} = w p_data + (1 - w)
curated(p_t)`` has a fixed point of higher reward than the data, away from any point mass.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.special import gammaln

from autophagy.errors import InputError


@lru_cache(maxsize=32)
def _compositions(k: int, m: int) -> np.ndarray:
    """Every count vector of m non-negative integers summing to k, shape (C(k+m-1, m-1), m)."""
    if m == 1:
        return np.array([[k]])
    rows = [np.concatenate([np.full((len(rest), 1), first), rest], axis=1)
            for first in range(k, -1, -1) for rest in [_compositions(k - first, m - 1)]]
    return np.concatenate(rows)


def curated_step(p, r, *, k: int, beta: float = 1.0) -> np.ndarray:
    """The law of the kept sample when K = ``k`` candidates are drawn from ``p`` (exact)."""
    p = np.asarray(p, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    if p.shape != r.shape or p.ndim != 1:
        raise InputError(f"p and r must be 1-D of one length, got {p.shape} and {r.shape}")
    if int(k) != k or k < 1:
        raise InputError(f"k must be a whole number >= 1, got {k!r}")
    if math.isnan(beta) or beta < 0:
        raise InputError(f"beta must be >= 0, got {beta!r}")
    p = p / p.sum()
    c = _compositions(int(k), len(p))
    with np.errstate(divide="ignore"):
        logp = (c * np.log(np.where(c > 0, p, 1.0))).sum(1)
    log_mult = gammaln(k + 1) - gammaln(c + 1).sum(1) + logp
    mult = np.exp(log_mult)
    if math.isinf(beta):
        best = np.where(c > 0, r, -np.inf).max(axis=1, keepdims=True)
        share = c * (r == best)
    else:
        share = c * np.exp(beta * (r - r.max()))
    share = share / share.sum(axis=1, keepdims=True)
    out = mult @ share
    return out / out.sum()


def curated_trajectory(p0, r, *, k: int, beta: float = 1.0, generations: int,
                       real_weight: float = 0.0, p_data=None) -> np.ndarray:
    """``p_t`` for t = 0..T, shape (T+1, m): ``p_{t+1} = w p_data + (1 - w) curated(p_t)``
    (``p_data`` defaults to ``p0``, the real data's law)."""
    p = np.asarray(p0, dtype=np.float64)
    data = p if p_data is None else np.asarray(p_data, dtype=np.float64)
    if not 0 <= real_weight < 1:
        raise InputError(f"real_weight must be in [0, 1), got {real_weight!r}")
    out = [p]
    for _ in range(int(generations)):
        p = real_weight * data + (1 - real_weight) * curated_step(p, r, k=k, beta=beta)
        out.append(p)
    return np.array(out)


def curated_fixed_point(p_data, r, *, k: int, beta: float = 1.0, real_weight: float,
                        tol: float = 1e-13, max_iter: int = 100_000) -> np.ndarray:
    """The fixed point of ``p = w p_data + (1 - w) curated(p)`` for ``w > 0`` (iterated)."""
    if not 0 < real_weight < 1:
        raise InputError(f"a fixed point needs real_weight in (0, 1), got {real_weight!r}")
    p = np.asarray(p_data, dtype=np.float64)
    for _ in range(max_iter):
        q = real_weight * p_data + (1 - real_weight) * curated_step(p, r, k=k, beta=beta)
        if np.abs(q - p).max() < tol:
            return q
        p = q
    return p


def reward_moments(p, r) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of the reward under each row of ``p`` ((..., m) -> (...,), (...,))."""
    p = np.asarray(p, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    mean = p @ r
    return mean, p @ r**2 - mean**2
