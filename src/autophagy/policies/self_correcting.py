"""Self-correcting retraining (Gillman et al., 2024): each synthetic sample is moved toward the
data before the model trains on it.

A correction ``pi`` maps a synthetic sample to where the data says it should be; at strength
``gamma`` the sample becomes ``x + w (pi(x) - x)`` with ``w = gamma / (1 + gamma)`` (the paper's
``pi_gamma = (x + gamma pi(x)) / (1 + gamma)``; ``gamma = 0`` corrects nothing, ``inf`` fully).
Corrections (``correction:``), each fitted once on the cell's real training set:

- ``nearest``: the nearest real point;
- ``kmeans``: the nearest of ``clusters`` k-means centres of the real data (scikit-learn);
- ``moments``: the optimal transport map of the synthetic batch's Gaussian fit onto the real
  data's (mean and covariance): the correction with an exact theory for the Gaussian family
  (:func:`autophagy.theory.mitigations.self_correcting_moments`), which the overlays draw;
- ``module:function``: your ``fn(x, real) -> x'`` in the samples' own shape, tried on real
  samples before the run starts (a wrong shape stops it there, in one line).

With ``lambda`` finite the corrected samples join all the real data (``floor(lambda n)`` of
them); ``inf`` trains on n corrected samples alone.

Reference:
    | Gillman, Freeman, Aggarwal, Hsu, Luo, Tian, Sun. Self-Correcting Self-Consuming Loops for
    | Generative Model Training (ICML 2024). https://arxiv.org/abs/2402.07087
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from autophagy.errors import InputError
from autophagy.metrics.base import as_rows
from autophagy.policies.base import Policy, parameter
from autophagy.signatures import ArgumentError
from autophagy.theory.gaussian import ExpectedGaussianTrajectory
from autophagy.theory.mitigations import self_correcting_moments

BUILT_IN = ("nearest", "kmeans", "moments")
CHECK_SAMPLES = 64
"""Real samples a correction is tried on before a run starts."""

Correction = Callable[[np.ndarray], np.ndarray]


def _psd_sqrt(m: np.ndarray, inverse: bool = False) -> np.ndarray:
    vals, vecs = np.linalg.eigh((m + m.T) / 2)
    vals = np.clip(vals, 1e-12 * max(vals.max(), 1e-300), None)
    return (vecs * (vals ** (-0.5 if inverse else 0.5))) @ vecs.T


def moments_correction(real: np.ndarray) -> Correction:
    """``pi(x) = m_R + A (x - m_x)``: the Gaussian optimal transport map from the batch's MLE
    fit ``N(m_x, S)`` to the real data's ``N(m_R, C)``, ``A = S^-1/2 (S^1/2 C S^1/2)^1/2 S^-1/2``
    (in one dimension ``A = sigma_R / s``)."""
    rows = as_rows(real)
    m_r, c_r = rows.mean(axis=0), np.cov(rows, rowvar=False, bias=True).reshape(
        rows.shape[1], rows.shape[1])

    def pi(x: np.ndarray) -> np.ndarray:
        z = as_rows(x)
        m_x = z.mean(axis=0)
        s = np.cov(z, rowvar=False, bias=True).reshape(len(m_x), len(m_x))
        root, inv_root = _psd_sqrt(s), _psd_sqrt(s, inverse=True)
        a = inv_root @ _psd_sqrt(root @ c_r @ root) @ inv_root
        return (m_r + (z - m_x) @ a.T).reshape(np.shape(x))

    return pi


def nearest_correction(real: np.ndarray) -> Correction:
    """``pi(x)``: the nearest real point (Euclidean, on flattened samples)."""
    from sklearn.neighbors import NearestNeighbors

    rows = as_rows(real)
    index = NearestNeighbors(n_neighbors=1).fit(rows)

    def pi(x: np.ndarray) -> np.ndarray:
        idx = index.kneighbors(as_rows(x), return_distance=False)[:, 0]
        return rows[idx].reshape(np.shape(x))

    return pi


def kmeans_correction(real: np.ndarray, clusters: int) -> Correction:
    """``pi(x)``: the nearest of ``clusters`` k-means centres of the real data."""
    from sklearn.cluster import KMeans

    rows = as_rows(real)
    k = min(int(clusters), len(rows))
    centres = KMeans(n_clusters=k, n_init=4, random_state=0).fit(rows).cluster_centers_

    def pi(x: np.ndarray) -> np.ndarray:
        z = as_rows(x)
        d = ((z[:, None, :] - centres[None]) ** 2).sum(axis=2)
        return centres[d.argmin(axis=1)].reshape(np.shape(x))

    return pi


@dataclass(frozen=True)
class SelfCorrecting(Policy):
    """Train on synthetic samples moved toward the data by a correction of strength ``gamma``
    (Gillman et al., 2024), with all real data when ``lambda`` is finite; module docstring."""

    correction: str = parameter("nearest", sweep=False,
                                help="nearest, kmeans, moments or module:function")
    gamma: float = parameter(1.0, tag="g", help="correction strength (w = gamma / (1 + gamma))")
    clusters: int = parameter(10, sweep=False, help="kmeans: centres fitted to the real data")
    ratio: float = parameter(math.inf, key="lambda", tag="lam",
                             help="corrected samples per real one (inf: fully synthetic, n)")
    name: ClassVar[str] = "self_correcting"
    color: ClassVar[str] = "summer"
    order: ClassVar[int] = 34

    def __post_init__(self):
        c = self.correction
        if not isinstance(c, str) or not (c in BUILT_IN or ":" in c):
            raise InputError(f"correction must be one of {', '.join(BUILT_IN)} or "
                             f"'module:function', got {c!r}")
        g = self.gamma
        if isinstance(g, bool) or not isinstance(g, int | float) or math.isnan(g) or g < 0:
            raise InputError(f"gamma must be a number >= 0 (inf: full correction) for "
                             f"self_correcting, got {g!r}")
        k = self.clusters
        if isinstance(k, bool) or not isinstance(k, int | float) or k != int(k) or k < 1:
            raise InputError(f"clusters must be a whole number >= 1 for self_correcting, "
                             f"got {k!r}")
        object.__setattr__(self, "clusters", int(k))
        r = self.ratio
        if isinstance(r, bool) or not isinstance(r, int | float) or math.isnan(r) or r <= 0:
            raise InputError(f"lambda must be a number > 0 (inf: fully synthetic) for "
                             f"self_correcting, got {r!r}")

    @property
    def weight(self) -> float:
        """``w = gamma / (1 + gamma)``: the share of the way to ``pi(x)`` a sample moves."""
        return 1.0 if math.isinf(self.gamma) else self.gamma / (1 + self.gamma)

    @property
    def label(self) -> str:
        real = "" if math.isinf(self.ratio) else f", λ={self.ratio:g}"
        return f"self-correcting {self.correction} γ={self.gamma:g}{real}"

    @property
    def lam(self) -> float:
        return float(self.ratio)

    # -- the correction --------------------------------------------------------------------------
    def bind(self, dataset: Any) -> SelfCorrecting:
        """A copy holding the correction fitted to ``dataset``'s real training set, tried on its
        first real samples: a correction of the wrong shape fails here, before the run."""
        bound = dataclasses.replace(self)
        real = np.asarray(dataset.train)
        try:
            pi = self._build(real)
            self._apply(pi, real[:CHECK_SAMPLES])
        except ValueError as err:
            raise ArgumentError("correction", str(err)) from None
        object.__setattr__(bound, "_pi", pi)
        return bound

    def _build(self, real: np.ndarray) -> Correction:
        if self.correction == "nearest":
            return nearest_correction(real)
        if self.correction == "kmeans":
            return kmeans_correction(real, self.clusters)
        if self.correction == "moments":
            return moments_correction(real)
        from autophagy.registry import import_target

        fn = import_target(self.correction)
        if not callable(fn):
            raise InputError(f"correction {self.correction!r} is not callable")
        return lambda x: fn(x, real)

    def _apply(self, pi: Correction, x: np.ndarray) -> np.ndarray:
        try:
            target = np.asarray(pi(x), dtype=np.float64)
        except Exception as err:
            raise InputError(f"correction {self.correction!r} raised {type(err).__name__}: "
                             f"{err}") from None
        if target.shape != x.shape:
            raise InputError(f"correction {self.correction!r} must return samples of the shape "
                             f"it is given, {x.shape}; got {target.shape}")
        if not np.all(np.isfinite(target)):
            raise InputError(f"correction {self.correction!r} returned non-finite values")
        return x + self.weight * (target - x)

    # -- behaviour -------------------------------------------------------------------------------
    def n_synthetic(self, n_real: int) -> int:
        return n_real if math.isinf(self.ratio) else max(1, math.floor(self.ratio * n_real))

    def next_training_set(self, real, synthetic, state, *, rng, pool=None):
        pi = self.__dict__.get("_pi") or self._build(np.asarray(real))
        corrected = self._apply(pi, np.asarray(synthetic, dtype=np.float64))
        if math.isinf(self.ratio):
            return corrected, state
        return np.concatenate([real, corrected]), state

    def gaussian_trajectory(self, *, n: int, generations: int, cov0: Any,
                            unbiased: bool = False, temperature: float = 1.0) -> Any:
        """Exact for the ``moments`` correction, fully synthetic, a 1-D Gaussian MLE."""
        cov = np.atleast_2d(np.asarray(cov0, dtype=np.float64))
        if self.correction != "moments" or not math.isinf(self.ratio) or unbiased \
                or cov.shape != (1, 1):
            return None
        m = self_correcting_moments(n=n, generations=generations, gamma=float(self.gamma),
                                    sigma0=math.sqrt(cov[0, 0]), temperature=temperature)
        return ExpectedGaussianTrajectory(m["var"] / cov[0, 0], m["mean_shift_sq"] / cov[0, 0],
                                          cov, "gen0")
