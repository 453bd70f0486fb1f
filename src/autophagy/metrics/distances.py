"""Distances between two samples of points: arrays (n, d) in, one float out.

These are the sample-based measures the loop tracks generation after generation: how far the
model's samples drift from the real held-out data. Each works on its own, without an
:class:`~autophagy.metrics.base.EvalContext`, so it can be tested against an independent reference
and reused in notebooks. Inputs of shape (n, ...) are flattened to (n, -1) and cast to float64.

Conventions, chosen once for the whole library:

- :func:`wasserstein2` and :func:`sliced_wasserstein2` return distances (the square root), in the
  units of the data, so that a translation by ``m`` reads as ``||m||``.
- :func:`mmd_rbf` and :func:`energy_distance` return the *squared* quantities as V-statistics
  (biased estimators: all pairs, diagonal included), which are exactly >= 0 and exactly 0 for
  identical sets, so curves can be drawn on a log scale.

Randomness (subsampling, projections) always comes in as a ``numpy.random.Generator``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial.distance import cdist, pdist

from autophagy.errors import InputError
from autophagy.metrics.base import as_rows

__all__ = [
    "energy_distance",
    "mmd_rbf",
    "negative_log_likelihood",
    "random_directions",
    "sliced_wasserstein2",
    "wasserstein2",
]

_CHUNK = 1024
"""Rows per block when summing pairwise kernels or distances: bounds memory at _CHUNK * m floats."""


def _as_points(x: Any, name: str) -> np.ndarray:
    """Cast to a float64 array of shape (n, d) (images are flattened)."""
    if np.ndim(x) == 0:
        raise InputError(f"{name} must have shape (n, d), got a scalar")
    a = as_rows(x)
    if len(a) == 0:
        raise InputError(f"{name} is empty: need at least one sample")
    return a


def _pair(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_points(x, "x"), _as_points(y, "y")
    if a.shape[1] != b.shape[1]:
        raise InputError(f"x and y must have the same dimension, got {a.shape[1]} and {b.shape[1]}")
    return a, b


def _subsample(
    a: np.ndarray,
    max_samples: int | None,
    rng: np.random.Generator | None,
    name: str,
    arg: str = "max_samples",
) -> np.ndarray:
    """At most ``max_samples`` rows of ``a``, drawn without replacement with ``rng``."""
    if max_samples is None or len(a) <= max_samples:
        return a
    if max_samples < 1:
        raise InputError(f"{arg} must be a positive integer or None, got {max_samples!r}")
    if rng is None:
        raise InputError(
            f"{name} has {len(a)} samples > {arg}={max_samples}: pass rng= to subsample it "
            f"(or raise {arg})"
        )
    return a[np.sort(rng.choice(len(a), size=max_samples, replace=False))]


def wasserstein2(
    x: Any,
    y: Any,
    *,
    max_samples: int | None = 1000,
    rng: np.random.Generator | None = None,
) -> float:
    """Exact 2-Wasserstein distance between the empirical distributions of ``x`` and ``y``.

    Solves the optimal transport linear program with POT's network simplex (``ot.emd2``) on
    uniform weights and the squared Euclidean cost, and returns the square root of its value:
    ``W2 = (min_P sum_ij P_ij ||x_i - y_j||^2) ** 0.5`` (Peyre & Cuturi, 2019, *Computational
    Optimal Transport*, ch. 3). Unequal sizes are fine.

    Why subsample: the cost matrix is n x m and the simplex is super-quadratic, so a set larger than
    ``max_samples`` is replaced by ``max_samples`` rows drawn without replacement with ``rng``
    (required then). This keeps the cost at O(max_samples^2) memory and about a second at 1,000.
    Note that the empirical W2 is biased upwards by sampling noise (about ``n ** (-1/d)``), so
    compare values computed with the same sizes. ``max_samples=None`` never subsamples.

    Raises ``RuntimeError`` if the solver stops before optimality (it is given a generous
    ``numItermax``, so this signals a degenerate input rather than a budget to raise).

    Example:
        >>> wasserstein2(x, x + 1.0)  # x of shape (n, 1)
        1.0
    """
    import ot  # lazy: POT imports torch when present (seconds), not needed by the other metrics

    a, b = _pair(x, y)
    a = _subsample(a, max_samples, rng, "x")
    b = _subsample(b, max_samples, rng, "y")
    n, m = len(a), len(b)
    # Direct differences (not ||a||^2 + ||b||^2 - 2ab), so coincident points cost exactly 0.
    cost = cdist(a, b, metric="sqeuclidean")
    wa = np.full(n, 1.0 / n)
    wb = np.full(m, 1.0 / m)
    # The simplex needs O(n m) pivots in practice; POT's default (1e5) is too small past ~1,000.
    value, log = ot.emd2(wa, wb, cost, numItermax=max(1_000_000, 100 * n * m), log=True)
    if log["result_code"] != 1:
        raise RuntimeError(f"exact OT did not reach optimality: {log['warning']}")
    return float(np.sqrt(max(float(value), 0.0)))


def random_directions(d: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` directions drawn uniformly on the unit sphere of R^d, as the columns of a (d, n) array.

    Normalised Gaussian vectors are uniform on the sphere (Muller, 1959).
    """
    z = rng.standard_normal((d, n))
    return z / np.linalg.norm(z, axis=0, keepdims=True)


