"""Replace against accumulate in linear regression (Gerstgrasser et al., 2024, Theorems 1-2).

A fixed design X (T rows, d features), labels ``y_0 = X w* + E_0`` with noise variance sigma^2;
generation t refits least squares on labels the previous fit predicts plus fresh noise,
``y = X w_{t-1} + E_t``. With ``A = (X^T X)^{-1} X^T`` every fit's error ``e_t = w_t - w*`` is a
linear combination of independent noise vectors ``A E``, each of expected test error (excess
risk ``||e||^2_Sigma``)

    C = sigma^2 tr(Sigma (X^T X)^{-1}),   E C = sigma^2 d / (T - d - 1) for x ~ N(0, Sigma)

(the mean of an inverse Wishart). Counting the first fit as generation 0:

    replace (fully_synthetic):  e_t = e_{t-1} + A E_t
                                E err_t = C (t + 1)
    accumulate (lambda = 1):    e_t = (e_0 + sum_{s<=t} (e_{s-1} + A E_s)) / (t + 1)
                                E err_t = C sum_{i<=t+1} 1/i^2  <  C pi^2 / 6
    mixed (lambda = k):         e_t = (e_0 + k e_{t-1} + A sum_{j<=k} E_{t,j}) / (k + 1)

``regression_error_terms`` tracks the coefficients of e_0 and of the noise vectors exactly
(``accumulate`` and ``mixed`` for a whole-number lambda: the project's model draws floor(k T)
synthetic rows as k copies of the design) and sums their squares: ``E[err_t | real sample] =
a_t err_0 + b_t C``. The paper's t counts fits from 1; here generation t is its fit t + 1.
"""

from __future__ import annotations

import math

import numpy as np

from autophagy.errors import InputError
from autophagy.theory.gaussian import _check_int

ACCUMULATE_BOUND = math.pi**2 / 6
"""``sum_i 1/i^2``: accumulating never exceeds this factor of the first fit's error."""
REGRESSION_POLICIES = ("fully_synthetic", "accumulate", "mixed")


def regression_error_constant(n: int, dim: int, noise: float = 1.0) -> float:
    """``sigma^2 d / (T - d - 1)``: the first fit's expected test error over Gaussian designs of
    ``n`` = T rows in ``dim`` = d dimensions (needs T > d + 1)."""
    n, dim = _check_int("n", n, 1), _check_int("dim", dim, 1)
    if n <= dim + 1:
        raise InputError(f"n must exceed dim + 1 for a finite expected error (n={n}, dim={dim})")
    return float(noise) ** 2 * dim / (n - dim - 1)


def design_error_constant(design: np.ndarray, noise: float = 1.0,
                          cov: np.ndarray | None = None) -> float:
    """``sigma^2 tr(Sigma (X^T X)^{-1})``: the first fit's expected test error *given* the
    design X (rows, features); ``cov`` is the features' covariance Sigma (default I)."""
    x = np.asarray(design, dtype=np.float64)
    gram_inv = np.linalg.inv(x.T @ x)
    cov = np.eye(x.shape[1]) if cov is None else np.asarray(cov, dtype=np.float64)
    return float(noise) ** 2 * float(np.trace(cov @ gram_inv))


def regression_error_terms(policy: str, generations: int,
                           lam: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``(a_t, b_t)`` for t = 0..T with ``E[err_t | first fit] = a_t err_0 + b_t C``: ``a_t`` the
    squared weight of the first fit's error e_0 in e_t, ``b_t`` the summed squared weights of
    the synthetic label noises (module docstring). Exact for the loop's policies:
    ``fully_synthetic`` (replace), ``accumulate`` and ``mixed`` with a whole-number ``lam``."""
    generations = _check_int("generations", generations, 0)
    if policy not in REGRESSION_POLICIES:
        raise InputError(f"policy must be one of {', '.join(REGRESSION_POLICIES)}, "
                         f"got {policy!r}")
    k = 1
    if policy != "fully_synthetic":
        if not (float(lam).is_integer() and lam >= 0):
            raise InputError(f"lambda must be a whole number >= 0 for the closed form (floor("
                             f"lambda T) synthetic rows are then copies of the design), got {lam}")
        k = int(lam)
    # Row s of ``coef``: e_s as coefficients of the independent noise vectors (e_0, A E_1, ...)
    size = 1 + generations * k
    coef = np.zeros((generations + 1, size))
    coef[0, 0] = 1.0
    for t in range(1, generations + 1):
        noises = np.zeros(size)  # every synthetic label noise up to generation t
        noises[1 : 1 + t * k] = 1.0
        fresh = noises.copy()  # this generation's k of them
        fresh[1 : 1 + (t - 1) * k] = 0.0
        if policy == "fully_synthetic":
            coef[t] = coef[t - 1] + fresh
        elif policy == "mixed":
            coef[t] = (coef[0] + k * coef[t - 1] + fresh) / (k + 1)
        else:  # accumulate: the real set and every generation's k copies, each from its model
            coef[t] = (coef[0] + k * coef[:t].sum(0) + noises) / (1 + t * k)
    return coef[:, 0] ** 2, (coef[:, 1:] ** 2).sum(1)


def regression_error_factors(policy: str, generations: int, lam: float = 1.0) -> np.ndarray:
    """``E err_t / C`` for t = 0..T over the first fit too: ``t + 1`` replacing,
    ``sum_{i<=t+1} 1/i^2`` accumulating (:func:`regression_error_terms`, ``a_t + b_t``)."""
    a, b = regression_error_terms(policy, generations, lam)
    return a + b


def expected_regression_error(
    policy: str,
    *,
    n: int,
    dim: int,
    generations: int,
    noise: float = 1.0,
    lam: float = 1.0,
    design: np.ndarray | None = None,
    first_error: float | None = None,
    cov: np.ndarray | None = None,
) -> np.ndarray:
    """``E test_error_t`` for t = 0..T: the theorem's ``factors * sigma^2 d / (T - d - 1)``
    (the average over Gaussian designs and label noise), or, given the real sample, its
    ``design`` X and its first fit's test error ``first_error``, the exact conditional
    expectation ``a_t first_error + b_t sigma^2 tr(Sigma (X^T X)^{-1})``."""
    if (design is None) != (first_error is None):
        raise InputError("give both design and first_error (the real sample), or neither")
    if design is None:
        return regression_error_factors(policy, generations, lam) * regression_error_constant(
            n, dim, noise)
    a, b = regression_error_terms(policy, generations, lam)
    return a * float(first_error) + b * design_error_constant(design, noise, cov)
