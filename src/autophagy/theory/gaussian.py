"""Closed forms for a Gaussian fitted by maximum likelihood, retrained on its own samples.

The warm-up example of Bertrand et al. (ICLR 2024, Section 3) and of Shumailov et al. (2023), where
everything is exact. Write ``Sigma_0`` for the generation-0 fit, ``e_t = mu_t - mu_0`` for the
drift of the mean, and train generation t on an *anchor* set (the n real points for ``mixed``,
every earlier training point for ``accumulate``, nothing for ``fully_synthetic``) pooled with
``k`` fresh draws from ``N(mu_{t-1}, tau Sigma_{t-1})``. Pooling a sample mean ``ybar`` and
scatter ``Q`` with the anchor's (count A, mean m_A, scatter R_A) gives, N = A + k,

    mu_t    = (A m_A + k ybar) / N
    scatter = R_A + Q + (A k / N) (ybar - m_A)(ybar - m_A)^T,    Sigma_t = scatter / D

with ``D = N`` (MLE) or ``N - 1`` (unbiased), ``E[Q] = (k - 1) tau Sigma_{t-1}`` and
``ybar ~ N(mu_{t-1}, tau Sigma_{t-1} / k)``. Taking expectations, ``E[Sigma_t] = a_t Sigma_0`` and
``E[e_t e_t^T] = b_t Sigma_0`` for scalars (a_t, b_t) that follow a linear recursion: the whole
trajectory of expected moments is two numbers per generation, whatever the dimension.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import digamma, gammaln, polygamma

from autophagy.errors import InputError
from autophagy.theory.mixing import SCHEMES, Mixing

#: Schemes the Gaussian closed forms and simulation cover.
GAUSSIAN_POLICIES = tuple(SCHEMES)


def resolve_policy(policy, lam: float | None = None, fraction: float | None = None) -> Mixing:
    """The :class:`~autophagy.theory.mixing.Mixing` a policy declares (a policy object, a
    ``Mixing``, or a scheme name such as ``"mixed"`` / ``"mixed:0.5"``), so that theory and
    simulation count synthetic samples exactly as the loop."""
    return Mixing.parse(policy, lam, fraction)


def _check_int(name: str, value: int, minimum: int) -> int:
    if int(value) != value or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_positive(name: str, value: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{name} must be a positive finite number, got {value!r}")
    return value


def _as_cov(cov: ArrayLike) -> np.ndarray:
    cov = np.atleast_2d(np.asarray(cov, dtype=np.float64))
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        raise InputError(f"cov must be a square matrix or a scalar variance, got shape {cov.shape}")
    return cov


@dataclass(frozen=True)
class ExpectedGaussianTrajectory:
    """Expected moments per generation: ``E[Sigma_t] = cov_ratio[t] * cov0`` and
    ``E[(mu_t - ref)(mu_t - ref)^T] = shift_ratio[t] * cov0``.

    ``reference`` says what the expectation is conditional on and what the mean is measured
    against: ``"gen0"`` (given the generation-0 fit; ref = mu_0, cov0 = Sigma_0) or ``"truth"``
    (over the real sample too; ref = the true mean, cov0 = the true covariance).
    """

    cov_ratio: np.ndarray
    shift_ratio: np.ndarray
    cov0: np.ndarray
    reference: str = "gen0"

    @property
    def cov_trace_ratio(self) -> np.ndarray:
        """``E[tr Sigma_t] / tr(cov0)``, shape (T+1,)."""
        return self.cov_ratio

    @property
    def mean_shift_sq(self) -> np.ndarray:
        """``E ||mu_t - ref||^2``, shape (T+1,)."""
        return self.shift_ratio * np.trace(self.cov0)

    @property
    def expected_cov(self) -> np.ndarray:
        """``E[Sigma_t]``, shape (T+1, d, d)."""
        return self.cov_ratio[:, None, None] * self.cov0


def _gen0_ratios(policy: Mixing, n: int, generations: int, unbiased: bool, tau: float):
    """(a_t, b_t) given generation 0 = MLE of the n real points (module docstring)."""
    a, b = np.ones(generations + 1), np.zeros(generations + 1)
    k = policy.n_synthetic(n)
    real_scatter = n - 1 if unbiased else n  # R = real_scatter * Sigma_0
    for t in range(1, generations + 1):
        a1, b1 = a[t - 1], b[t - 1]
        if policy.anchor == "real":
            N = n + k
            if k == 0:  # lambda * n < 1: refit on the real data, nothing moves
                a[t], b[t] = 1.0, 0.0
                continue
            # E[(ybar - mu_0)(.)^T] = (b1 + tau a1 / k) Sigma_0; mu_t - mu_0 = (k/N)(ybar - mu_0)
            scatter = real_scatter + tau * (k - 1 + n / N) * a1 + (n * k / N) * b1
            b[t] = (k / N) ** 2 * b1 + k * tau * a1 / N**2
        elif policy.anchor == "none":
            N = k
            scatter = tau * (k - 1) * a1
            b[t] = b1 + tau * a1 / k
        elif policy.anchor == "past":
            prev = n + (t - 1) * k  # size of generation t-1's training set, mean mu_{t-1}
            N = prev + k
            prev_scatter = (prev - 1 if unbiased else prev) * a1
            scatter = prev_scatter + tau * (k - 1 + prev / N) * a1
            b[t] = b1 + k * tau * a1 / N**2
        else:
            raise InputError(
                f"policy {policy.scheme!r} has no closed form given generation 0 (its fixed point "
                "is "
                "the truth, not the real fit); use expected_gaussian_trajectory_from_truth"
            )
        a[t] = scatter / (N - 1 if unbiased else N)
    return a, b


def expected_gaussian_trajectory(
    *,
    n: int,
    generations: int,
    policy: str | Mixing | Any,
    cov0: ArrayLike,
    lam: float | None = None,
    unbiased: bool = False,
    temperature: float = 1.0,
) -> ExpectedGaussianTrajectory:
    """Exact ``E[Sigma_t]`` and ``E[(mu_t - mu_0)(mu_t - mu_0)^T]`` given generation 0.

    Generation 0 is the fit on the n real points (``mu_0``, ``Sigma_0 = cov0``). Covers
    ``"mixed"`` (Bertrand et al., Algorithm 1: all real + floor(lam n) synthetic),
    ``"fully_synthetic"`` (n synthetic only; gives ``E Sigma_t = ((n-1)/n)^t Sigma_0`` for the
    MLE, constant for the unbiased estimator, Section 3 of the paper) and ``"accumulate"``
    (Gerstgrasser et al., 2024). ``temperature`` tau samples from ``N(mu, tau Sigma)`` (MAD's
    sampling bias). ``lam`` defaults to the policy's default (1 for mixed and accumulate).

    Example:
        >>> expected_gaussian_trajectory(n=100, generations=3, policy="fully_synthetic",
        ...                              cov0=1.0).cov_trace_ratio
        array([1.      , 0.99    , 0.9801  , 0.970299])
    """
    n = _check_int("n", n, 2)
    generations = _check_int("generations", generations, 0)
    tau = _check_positive("temperature", temperature)
    pol = resolve_policy(policy, lam)
    a, b = _gen0_ratios(pol, n, generations, bool(unbiased), tau)
    return ExpectedGaussianTrajectory(a, b, _as_cov(cov0), "gen0")


def expected_gaussian_trajectory_from_truth(
    *,
    n: int,
    generations: int,
    policy: str | Mixing | Any,
    cov: ArrayLike,
    lam: float | None = None,
    fraction: float | None = None,
    unbiased: bool = False,
    temperature: float = 1.0,
) -> ExpectedGaussianTrajectory:
    """Exact ``E[Sigma_t]`` and ``E[(mu_t - mu)(mu_t - mu)^T]`` against the *true* N(mu, cov),
    averaging over the real sample as well (drawn afresh for every run).

    This is the error Gerstgrasser et al. (2024) track: for ``"accumulate"`` (lam = 1)
    ``n E||mu_T - mu||^2 / tr(cov)`` stays below ``sum_{k <= T+1} 1/k^2 < pi^2/6`` while fully
    synthetic grows like ``T + 1``. Also covers ``"fresh_real"`` (MAD's fresh-data loop:
    floor(fraction n) new real points + the rest synthetic), whose fixed point is the truth.
    For the other policies it follows from :func:`expected_gaussian_trajectory` because
    ``E[mu_t - mu_0 | generation 0] = 0``: the real-sample error ``tr(cov)/n`` just adds.
    """
    n = _check_int("n", n, 2)
    generations = _check_int("generations", generations, 0)
    tau = _check_positive("temperature", temperature)
    pol = resolve_policy(policy, lam, fraction)
    a0 = 1.0 if unbiased else (n - 1) / n  # E[Sigma_0] / cov
    if pol.anchor != "fresh":
        a, b = _gen0_ratios(pol, n, generations, bool(unbiased), tau)
        return ExpectedGaussianTrajectory(a0 * a, 1.0 / n + a0 * b, _as_cov(cov), "truth")
    f = pol.n_fresh(n)  # fresh real points: mean ~ N(mu, cov/f), scatter ~ Wishart(cov, f-1)
    k = n - f
    a, b = np.empty(generations + 1), np.empty(generations + 1)
    a[0], b[0] = a0, 1.0 / n
    for t in range(1, generations + 1):
        # xbar - ybar has second moment (1/f + b + tau a / k) cov; pooled as in the docstring
        scatter = (f - 1 + k / n) + tau * (k - 1 + f / n) * a[t - 1] + (f * k / n) * b[t - 1]
        a[t] = scatter / (n - 1 if unbiased else n)
        b[t] = f / n**2 + (k / n) ** 2 * b[t - 1] + k * tau * a[t - 1] / n**2
    return ExpectedGaussianTrajectory(a, b, _as_cov(cov), "truth")


# ---- fully synthetic: collapse of the covariance (Section 3; Shumailov et al., 2023) ----------


def logdet_drift(n: int, d: int = 1, *, unbiased: bool = False, temperature: float = 1.0) -> float:
    """Expected change of ``log det Sigma_t`` per fully synthetic generation.

    ``Sigma_t = tau Sigma_{t-1}^{1/2} W Sigma_{t-1}^{1/2} / D`` with W ~ Wishart(I, n-1) and
    D = n (MLE) or n - 1 (unbiased), so log det is a random walk; by the Bartlett decomposition
    log det W is a sum of independent log chi2_{n-i}, i = 1..d, each with mean
    digamma((n-i)/2) + log 2. The drift is negative for tau <= 1 even when ``E[Sigma_t]`` is
    constant (unbiased): ``Sigma_t -> 0`` almost surely. For d = 1, unbiased, it is about
    ``-1/(n-1)``: the median variance falls like ``exp(-t/(n-1))``.
    """
    n, d = _check_int("n", n, 2), _check_int("d", d, 1)
    if n <= d:
        raise InputError(f"n must exceed d for a non-singular fit, got n={n}, d={d}")
    tau = _check_positive("temperature", temperature)
    i = np.arange(1, d + 1)
    denom = n - 1 if unbiased else n
    return float(np.sum(digamma((n - i) / 2) + math.log(2)) - d * math.log(denom / tau))


def logdet_step_variance(n: int, d: int = 1) -> float:
    """Variance of the per-generation change of ``log det Sigma_t`` (fully synthetic):
    ``sum_{i=1..d} trigamma((n-i)/2)``, the same for MLE, unbiased and any temperature."""
    n, d = _check_int("n", n, 2), _check_int("d", d, 1)
    if n <= d:
        raise InputError(f"n must exceed d for a non-singular fit, got n={n}, d={d}")
    i = np.arange(1, d + 1)
    return float(np.sum(polygamma(1, (n - i) / 2)))


def c4(n: int) -> float:
    """``E[s] / sigma`` for the unbiased sample standard deviation s of n normal draws:
    ``sqrt(2/(n-1)) Gamma(n/2) / Gamma((n-1)/2)`` (computed with log-gamma)."""
    n = _check_int("n", n, 2)
    return float(math.sqrt(2.0 / (n - 1)) * math.exp(gammaln(n / 2) - gammaln((n - 1) / 2)))


def expected_std_ratio(
    n: int, generations: int, *, unbiased: bool = False, temperature: float = 1.0
) -> np.ndarray:
    """``E[std_t] / std_0`` of a 1-D Gaussian under fully synthetic retraining, shape (T+1,).

    Each generation multiplies the standard deviation by an independent
    ``sqrt(tau chi2_{n-1} / D)``, whose mean is ``c4(n) sqrt(tau (n-1) / D)``; so the expected
    standard deviation decays geometrically even when the expected variance does not (unbiased).
    """
    generations = _check_int("generations", generations, 0)
    tau = _check_positive("temperature", temperature)
    step = c4(n) * math.sqrt(tau * (n - 1) / (n - 1 if unbiased else n))
    return step ** np.arange(generations + 1)


# ---- mixed: the stable loop with a real-data anchor (Section 3 of the paper) ------------------


def mixed_mean_contraction(lam: float) -> float:
    """``E[e_t | e_{t-1}] = lam / (1 + lam) e_{t-1}``: the factor the theorem's rho reduces to for a
    Gaussian MLE (eps = 0), exact when ``lam n`` is an integer (else use m / (n + m))."""
    if not (math.isfinite(lam) and lam >= 0):
        raise InputError(f"lam must be a finite number >= 0, got {lam!r}")
    return lam / (1.0 + lam)


def stationary_mean_variance(n: int, lam: float, sigma2: float) -> float:
    """Stationary variance of the mean around the real MLE for the mixed loop, 1-D:
    ``lam sigma2 / (n (1 + 2 lam))``, from ``V = r^2 (V + sigma2 / m)``, r = lam / (1 + lam),
    m = lam n. Bounded for every finite lambda.

    It holds the fitted variance at ``sigma2``; the fitted variance itself settles slightly
    lower (an O(1/n) effect), which :func:`stationary_gaussian_ratios` includes exactly.
    """
    n = _check_int("n", n, 1)
    if not (math.isfinite(lam) and lam >= 0):
        raise InputError(f"lam must be a finite number >= 0, got {lam!r}")
    return lam * float(sigma2) / (n * (1.0 + 2.0 * lam))


def stationary_gaussian_ratios(
    *, n: int, lam: float, unbiased: bool = False, temperature: float = 1.0
) -> tuple[float, float]:
    """Exact limits ``(a, b)`` of the mixed loop: ``E[Sigma_t] -> a Sigma_0`` and
    ``E[(mu_t - mu_0)(.)^T] -> b Sigma_0`` (fixed point of the recursion in
    :func:`expected_gaussian_trajectory`; ``(inf, inf)`` if a high temperature makes it diverge).
    For the MLE at tau = 1, ``a = 1 / (1 + m / (n (n + 2m)))`` and ``b = r^2 a / (m (1 - r^2))``.
    """
    n = _check_int("n", n, 2)
    tau = _check_positive("temperature", temperature)
    k = resolve_policy("mixed", lam).n_synthetic(n)
    if k == 0:
        return 1.0, 0.0
    N = n + k
    D = N - 1 if unbiased else N
    A = np.array([[tau * (k - 1 + n / N) / D, n * k / N / D], [k * tau / N**2, (k / N) ** 2]])
    if np.max(np.abs(np.linalg.eigvals(A))) >= 1:
        return math.inf, math.inf
    c = np.array([(n - 1 if unbiased else n) / D, 0.0])
    a, b = np.linalg.solve(np.eye(2) - A, c)
    return float(a), float(b)