def sliced_wasserstein2(
    x: Any,
    y: Any,
    *,
    n_projections: int = 200,
    rng: np.random.Generator,
) -> float:
    """Monte Carlo sliced 2-Wasserstein distance (Rabin et al., 2011; Bonneel et al., 2015).

    Convention: ``SW2 = (mean_k W2(<theta_k, x>, <theta_k, y>)^2) ** 0.5`` over ``n_projections``
    directions ``theta_k`` uniform on the sphere (drawn with ``rng``): the square root of the mean
    of the squared one-dimensional distances, so that ``SW2^2`` estimates
    ``E_theta W2^2(theta_# mu, theta_# nu)``. Each 1-D W2 is exact, computed from the quantile
    functions of the projected samples, which handles unequal sizes (POT's ``wasserstein_1d``).

    Why: it costs O(k n log n) instead of the exact W2's super-quadratic LP, so it scales to the
    full held-out set and to high dimension. For a translation by ``m`` its square is
    ``mean_k (theta_k . m)^2``, which tends to ``||m||^2 / d``.
    """
    if n_projections < 1:
        raise InputError(f"n_projections must be a positive integer, got {n_projections!r}")
    import ot  # lazy, as in wasserstein2

    a, b = _pair(x, y)
    theta = random_directions(a.shape[1], int(n_projections), rng)
    return float(ot.sliced_wasserstein_distance(a, b, projections=theta, p=2))


def _median_distance(z: np.ndarray, max_samples: int, rng: np.random.Generator | None) -> float:
    """Median of the Euclidean distances ||z_i - z_j|| over pairs i < j (diagonal excluded)."""
    z = _subsample(z, max_samples, rng, "the pooled sample x + y", arg="median_samples")
    if len(z) < 2:
        raise InputError("the median heuristic needs at least two pooled samples")
    return float(np.median(pdist(z, metric="euclidean")))


def _mean_kernel(a: np.ndarray, b: np.ndarray, gamma: float) -> float:
    """Mean of exp(-gamma ||a_i - b_j||^2) over all pairs, in row blocks to bound memory."""
    total = 0.0
    for i in range(0, len(a), _CHUNK):
        sq = cdist(a[i : i + _CHUNK], b, metric="sqeuclidean")
        total += float(np.exp(-gamma * sq).sum())
    return total / (len(a) * len(b))


