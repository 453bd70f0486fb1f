"""Bertrand et al. (2024)'s stability theorem: hand-computed numbers, monotonicity, and the Gaussian
MLE mean, which contracts at exactly the theorem's rho with eps = 0 (lambda / (1 + lambda))."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autophagy.theory import (
    contraction_factor,
    distance_bound,
    empirical_contraction_factor,
    max_stable_lambda,
    mixed_mean_contraction,
    paper_contraction_factor,
    simulate_gaussian_loop,
    stability_condition,
)

pos = st.floats(0.01, 100.0)
nonneg = st.floats(0.0, 100.0)
lam_s = st.floats(0.0, 5.0)


def test_hand_computed_numbers():
    # lam = 0.5, L eps / alpha = 2 * 0.1 / 1 = 0.2: lam * 1.2 = 0.6 < 1
    assert stability_condition(0.5, 2.0, 0.1, 1.0)
    assert contraction_factor(0.5, 2.0, 0.1, 1.0) == pytest.approx(0.6 / 1.5)
    assert max_stable_lambda(2.0, 0.1, 1.0) == pytest.approx(1 / 1.2)
    # d_t = 0.4 d_{t-1} + 0.3 from d_0 = 1
    np.testing.assert_allclose(
        distance_bound(3, 0.5, 2.0, 0.1, 1.0, initial_distance=1.0, error=0.3),
        [1.0, 0.7, 0.58, 0.532],
    )
    # perfect model class: the theorem's rho is the Gaussian mean's exact rate
    assert contraction_factor(0.5, 3.0, 0.0, 2.0) == pytest.approx(1 / 3)
    assert max_stable_lambda(3.0, 0.0, 2.0) == 1.0
    assert not stability_condition(1.0, 3.0, 0.0, 2.0)  # strict inequality
    assert not stability_condition(0.9, 1.0, 0.5, 1.0)  # 0.9 * 1.5 = 1.35
    np.testing.assert_allclose(
        distance_bound(4, 1 / 3, 1.0, 1.0, 1.0, initial_distance=2.0),
        2.0 * (0.5 ** np.arange(5)),  # rho = (2/3) / (4/3) = 1/2
    )


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: stability_condition(-0.1, 1, 1, 1), "lam"),
        (lambda: stability_condition(math.nan, 1, 1, 1), "lam"),
        (lambda: stability_condition(0.5, -1, 1, 1), "L"),
        (lambda: stability_condition(0.5, 1, math.inf, 1), "eps"),
        (lambda: stability_condition(0.5, 1, 1, 0.0), "alpha"),
        (lambda: max_stable_lambda(1, 1, -2.0), "alpha"),
        (lambda: max_stable_lambda("a", 1, 1), "L"),
        (lambda: contraction_factor(0.9, 1.0, 0.5, 1.0), "lam"),
        (lambda: distance_bound(-1, 0.1, 1, 1, 1, initial_distance=1), "generations"),
        (lambda: distance_bound(2.5, 0.1, 1, 1, 1, initial_distance=1), "generations"),
        (lambda: distance_bound(3, 0.1, 1, 1, 1, initial_distance=-1), "initial_distance"),
        (lambda: distance_bound(3, 0.1, 1, 1, 1, initial_distance=1, error=-1), "error"),
        (lambda: empirical_contraction_factor([1.0]), "distances"),
        (lambda: empirical_contraction_factor([1.0, 0.0]), "distances"),
    ],
)
def test_each_bad_argument_raises_one_value_error_naming_it(call, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        call()


@settings(max_examples=200, deadline=None)
@given(lam=lam_s, L=nonneg, eps=nonneg, alpha=pos)
def test_condition_is_lambda_below_the_max_and_rho_is_in_range(lam, L, eps, alpha):
    lam_max = max_stable_lambda(L, eps, alpha)
    assert 0 < lam_max <= 1
    kappa = lam * (1 + L * eps / alpha)
    assert stability_condition(lam, L, eps, alpha) == (kappa < 1)
    if lam < lam_max * (1 - 1e-9):
        assert stability_condition(lam, L, eps, alpha)
        rho = contraction_factor(lam, L, eps, alpha)
        # never better than the exact eps = 0 rate, always a contraction
        assert lam / (1 + lam) - 1e-12 <= rho < 1
    elif lam > lam_max * (1 + 1e-9):
        assert not stability_condition(lam, L, eps, alpha)
        with pytest.raises(ValueError, match="lam"):
            contraction_factor(lam, L, eps, alpha)


@settings(max_examples=200, deadline=None)
@given(lam=st.floats(0.0, 0.99), d=st.floats(0.0, 0.5), L=pos, eps=st.floats(0.0, 1.0),
       alpha=pos)
def test_rho_is_monotone_in_each_argument(lam, d, L, eps, alpha):
    def rho(lam=lam, L=L, eps=eps, alpha=alpha):
        return contraction_factor(lam, L, eps, alpha)

    if not stability_condition(lam + d, L * (1 + d), eps + d, alpha):
        return  # the larger arguments leave the theorem's range
    base = rho()
    assert rho(lam=lam + d) >= base - 1e-12
    assert rho(L=L * (1 + d)) >= base - 1e-12
    assert rho(eps=eps + d) >= base - 1e-12
    assert rho(alpha=alpha * (1 + d)) <= base + 1e-12
    assert max_stable_lambda(L * (1 + d), eps, alpha) <= max_stable_lambda(L, eps, alpha)


@settings(max_examples=200, deadline=None)
@given(lam=st.floats(0.0, 0.9), L=nonneg, eps=st.floats(0.0, 0.05), alpha=st.floats(1.0, 10.0),
       d0=st.floats(0.0, 10.0), err=st.floats(0.0, 1.0), T=st.integers(0, 30))
def test_distance_bound_shape_and_limits(lam, L, eps, alpha, d0, err, T):
    if not stability_condition(lam, L, eps, alpha):
        return
    rho = contraction_factor(lam, L, eps, alpha)
    b = distance_bound(T, lam, L, eps, alpha, initial_distance=d0, error=err)
    assert b.shape == (T + 1,)
    assert b[0] == pytest.approx(d0)
    limit = err / (1 - rho)
    # monotone towards the statistical floor err / (1 - rho), never above the theorem's form
    assert np.all(np.diff(b) <= 1e-12) if d0 >= limit else np.all(np.diff(b) >= -1e-12)
    paper = rho ** np.arange(T + 1) * d0 + limit
    assert np.all(b <= paper + 1e-9)
    if err == 0:
        np.testing.assert_allclose(b, d0 * rho ** np.arange(T + 1))


def test_paper_constant_is_this_projects_bound_times_one_plus_lambda():
    # lam = 0.5, L eps / alpha = 0.2: the paper's 0.6, this project's 0.6 / 1.5 = 0.4
    assert paper_contraction_factor(0.5, 2.0, 0.1, 1.0) == pytest.approx(0.6)
    assert contraction_factor(0.5, 2.0, 0.1, 1.0) == pytest.approx(0.4)
    assert paper_contraction_factor(0.5, 3.0, 0.0, 2.0) == pytest.approx(0.5)  # eps = 0: lam
    with pytest.raises(ValueError, match="^lam"):
        paper_contraction_factor(0.9, 1.0, 0.5, 1.0)


def test_true_jacobian_lies_below_this_projects_bound_below_the_papers():
    """The retraining map's Jacobian at theta*, ``lam (B + lam F)^{-1} F`` (B >= alpha the data
    Hessian, F the Fisher information, ||B - F|| <= L eps), over random 1- to 3-D cases inside
    the stability condition: its spectral norm never exceeds this project's rho, which never
    exceeds the paper's constant. Both are upper bounds; ours is the tighter one."""
    rng = np.random.default_rng(0)
    worst, checked = 0.0, 0
    for _ in range(3000):
        d, lam, alpha = int(rng.integers(1, 4)), rng.uniform(0.0, 0.99), rng.uniform(0.1, 3.0)
        a = rng.normal(size=(d, d))
        b = a @ a.T
        b += (alpha - np.linalg.eigvalsh(b).min()) * np.eye(d)  # smallest eigenvalue alpha
        delta = rng.normal(size=(d, d))
        delta = (delta + delta.T) / 2
        gap = rng.uniform(0.0, alpha * (1 / lam - 1)) if lam > 0 else rng.uniform(0.0, alpha)
        f = b + delta / np.linalg.norm(delta, 2) * gap  # ||B - F|| = L eps = gap
        if np.linalg.eigvalsh(f).min() <= 0 or not stability_condition(lam, gap, 1.0, alpha):
            continue
        jac = np.linalg.norm(lam * np.linalg.solve(b + lam * f, f), 2)
        ours = contraction_factor(lam, gap, 1.0, alpha)
        paper = paper_contraction_factor(lam, gap, 1.0, alpha)
        assert jac <= ours + 1e-12 and ours <= paper + 1e-15
        worst, checked = max(worst, jac / ours if ours > 0 else 0.0), checked + 1
    assert checked > 1000 and worst > 0.99  # the bound is attained, not only respected


