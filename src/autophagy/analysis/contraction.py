"""The stability theorem, measured: contraction factor and plateau from distance trajectories,
and the theorem's constants (alpha, L, eps) for the Gaussian family.

**Contraction factor.** Near theta*, one generation maps the error ``e = theta - theta*`` to about
``J e`` plus noise (``J`` the Jacobian of the retraining map, of norm rho). From a cell's distances
``d_t = ||e_t||`` and steps ``s_t = ||e_t - e_{t-1}||`` (the metrics ``theta_distance`` and
``theta_step``), polarization gives ``<e_t, e_{t-1}> = (d_t^2 + d_{t-1}^2 - s_t^2) / 2``, and the
least-squares estimate of the contraction, pooled over seeds and generations, is

    rho_hat = sum_{s,t} <e_t, e_{t-1}> / sum_{s,t} ||e_{t-1}||^2 .

It is consistent (seeds -> infinity, any number of generations) whenever ``E[e_t | e_{t-1}] = rho
e_{t-1}``, which is exact for the Gaussian MLE in whitened moments (rho = k / (n + k)), and it
does not need the trajectory to start away from theta* (ours start at it: generation 0 *is* the
real-data fit). Unlike the ratio of successive distances, it is not biased by the noise floor.
Its standard error is the jackknife over seeds (over generations with a single seed), and the
interval ``rho_hat +- z se``. Without step distances, the slope of ``d_t^2`` on ``d_{t-1}^2``
(pooled least squares with an intercept) estimates ``rho^2``.

**Plateau.** The statistical error the trajectory settles at: the root mean square distance
``sqrt(mean d_t^2)`` over the second half of the generations, the mean taken per seed and then over
seeds (standard error over seeds by the delta method).

**Verdict.** Observed *stable* when the distance contracts fast enough to have settled within the
run: the whole interval of rho lies below 1 and even its upper end brings the mean squared distance
within 5% of its plateau (``rho_high^(2t) <= 0.05``) by the middle of the run, where the plateau is
measured from. Distances that never rise above their sampling noise (unbiased squared MMD of a
model that does not move) count as stable, rho undefined (NaN). Otherwise *unstable*: a random
walk has rho = 1, and fully synthetic Gaussian retraining "contracts" only towards a *different*
point (the covariance towards 0, at rate (n - 1) / n), far too slowly to settle. An interval of
rho wider than ``2 * INCONCLUSIVE`` that does not show stability is *inconclusive* instead.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import norm

from autophagy.errors import InputError

SETTLE = 0.05
"""A trajectory has settled when ``rho^(2t)``, the share of the way still to go, is below this."""

VARIOGRAM_START = 3
"""First generation whose two-generation step enters the variogram estimate (a quarter of the
run when that is later)."""

INCONCLUSIVE = 0.25
"""Half-width of rho's interval beyond which a trajectory that does not look stable is not called
unstable either."""

__all__ = [
    "INCONCLUSIVE",
    "SETTLE",
    "ContractionEstimate",
    "GaussianConstants",
    "estimate_contraction",
    "gaussian_constants",
    "gaussian_plateau",
    "variogram_rho",
]


@dataclass(frozen=True)
class ContractionEstimate:
    """A measured contraction factor and plateau, with standard errors and a ``level`` interval.

    ``ci_over`` says what the standard errors are over: ``"seeds"`` (jackknife over seeds, and
    the seeds' spread for the plateau) or ``"generations"`` (one seed: jackknife over its
    transitions; no plateau interval). ``plateau_sq`` is the mean squared distance itself.
    """

    rho: float
    rho_se: float
    rho_low: float
    rho_high: float
    plateau: float
    plateau_se: float
    plateau_sq: float
    plateau_sq_se: float
    n_seeds: int
    n_transitions: int
    method: str
    ci_over: str
    level: float = 0.95
    generations: int = 0
    noise_floor: bool = False
    """The distances never rose above their sampling noise (rho undefined, NaN)."""

    @property
    def settle_time(self) -> float:
        """Generations until ``rho_high^(2t) <= SETTLE``: the slowest rate the interval allows."""
        if self.noise_floor or self.rho_high <= 0:
            return 0.0
        if not self.rho_high < 1:
            return math.inf
        return math.log(SETTLE) / (2.0 * math.log(self.rho_high))

    @property
    def stable(self) -> bool:
        """The observed verdict (module docstring): contracting, and settled by mid-run."""
        return bool(self.settle_time <= max(self.generations // 2, 1))

    @property
    def verdict(self) -> str:
        """``"stable"``; ``"unstable"``; or ``"inconclusive"`` when not stable and the interval
        of rho is wider than ``2 * INCONCLUSIVE`` (too noisy to call either way)."""
        if self.stable:
            return "stable"
        wide = not (self.rho_high - self.rho_low <= 2 * INCONCLUSIVE)
        return "inconclusive" if wide else "unstable"

    def as_dict(self) -> dict:
        return {**asdict(self), "stable": self.stable, "verdict": self.verdict}


def _as_2d(values: ArrayLike, name: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] < 2:
        raise InputError(f"{name} must have shape (seeds, generations >= 2), got {a.shape}")
    return a


def _jackknife(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """Ratio ``sum num / sum den`` and its jackknife standard error, leaving out one unit
    (entry) at a time."""
    total_n, total_d = num.sum(), den.sum()
    if total_d <= 0:
        return 0.0, 0.0
    est = total_n / total_d
    k = len(num)
    if k < 3:  # too few units for an interval: the estimate stands alone (inconclusive)
        return est, math.nan
    leave = []
    for i in range(k):
        d = total_d - den[i]
        if d <= 0:  # leaving this unit out leaves nothing to divide by: no interval
            return est, math.nan
        leave.append((total_n - num[i]) / d)
    leave = np.asarray(leave)
    return est, float(np.sqrt((k - 1) / k * np.sum((leave - leave.mean()) ** 2)))


def estimate_contraction(
    distance: ArrayLike,
    step: ArrayLike | None = None,
    *,
    squared: bool = False,
    level: float = 0.95,
    lag2: ArrayLike | None = None,
) -> ContractionEstimate:
    """Contraction factor and plateau from trajectories of shape (seeds, generations).

    ``distance[s, t]`` is ``||theta_t - theta*||`` of seed s (generation 0 first), ``step[s, t]``
    is ``||theta_t - theta_{t-1}||`` (``step[:, 0]`` unused); with ``squared=True`` both hold
    squared distances (e.g. the unbiased squared MMD, which may be slightly negative). NaN entries
    (a cell that stopped early) drop the transitions they touch. See the module docstring.

    ``lag2[s, t]`` (``||theta_t - theta_{t-2}||``, with ``step``): rho from the variogram of
    the second half of the run instead (:func:`variogram_rho`), which needs no fixed point.

    Example:
        >>> rng = np.random.default_rng(0); e = np.zeros((200, 31))
        >>> for t in range(1, 31): e[:, t] = 0.5 * e[:, t - 1] + rng.normal(size=200)
        >>> round(estimate_contraction(np.abs(e), np.abs(np.diff(e, prepend=0))).rho, 2)
        0.5
    """
    q = _as_2d(distance, "distance")
    q = q if squared else q**2
    seeds, gens = q.shape
    z = float(norm.ppf(0.5 + level / 2))
    prev, here = q[:, :-1], q[:, 1:]
    if step is not None:
        s = _as_2d(step, "step")
        if s.shape != q.shape:
            raise InputError(f"step has shape {s.shape}, distance {q.shape}")
        s = s if squared else s**2
        inner = (here + prev - s[:, 1:]) / 2.0
        ok = np.isfinite(inner) & np.isfinite(prev)
        num = np.where(ok, inner, 0.0)
        den = np.where(ok, prev, 0.0)
        method = "polarization"
    else:
        ok = np.isfinite(here) & np.isfinite(prev)
        method = "squared-distance regression"
    if lag2 is not None and step is not None:
        num, den, ok = _variogram_terms(_as_2d(lag2, "lag2"), s, squared=squared)
        method = "variogram"
    n_transitions = int(ok.sum())
    ci_over = "seeds" if seeds >= 2 else "generations"
    if method == "variogram":
        ratio, se = (_jackknife(num.sum(1), den.sum(1)) if seeds >= 2
                     else _jackknife(num.ravel(), den.ravel()))
        rho = ratio - 1.0
    elif step is None:
        rho, se = _slope_jackknife(prev, here, ok, seeds)
    elif seeds >= 2:
        rho, se = _jackknife(num.sum(1), den.sum(1))
    else:
        rho, se = _jackknife(num.ravel(), den.ravel())
    noise_floor = False
    if squared and step is not None and seeds > 1:  # unbiased squared distances: above noise?
        # (one seed has no spread to compare with: its rho is judged like any other)
        per_seed = den.sum(1)
        spread = per_seed.std(ddof=1) / math.sqrt(seeds)
        noise_floor = bool(per_seed.mean() <= z * spread)
        if noise_floor:
            rho, se = math.nan, math.nan
    plateau_sq, plateau_sq_se = _plateau(q)
    plateau = math.sqrt(max(plateau_sq, 0.0)) if math.isfinite(plateau_sq) else math.nan
    plateau_se = plateau_sq_se / (2 * plateau) if plateau > 0 else math.nan
    return ContractionEstimate(
        rho=float(rho),
        rho_se=float(se),
        rho_low=float(rho - z * se) if math.isfinite(se) else math.nan,
        rho_high=float(rho + z * se) if math.isfinite(se) else math.inf,
        plateau=plateau,
        plateau_se=float(plateau_se),
        plateau_sq=float(plateau_sq),
        plateau_sq_se=float(plateau_sq_se),
        n_seeds=seeds,
        n_transitions=n_transitions,
        method=method,
        ci_over=ci_over,
        level=level,
        generations=gens - 1,
        noise_floor=noise_floor,
    )


def _variogram_terms(
    lag2: np.ndarray, step_sq: np.ndarray, *, squared: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lag-2 squared distances, lag-1 squared distances, usable) from generation
    ``max(3, T / 4)`` on (2 in a run of 3 generations): the terms of :func:`variogram_rho`.
    Why not from 2: ``theta_2 - theta_0`` carries generation 0's own offset (a network fitted for
    a budget from scratch sits apart from its fine-tuned successors), and the estimate assumes
    the chain has forgotten it (a transient still decaying reads as a larger rho)."""
    q2 = lag2 if squared else lag2**2
    if q2.shape != step_sq.shape:
        raise InputError(f"lag2 has shape {q2.shape}, step {step_sq.shape}")
    gens = q2.shape[1] - 1
    start = max(VARIOGRAM_START, gens // 4) if gens > VARIOGRAM_START else 2
    mask = np.zeros(q2.shape, dtype=bool)
    mask[:, start:] = True
    ok = mask & np.isfinite(q2) & np.isfinite(step_sq)
    return np.where(ok, q2, 0.0), np.where(ok, step_sq, 0.0), ok


def variogram_rho(lag1: ArrayLike, lag2: ArrayLike) -> float:
    """Contraction factor from the variogram of a stationary AR(1) chain: ``rho = V2 / V1 - 1``,
    ``V_k = E ||theta_t - theta_{t-k}||^2`` (pooled sums from generation
    ``max(VARIOGRAM_START, T / 4)`` on).

    Why: ``V_k = 2 tr(Gamma_0) (1 - rho^k)`` whatever the fixed point is, so ``V2 / V1 = 1 +
    rho``. The polarization estimate measures the contraction *towards generation 0*; a fit still
    converging when generation 0 is taken (a network trained for a budget) keeps moving away from
    it at every rho, which that estimate reads as rho near 1. A random walk gives V2 = 2 V1 (rho =
    1); independent fits around one point, V2 = V1 (rho = 0).
    """
    num, den, _ = _variogram_terms(_as_2d(lag2, "lag2"), _as_2d(lag1, "lag1") ** 2,
                                   squared=False)
    return float(num.sum() / den.sum() - 1.0) if den.sum() > 0 else math.nan


def _sqrt_pos(r: float) -> float:
    return math.sqrt(max(r, 0.0))


def _slope_jackknife(prev, here, ok, seeds) -> tuple[float, float]:
    """sqrt of the pooled least-squares slope of d_t^2 on d_{t-1}^2, jackknifed over seeds."""

    def slope(rows: np.ndarray) -> float:
        x, y = prev[rows][ok[rows]], here[rows][ok[rows]]
        if len(x) < 2 or np.var(x) == 0:
            return 0.0
        return _sqrt_pos(float(np.cov(x, y, bias=True)[0, 1] / np.var(x)))

    every = np.arange(seeds)
    est = slope(every)
    if seeds < 2:
        return est, math.nan
    leave = np.array([slope(np.delete(every, i)) for i in range(seeds)])
    return est, float(np.sqrt((seeds - 1) / seeds * np.sum((leave - leave.mean()) ** 2)))


def _plateau(q: np.ndarray) -> tuple[float, float]:
    """Mean squared distance over the second half of the generations (after 0): per seed, then
    the mean over seeds and its standard error."""
    gens = q.shape[1]
    start = max(1, gens // 2)
    with np.errstate(all="ignore"):
        per_seed = np.nanmean(q[:, start:], axis=1)
    per_seed = per_seed[np.isfinite(per_seed)]
    if len(per_seed) == 0:
        return math.nan, math.nan
    se = float(per_seed.std(ddof=1) / math.sqrt(len(per_seed))) if len(per_seed) > 1 else math.nan
    return float(per_seed.mean()), se


# ---- the theorem's constants for a Gaussian fitted by maximum likelihood -----------------------


@dataclass(frozen=True)
class GaussianConstants:
    """This project's estimates of ``alpha``, ``L`` and ``eps``, the constants of Bertrand et
    al.'s stability theorem (:mod:`autophagy.theory.theorem`), for a Gaussian MLE, in the
    whitened coordinates of :func:`~autophagy.metrics.fixed_point.gaussian_embedding` (data
    ``z = L*^{-1}(x - mu*)``; parameters in the Fisher norm at theta*).

    - ``alpha = 1``: the expected log-likelihood depends on the data only through its first two
      moments, which the MLE matches, so its Hessian at theta* is minus the Fisher information:
      the identity in these coordinates, misspecified or not.
    - ``L = sqrt(1 + 2 R^2)``: the norm of the Jacobian in x of ``grad_theta log p_theta*(x) =
      (z, (z z^T - I) / 2)`` is ``sqrt(1 + 2 ||z||^2)`` (dual of the Fisher norm); its supremum
      over the convex hull of the real data is at the data point of largest whitened radius R.
      This is the *gradient* form (x -> grad_theta log p L-Lipschitz), this project's stand-in,
      not the paper's assumption: the paper's Assumption 1 is on the *Hessian* x ->
      grad^2_theta log p_theta(x) (as the OpenReview discussion of the paper reads it, and as the
      proof's step ``||B - F|| <= L eps`` needs; docs/stability.md). Both hold on the data's
      support only (for a Gaussian each grows with x), and they differ in value, so the largest
      stable lambda computed from this L is the paper's condition with this project's L.
    - ``eps``: W1 (exact, POT) between the real data and as many draws from theta*, minus the
      W1 between two such draws (the noise floor two samples of one law show), averaged over
      ``repeats`` draws and clipped at 0: about 0 for a well-specified model.
    """

    alpha: float
    L: float
    eps: float
    eps_raw: float
    eps_floor: float
    radius: float
    n: int

    @property
    def max_stable_lambda(self) -> float:
        from autophagy.theory.theorem import max_stable_lambda

        return max_stable_lambda(self.L, self.eps, self.alpha)


def _w1(a: np.ndarray, b: np.ndarray) -> float:
    import ot

    cost = ot.dist(a, b, metric="euclidean")
    return float(ot.emd2(np.full(len(a), 1 / len(a)), np.full(len(b), 1 / len(b)), cost,
                         numItermax=1_000_000))


def gaussian_constants(
    real: ArrayLike, *, repeats: int = 5, max_points: int = 2000, seed: int = 0
) -> GaussianConstants:
    """Estimate ``(alpha, L, eps)`` for a Gaussian MLE fitted to ``real`` (n, d); see
    :class:`GaussianConstants` for how. ``seed`` fixes the draws from theta* behind ``eps``.

    Example:
        >>> c = gaussian_constants(np.random.default_rng(0).normal(size=(500, 2)))
        >>> c.alpha, c.eps < 0.05
        (1.0, True)
    """
    from autophagy.theory.sampling import fit_gaussian, safe_cholesky

    x = np.asarray(real, dtype=np.float64)
    x = x.reshape(len(x), -1)
    mean, cov = fit_gaussian(x)
    chol = safe_cholesky(cov)
    z = np.linalg.solve(chol, (x - mean).T).T
    radius = float(np.sqrt((z**2).sum(1).max()))
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 11]))
    if len(z) > max_points:
        z = z[rng.choice(len(z), max_points, replace=False)]
    m = len(z)
    raw, floor = [], []
    for _ in range(int(repeats)):
        a = rng.standard_normal(z.shape)
        b = rng.standard_normal(z.shape)
        raw.append(_w1(z, a))
        floor.append(_w1(b, a))
    eps_raw, eps_floor = float(np.mean(raw)), float(np.mean(floor))
    return GaussianConstants(
        alpha=1.0,
        L=float(np.sqrt(1.0 + 2.0 * radius**2)),
        eps=max(eps_raw - eps_floor, 0.0),
        eps_raw=eps_raw,
        eps_floor=eps_floor,
        radius=radius,
        n=m,
    )


def gaussian_plateau(n: int, lam: float, d: int) -> float:
    """Expected stationary ``||theta_t - theta*||^2`` of a Gaussian MLE in the mixed loop, in
    the Fisher norm of :func:`~autophagy.metrics.fixed_point.gaussian_embedding`, to first order
    in 1/n: ``p k / (n (n + 2k))`` with ``p = d + d(d+1)/2`` parameters and k = floor(lam n)
    synthetic points, i.e. PAPER section 5's ``lam / (n (1 + 2 lam))`` per parameter.

    Why: the error follows ``e_t = r e_{t-1} + r eta_t``, r = k / (n + k), with ``eta`` the
    synthetic sample's moments minus the model's, of covariance ``F / k`` (the Fisher norm makes
    its trace p / k); the stationary variance ``r^2 p / (k (1 - r^2))`` is the formula above.
    """
    from autophagy.theory.mixing import Mixing

    k = Mixing("real", ratio=float(lam)).n_synthetic(int(n))
    p = d + d * (d + 1) / 2
    return p * k / (n * (n + 2 * k)) if k else 0.0