def mmd_rbf(
    x: Any,
    y: Any,
    *,
    bandwidth: float | None = None,
    max_samples: int | None = None,
    median_samples: int = 4096,
    rng: np.random.Generator | None = None,
) -> float:
    """Squared maximum mean discrepancy with a Gaussian (RBF) kernel (Gretton et al., 2012, JMLR).

    Kernel ``k(a, b) = exp(-||a - b||^2 / (2 sigma^2))``. Returns the *biased* V-statistic
    ``MMD_b^2 = mean k(x, x') + mean k(y, y') - 2 mean k(x, y)`` over all pairs, diagonals
    included (Gretton et al., eq. 5). Why biased: it is the squared RKHS distance between the two
    empirical mean embeddings, so it is always >= 0 and exactly 0 for identical sets; the unbiased
    U-statistic goes negative near zero, which breaks log-scale curves. Its bias is O(1/n): compare
    values computed with the same sample sizes.

    ``bandwidth`` is sigma; ``None`` uses the median heuristic (Gretton et al., 2012, sec. 8):
    sigma = the median of the Euclidean distances ``||z_i - z_j||`` over the pairs ``i < j``
    (diagonal excluded) of the pooled sample ``z = [x; y]``. If the pool has more than
    ``median_samples`` points, the median is taken on ``median_samples`` of them drawn with ``rng``.
    ``max_samples`` (default ``None``: never) subsamples each set before the sums, with ``rng``.
    The sums run in blocks of rows, O(n m d) time and O(1024 m) memory: 2,000 x 2,000 in 2-D
    takes a fraction of a second.
    """
    a, b = _pair(x, y)
    a = _subsample(a, max_samples, rng, "x")
    b = _subsample(b, max_samples, rng, "y")
    if bandwidth is None:
        sigma = _median_distance(np.concatenate([a, b]), median_samples, rng)
        if sigma <= 0:  # more than half the pooled points coincide: fall back to a unit scale
            sigma = 1.0
    else:
        sigma = float(bandwidth)
        if not np.isfinite(sigma) or sigma <= 0:
            raise InputError(f"bandwidth must be a positive number or None, got {bandwidth!r}")
    gamma = 1.0 / (2.0 * sigma**2)
    value = _mean_kernel(a, a, gamma) + _mean_kernel(b, b, gamma) - 2.0 * _mean_kernel(a, b, gamma)
    return max(value, 0.0)  # >= 0 in exact arithmetic; clip rounding


def _mean_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean of ||a_i - b_j|| over all pairs, in row blocks to bound memory."""
    total = 0.0
    for i in range(0, len(a), _CHUNK):
        total += float(cdist(a[i : i + _CHUNK], b, metric="euclidean").sum())
    return total / (len(a) * len(b))


def energy_distance(
    x: Any,
    y: Any,
    *,
    max_samples: int | None = None,
    rng: np.random.Generator | None = None,
) -> float:
    """Energy distance of Szekely & Rizzo (2013, *J. Stat. Plann. Inference*), squared form.

    Returns ``2 E||X - Y|| - E||X - X'|| - E||Y - Y'||`` with each expectation the mean over all
    pairs of the two samples, diagonals included (V-statistic). Why: it is a metric's square on
    distributions, >= 0 for any samples, 0 only for identical empirical distributions, needs no
    bandwidth, and is the MMD of the distance kernel (Sejdinovic et al., 2013).

    Relation to SciPy: in one dimension ``scipy.stats.energy_distance(u, v)`` returns the square
    root of this value (``sqrt(2 int (F - G)^2)``, which equals it for empirical CDFs).
    ``max_samples`` (default ``None``: never) subsamples each set with ``rng``; cost O(n m d).
    """
    a, b = _pair(x, y)
    a = _subsample(a, max_samples, rng, "x")
    b = _subsample(b, max_samples, rng, "y")
    value = 2.0 * _mean_distance(a, b) - _mean_distance(a, a) - _mean_distance(b, b)
    return max(value, 0.0)  # >= 0 in exact arithmetic; clip rounding


def negative_log_likelihood(model: Any, x: Any) -> float:
    """Mean negative log-likelihood ``-mean_i log p(x_i)`` of ``x`` under ``model.log_prob``.

    In nats per sample (not per dimension). On held-out real data it measures how much of the real
    distribution the model still covers: collapse shows as a rising NLL. ``x`` is passed to the
    model unchanged (image models take images).
    """
    log_prob = getattr(model, "log_prob", None)
    if not callable(log_prob):
        raise TypeError(f"{type(model).__name__} has no log_prob method; NLL is undefined for it")
    lp = np.asarray(log_prob(x), dtype=np.float64).reshape(-1)
    return float(-lp.mean())