def test_empirical_contraction_factor_recovers_a_geometric_rate():
    assert empirical_contraction_factor(3.0 * 0.4 ** np.arange(6)) == pytest.approx(0.4)
    assert empirical_contraction_factor([1.0, 0.5, 0.5]) == pytest.approx(math.sqrt(0.5))


# ---- the Gaussian MLE mean contracts at lambda / (1 + lambda) ------------------------------


@pytest.mark.parametrize("lam", [0.25, 0.5, 1.0, 2.0])
def test_gaussian_mean_contracts_at_the_theorem_rate(lam):
    """Started 3 standard deviations from the real fit, the mixed loop's mean error shrinks by
    lambda / (1 + lambda) a generation: E[e_t | e_{t-1}] = r e_{t-1} exactly (n lam integer).

    Checked two ways over 4,000 seeds: the regression slope of e_t on e_{t-1} (heteroscedasticity
    -robust standard error) and the seed-averaged trajectory against rho^t e_0. For lam >= 1 the
    theorem's condition fails (eps = 0 needs lam < 1) yet the Gaussian still contracts: the
    condition is sufficient, not necessary.
    """
    n, T, start = 40, 6, 3.0
    r = mixed_mean_contraction(lam)
    if lam < 1:
        assert contraction_factor(lam, L=1.0, eps=0.0, alpha=1.0) == pytest.approx(r)
    else:
        assert not stability_condition(lam, 1.0, 0.0, 1.0)
    run = simulate_gaussian_loop(n=n, generations=T, policy="mixed", lam=lam, seeds=4000,
                                 mean=[0.0], cov=[[1.0]], init_mean=[start], rng_seed=7)
    e = run.means[:, :, 0] - run.real_mean  # (S, T+1), e_0 = start - real mean
    x, y = e[:, :-1].ravel(), e[:, 1:].ravel()
    slope = (x @ y) / (x @ x)
    se = math.sqrt(np.sum(x**2 * (y - slope * x) ** 2)) / (x @ x)
    assert abs(slope - r) < 3.29 * se, (slope, r, se)
    assert abs(slope - (r + 0.02)) > 3.29 * se  # and a rate 0.02 off is rejected
    # the seed-averaged error follows rho^t e_0 (E[e_0] = start: the real mean is centred on 0)
    expected = start * r ** np.arange(T + 1)
    mean_e = e.mean(axis=0)
    half = 3.66 * e.std(axis=0, ddof=1) / math.sqrt(e.shape[0])  # Bonferroni over 7 points
    assert np.all(np.abs(mean_e[1:] - expected[1:]) < half[1:])
    # before the noise floor, the empirical factor of the averaged trajectory is rho
    k = 3 if lam <= 1 else T
    assert empirical_contraction_factor(mean_e[: k + 1]) == pytest.approx(r, abs=0.01)


def test_measured_distance_stays_below_the_bound_plus_the_statistical_floor():
    """Theorem 2's shape for the Gaussian: the distance of the mean to the real fit falls as
    rho^t d_0 until it meets the spread of the stationary law, O(lam / ((1+lam) sqrt(n)))."""
    n, lam, T = 100, 0.5, 10
    run = simulate_gaussian_loop(n=n, generations=T, policy="mixed", lam=lam, seeds=2000,
                                 mean=[0.0], cov=[[1.0]], init_mean=[2.0], rng_seed=3)
    dist = np.abs(run.means[:, :, 0] - run.real_mean)
    floor = 3.0 * math.sqrt(lam / (n * (1 + 2 * lam)))  # 3 stationary standard deviations
    # per-generation error: |(m/N)(ybar - mu_{t-1})| <~ 3 (m/N) / sqrt(m), with rho = m/N
    rho = contraction_factor(lam, 1.0, 0.0, 1.0)
    err = 3.0 * rho / math.sqrt(lam * n)
    bound = distance_bound(T, lam, 1.0, 0.0, 1.0, initial_distance=2.2, error=err)
    assert np.mean(dist <= bound) > 0.99
    assert np.quantile(dist[:, -1], 0.99) < floor
