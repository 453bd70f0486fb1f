"""The array distances against independent references: exact assignment, closed forms, SciPy and
naive double loops."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from scipy.optimize import linear_sum_assignment

from autophagy.metrics import (
    energy_distance,
    mmd_rbf,
    negative_log_likelihood,
    sliced_wasserstein2,
    wasserstein2,
)
from autophagy.models.families.gaussian import GaussianMLE


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- exact W2 -------------------------------------------------------------------------------------


def test_w2_equals_optimal_assignment_for_equal_sizes():
    # For uniform weights and equal sizes, an optimal plan is a permutation (Birkhoff), so the
    # Hungarian algorithm on the squared distances is an independent exact reference.
    x = rng(1).standard_normal((60, 3))
    y = rng(2).standard_normal((60, 3)) * 1.5 + 0.7
    cost = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    expected = np.sqrt(cost[rows, cols].mean())
    assert wasserstein2(x, y) == pytest.approx(expected, rel=1e-10)


def test_w2_of_a_set_with_itself_is_zero():
    x = rng(3).standard_normal((100, 4))
    assert wasserstein2(x, x) == pytest.approx(0.0, abs=1e-12)


def test_w2_between_shifted_gaussians_approaches_the_shift():
    # W2^2(P, Q) = ||mean_P - mean_Q||^2 + W2^2(centred P, centred Q), so the empirical W2 is at
    # least the distance between sample means, and exceeds it only by the centred part, which for
    # two samples of N(0, I_2) of size 1,000 is about sqrt(0.03) ~ 0.17 added under the root:
    # sqrt(4 + 0.03) - 2 ~ 0.008. The sample means differ by O(sqrt(2/n)) ~ 0.045 per axis.
    n, m = 1000, np.array([1.2, -1.6])  # ||m|| = 2
    x = rng(4).standard_normal((n, 2))
    y = rng(5).standard_normal((n, 2)) + m
    w = wasserstein2(x, y)
    mean_gap = np.linalg.norm(y.mean(0) - x.mean(0))
    assert w >= mean_gap - 1e-9
    assert w - mean_gap < 0.02
    assert w == pytest.approx(2.0, abs=0.15)  # > 3 standard deviations of the mean-gap noise


def test_w2_unequal_sizes_in_one_dimension_matches_quantile_formula():
    # x = {0, 2}, y = {0, 1, 2, 3}: quantile functions differ by 0, 1, 0, 1 on quarters.
    x = np.array([[0.0], [2.0]])
    y = np.array([[0.0], [1.0], [2.0], [3.0]])
    assert wasserstein2(x, y) == pytest.approx(np.sqrt(0.5), rel=1e-12)


def test_w2_subsampling_is_deterministic_under_a_seed_and_needs_an_rng():
    x = rng(6).standard_normal((900, 2))
    y = rng(7).standard_normal((700, 2)) + 0.5
    a = wasserstein2(x, y, max_samples=300, rng=rng(8))
    b = wasserstein2(x, y, max_samples=300, rng=rng(8))
    c = wasserstein2(x, y, max_samples=300, rng=rng(9))
    assert a == b
    assert a != c
    with pytest.raises(ValueError, match="rng"):
        wasserstein2(x, y, max_samples=300)


def test_w2_rejects_mismatched_dimensions():
    with pytest.raises(ValueError, match="same dimension"):
        wasserstein2(np.zeros((3, 2)), np.zeros((3, 3)))


# --- sliced W2 ------------------------------------------------------------------------------------


def test_sliced_w2_in_one_dimension_is_the_exact_w2():
    # In d = 1 every direction is +-1, so each slice is the 1-D W2: sorted differences.
    x = rng(10).standard_normal((200, 1))
    y = rng(11).exponential(size=(200, 1))
    expected = np.sqrt(np.mean((np.sort(x[:, 0]) - np.sort(y[:, 0])) ** 2))
    assert sliced_wasserstein2(x, y, n_projections=5, rng=rng(0)) == pytest.approx(expected)


def test_sliced_w2_handles_unequal_sizes():
    x = np.array([[0.0], [2.0]])
    y = np.array([[0.0], [1.0], [2.0], [3.0]])
    assert sliced_wasserstein2(x, y, n_projections=3, rng=rng(0)) == pytest.approx(np.sqrt(0.5))


def test_sliced_w2_of_a_translation_is_norm_over_sqrt_d():
    # y = x + m exactly, so every slice is a shift by theta.m and SW2^2 = mean_k (theta_k.m)^2,
    # whose expectation is ||m||^2 / d. In d = 3, (theta.m)^2 / ||m||^2 ~ Beta(1/2, 1) with sd
    # 0.298; over 4,000 directions the mean has sd 0.0047, so 5% of 1/3 (0.0167) is > 3 sd.
    d, m = 3, np.array([1.0, -2.0, 2.0])  # ||m||^2 = 9
    x = rng(12).standard_normal((50, d))
    sw2 = sliced_wasserstein2(x, x + m, n_projections=4000, rng=rng(13))
    assert sw2**2 == pytest.approx(9.0 / d, rel=0.05)


def test_sliced_w2_is_symmetric_and_reproducible():
    x = rng(14).standard_normal((150, 4))
    y = rng(15).standard_normal((120, 4)) * 2.0
    a = sliced_wasserstein2(x, y, rng=rng(16))
    assert sliced_wasserstein2(y, x, rng=rng(16)) == pytest.approx(a, rel=1e-12)
    assert sliced_wasserstein2(x, y, rng=rng(16)) == a


# --- MMD ------------------------------------------------------------------------------------------


def naive_mmd2(x: np.ndarray, y: np.ndarray, sigma: float) -> float:
    def k(a, b):
        return np.exp(-np.sum((a - b) ** 2) / (2 * sigma**2))

    kxx = sum(k(a, b) for a in x for b in x) / len(x) ** 2
    kyy = sum(k(a, b) for a in y for b in y) / len(y) ** 2
    kxy = sum(k(a, b) for a in x for b in y) / (len(x) * len(y))
    return kxx + kyy - 2 * kxy


def naive_median_distance(z: np.ndarray) -> float:
    return float(
        np.median(
            [np.linalg.norm(z[i] - z[j]) for i in range(len(z)) for j in range(i + 1, len(z))]
        )
    )


def test_mmd_matches_a_double_loop_with_a_given_bandwidth():
    x = rng(20).standard_normal((7, 2))
    y = rng(21).standard_normal((9, 2)) + 0.5
    assert mmd_rbf(x, y, bandwidth=0.8) == pytest.approx(naive_mmd2(x, y, 0.8), rel=1e-12)


def test_mmd_median_heuristic_uses_pooled_pairwise_distances_without_diagonal():
    x = rng(22).standard_normal((8, 3))
    y = rng(23).standard_normal((5, 3)) * 2
    sigma = naive_median_distance(np.concatenate([x, y]))
    assert mmd_rbf(x, y) == pytest.approx(naive_mmd2(x, y, sigma), rel=1e-12)


def test_mmd_is_zero_for_identical_sets_and_positive_for_shifted():
    x = rng(24).standard_normal((300, 2))
    assert mmd_rbf(x, x) == pytest.approx(0.0, abs=1e-12)
    assert mmd_rbf(x, x + 1.0) > 0.1


def test_mmd_subsampled_median_needs_an_rng_and_is_deterministic():
    x = rng(25).standard_normal((80, 2))
    y = rng(26).standard_normal((80, 2)) + 0.3
    with pytest.raises(ValueError, match="median_samples"):
        mmd_rbf(x, y, median_samples=50)
    a = mmd_rbf(x, y, median_samples=50, rng=rng(27))
    assert a == mmd_rbf(x, y, median_samples=50, rng=rng(27))


# --- energy distance ------------------------------------------------------------------------------


def test_energy_in_one_dimension_is_scipys_value_squared():
    # scipy.stats.energy_distance returns sqrt(2 E|X-Y| - E|X-X'| - E|Y-Y'|).
    x = rng(30).standard_normal(150)
    y = rng(31).standard_normal(110) * 1.3 + 0.4
    expected = scipy.stats.energy_distance(x, y) ** 2
    assert energy_distance(x[:, None], y[:, None]) == pytest.approx(expected, rel=1e-10)


def test_energy_in_two_dimensions_matches_the_naive_formula():
    x = rng(32).standard_normal((12, 2))
    y = rng(33).standard_normal((10, 2)) + [0.5, -0.2]

    def mean_dist(a, b):
        return np.mean([np.linalg.norm(p - q) for p in a for q in b])

    expected = 2 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y)
    assert energy_distance(x, y) == pytest.approx(expected, rel=1e-12)


def test_energy_is_zero_for_identical_sets_and_symmetric():
    x = rng(34).standard_normal((200, 3))
    y = rng(35).standard_normal((150, 3)) + 0.2
    assert energy_distance(x, x) == pytest.approx(0.0, abs=1e-12)
    assert energy_distance(x, y) == pytest.approx(energy_distance(y, x), rel=1e-12)


# --- NLL ------------------------------------------------------------------------------------------


def test_nll_of_gaussian_mle_matches_scipy():
    train = rng(40).multivariate_normal([1.0, -1.0, 0.0], np.diag([1.0, 2.0, 0.5]), size=500)
    test = rng(41).multivariate_normal([1.0, -1.0, 0.0], np.diag([1.0, 2.0, 0.5]), size=200)
    model = GaussianMLE().fit(train, rng=rng(42))
    expected = -scipy.stats.multivariate_normal(model.mean_, model.cov_).logpdf(test).mean()
    assert negative_log_likelihood(model, test) == pytest.approx(expected, rel=1e-10)


def test_nll_without_log_prob_is_a_type_error():
    with pytest.raises(TypeError, match="log_prob"):
        negative_log_likelihood(object(), np.zeros((3, 2)))
