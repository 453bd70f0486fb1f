"""Monte Carlo of the Gaussian and KDE retraining loops, vectorised over thousands of seeds.

Why a second implementation of the loop: the closed forms of :mod:`autophagy.theory.gaussian`
and :mod:`autophagy.theory.kde` need thousands of independent runs to be checked within a few
standard errors, which the general loop (one model per cell) cannot afford. Here every seed is a
row of a batched array and a generation is a handful of numpy calls.

The Gaussian loop draws real samples and synthetic samples as the project's loop does (same
:func:`~autophagy.models.families.gaussian.sample_gaussian`, same
:class:`~autophagy.policies.Policy` counts), but keeps only sufficient statistics of each
training set (count, mean, scatter) and pools them exactly instead of concatenating arrays, so
``accumulate`` costs no more than ``mixed``. Given the loop's real sample (``real=``) and its
training generator (``rng_seed=autophagy.loop.training_rng(seed)``), one seed reproduces
:class:`~autophagy.models.families.gaussian.GaussianMLE` run through :func:`autophagy.loop.run_cell`
draw for draw (``mixed``, ``fully_synthetic``, ``accumulate``; ``fresh_real`` draws its fresh
points from the true law here, from a finite held-back pool there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from autophagy.errors import InputError
from autophagy.theory.gaussian import _check_int, resolve_policy
from autophagy.theory.mixing import Mixing
from autophagy.theory.sampling import check_temperature, safe_cholesky, sample_gaussian

Stats = tuple[int, np.ndarray, np.ndarray]  # (count, mean (S, d), scatter (S, d, d))


def _stats(x: np.ndarray) -> Stats:
    """Count, mean and scatter (sum of outer products around the mean) of x (S, n, d)."""
    mean = x.mean(axis=-2)
    centred = x - mean[..., None, :]
    return x.shape[-2], mean, np.swapaxes(centred, -1, -2) @ centred


def _synthetic_stats(
    mean: np.ndarray, chol: np.ndarray, k: int, rng: np.random.Generator, tau: float
) -> Stats:
    """Statistics of k draws from N(mean, tau chol chol^T) per seed, without forming the draws.

    Consumes ``rng`` exactly as :func:`~autophagy.models.families.gaussian.sample_gaussian` does
    (one
    ``standard_normal`` of shape (S, k, d)), so the draws are the loop's; only the statistics
    of the standard normals are kept: mean ``mu + sqrt(tau) L zbar`` and scatter
    ``tau L Q_z L^T``. Several times faster than transforming every draw.
    """
    z = rng.standard_normal(mean.shape[:-1] + (k, mean.shape[-1]))
    # raw moments (z is standard normal: no cancellation); einsum sums over the middle axis and
    # a batched matmul forms z^T z several times faster than mean() and centring on (S, k, d)
    zbar = np.einsum("...nd->...d", z) / k
    qz = np.swapaxes(z, -1, -2) @ z - k * zbar[..., :, None] * zbar[..., None, :]
    chol_t = np.swapaxes(chol, -1, -2)
    ybar = mean + np.sqrt(tau) * (zbar[..., None, :] @ chol_t)[..., 0, :]
    return k, ybar, tau * (chol @ qz @ chol_t)


def _pool(a: Stats, b: Stats) -> Stats:
    """Statistics of the union of two samples (Chan et al.'s parallel update: exact, stable)."""
    (na, ma, qa), (nb, mb, qb) = a, b
    if nb == 0:
        return a
    N = na + nb
    delta = mb - ma
    outer = delta[..., :, None] * delta[..., None, :]
    return N, ma + (nb / N) * delta, qa + qb + (na * nb / N) * outer


def _true_law(mean: ArrayLike, cov: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    cov = np.atleast_2d(np.asarray(cov, dtype=np.float64))
    if mean.ndim != 1 or cov.shape != (len(mean), len(mean)):
        raise InputError(f"mean must be (d,) and cov (d, d), got {mean.shape} and {cov.shape}")
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise InputError("cov must be symmetric positive definite") from None
    return mean, chol


@dataclass(frozen=True)
class GaussianTrajectories:
    """Fitted means and covariances of S independent runs, generation 0 to T.

    ``means`` (S, T+1, d), ``covs`` (S, T+1, d, d); ``real_mean``/``real_cov`` (S, d)/(S, d, d)
    are each run's fit on its real sample (the fixed point the mixed loop is anchored to).
    """

    means: np.ndarray
    covs: np.ndarray
    real_mean: np.ndarray
    real_cov: np.ndarray
    policy: str
    n: int
    unbiased: bool
    temperature: float

    @property
    def seeds(self) -> int:
        return self.means.shape[0]

    @property
    def generations(self) -> int:
        return self.means.shape[1] - 1

    @property
    def cov_trace(self) -> np.ndarray:
        """``tr Sigma_t``, shape (S, T+1)."""
        return np.trace(self.covs, axis1=-2, axis2=-1)

    @property
    def mean_shift_sq(self) -> np.ndarray:
        """``||mu_t - mu_0||^2``, shape (S, T+1): the random walk of the mean."""
        return self.mean_sq_error(self.means[:, :1, :])

    @property
    def logdet(self) -> np.ndarray:
        """``log det Sigma_t``, shape (S, T+1): a random walk, negative drift when collapsing."""
        return np.linalg.slogdet(self.covs)[1]

    def mean_sq_error(self, reference: ArrayLike) -> np.ndarray:
        """``||mu_t - reference||^2``, shape (S, T+1); reference (d,), (S, d) or (S, 1, d)."""
        ref = np.asarray(reference, dtype=np.float64)
        if ref.ndim == 2:
            ref = ref[:, None, :]
        return ((self.means - ref) ** 2).sum(axis=-1)

    def distance_to_real(self) -> np.ndarray:
        """Parameter distance ``sqrt(||mu_t - mu_real||^2 + ||Sigma_t - Sigma_real||_F^2)`` to
        the real-data fit, shape (S, T+1): the ``||theta_t - theta*||`` of the stability theorem."""
        dcov = ((self.covs - self.real_cov[:, None]) ** 2).sum(axis=(-2, -1))
        return np.sqrt(self.mean_sq_error(self.real_mean) + dcov)


def simulate_gaussian_loop(
    *,
    n: int,
    generations: int,
    policy: str | Mixing | Any,
    seeds: int,
    mean: ArrayLike,
    cov: ArrayLike,
    lam: float | None = None,
    fraction: float | None = None,
    unbiased: bool = False,
    temperature: float = 1.0,
    rng_seed: int | np.random.SeedSequence | np.random.Generator = 0,
    init_mean: ArrayLike | None = None,
    init_cov: ArrayLike | None = None,
    real: ArrayLike | None = None,
) -> GaussianTrajectories:
    """Run the Gaussian MLE retraining loop for ``seeds`` independent real samples at once.

    Each run draws n real points from N(mean, cov), fits generation 0 on them (or starts from
    ``init_mean``/``init_cov``, a "pretrained checkpoint" as Algorithm 1 allows) and then, for
    t = 1..T, fits the pool the policy builds: ``"mixed"`` (all real + floor(lam n) synthetic),
    ``"fully_synthetic"`` (n synthetic), ``"accumulate"`` (real + every synthetic set so far,
    floor(lam n) new ones a generation) or ``"fresh_real"`` (floor(fraction n) new draws from the
    truth + the rest synthetic). ``lam`` and ``fraction`` default to the policy's defaults.
    Synthetic samples come from ``N(mu_{t-1}, temperature * Sigma_{t-1})``.

    ``real`` (shape (n, d) or (S, n, d)) replaces the draw of the real samples, e.g. by a
    dataset's training set; ``rng_seed`` may be a Generator (used as is), so that passing the
    loop's training generator replays the loop's synthetic draws exactly.

    Example:
        >>> run = simulate_gaussian_loop(n=100, generations=20, policy="fully_synthetic",
        ...                              seeds=2000, mean=[0.0], cov=[[1.0]])
        >>> round(float(run.cov_trace.mean(axis=0)[-1]), 1)  # 0.99 ** 20 = 0.82
        0.8
    """
    n = _check_int("n", n, 2)
    generations = _check_int("generations", generations, 0)
    seeds = _check_int("seeds", seeds, 1)
    tau = check_temperature(temperature)
    pol = resolve_policy(policy, lam, fraction)
    mu_true, chol_true = _true_law(mean, cov)
    S, d = seeds, len(mu_true)
    mu_true_b = np.broadcast_to(mu_true, (S, d))
    chol_true_b = np.broadcast_to(chol_true, (S, d, d))
    denom = (lambda count: count - 1) if unbiased else (lambda count: count)

    rng = np.random.default_rng(rng_seed)
    if real is None:
        real = _stats(sample_gaussian(mu_true_b, chol_true_b, n, rng))
    else:
        x = np.asarray(real, dtype=np.float64)
        if x.ndim == 2:
            x = x[None]
        if x.shape[1:] != (n, d) or x.shape[0] not in (1, S):
            raise InputError(f"real must have shape ({n}, {d}) or ({S}, {n}, {d}), got {x.shape}")
        real = _stats(np.broadcast_to(x, (S, n, d)))
    real_mean, real_cov = real[1], real[2] / denom(n)
    mu = real_mean if init_mean is None else np.broadcast_to(init_mean, (S, d)).astype(float)
    sig = real_cov if init_cov is None else np.broadcast_to(init_cov, (S, d, d)).astype(float)

    means, covs = np.empty((S, generations + 1, d)), np.empty((S, generations + 1, d, d))
    means[:, 0], covs[:, 0] = mu, sig
    k = pol.n_synthetic(n)
    pool = real  # accumulate: everything seen so far
    for t in range(1, generations + 1):
        synth = (k, mu, np.zeros_like(sig))
        if k > 0:
            synth = _synthetic_stats(mu, safe_cholesky(sig), k, rng, tau)
        if pol.anchor == "real":
            count, mu, scatter = _pool(real, synth)
        elif pol.anchor == "none":
            count, mu, scatter = synth
        elif pol.anchor == "past":
            pool = _pool(pool, synth)
            count, mu, scatter = pool
        else:  # fresh_real: new draws from the truth (the loop's held-back pool) + synthetic
            fresh = _stats(sample_gaussian(mu_true_b, chol_true_b, pol.n_fresh(n), rng))
            count, mu, scatter = _pool(fresh, synth)
        sig = scatter / denom(count)
        means[:, t], covs[:, t] = mu, sig
    return GaussianTrajectories(
        means, covs, real_mean, real_cov, pol.label, n, bool(unbiased), tau
    )


def simulate_kde_loop(
    *,
    n: int,
    generations: int,
    seeds: int,
    mean: ArrayLike,
    cov: ArrayLike,
    h: float | None = None,
    bandwidth_factor: float | None = None,
    spread: str = "unbiased",
    rng_seed: int = 0,
) -> np.ndarray:
    """Fully synthetic retraining of a Gaussian KDE, ``seeds`` runs at once.

    Generation 0's training set is n real draws from N(mean, cov); generation t's is n draws
    from the KDE fitted on generation t-1's (pick a point uniformly, add kernel noise),
    as
    :class:`~autophagy.models.families.kde.KernelDensity` samples. The kernel covariance is ``h^2
    I``
    (fixed h) or ``bandwidth_factor^2`` times the training set's covariance (a rule of thumb;
    ``spread`` "unbiased" as the model does, or "mle"). Returns the per-coordinate MLE variance
    ``tr(cov of training set t) / d``, shape (S, T+1).
    """
    n = _check_int("n", n, 2)
    generations = _check_int("generations", generations, 0)
    seeds = _check_int("seeds", seeds, 1)
    if (h is None) == (bandwidth_factor is None):
        raise InputError("give exactly one of h (fixed bandwidth) or bandwidth_factor (rule)")
    if spread not in ("unbiased", "mle"):
        raise InputError(f"spread must be 'unbiased' or 'mle', got {spread!r}")
    mu_true, chol_true = _true_law(mean, cov)
    S, d = seeds, len(mu_true)
    rng = np.random.default_rng(rng_seed)
    x = sample_gaussian(
        np.broadcast_to(mu_true, (S, d)), np.broadcast_to(chol_true, (S, d, d)), n, rng
    )
    out = np.empty((S, generations + 1))
    for t in range(generations + 1):
        _, _, scatter = _stats(x)
        out[:, t] = np.trace(scatter, axis1=-2, axis2=-1) / (n * d)
        if t == generations:
            break
        idx = rng.integers(n, size=(S, n))
        z = rng.standard_normal((S, n, d))
        if h is not None:
            noise = float(h) * z
        else:
            dof = n - 1 if spread == "unbiased" else n
            kernel_cov = float(bandwidth_factor) ** 2 * scatter / dof
            noise = z @ np.swapaxes(safe_cholesky(kernel_cov), -1, -2)
        x = np.take_along_axis(x, idx[..., None], axis=1) + noise
    return out
