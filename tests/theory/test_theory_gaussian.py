"""Every Gaussian (and KDE) closed form of autophagy.theory against Monte Carlo.

Each check is a confidence interval: the mean over S seeds of a per-seed statistic must lie within
z standard errors (sample std / sqrt(S)) of the closed form. One point alone would take z = 2.576
(99%); the file makes about 40 such checks of up to 4 generations each, so each check uses a
Bonferroni z at level 0.1% over its K points (3.29 for one point, 3.66 for four), keeping the
file-wise false-alarm rate near 4%. Statistics are divided per seed by generation 0's
fit where the closed form is conditional on it (``E[Sigma_t | gen 0] = a_t Sigma_0``), which removes
the spread of the real sample from the standard error. Each family also shows that a deliberately
wrong formula is rejected by the same interval, so the tests have power.
"""

import math

import numpy as np
import pytest
from scipy.stats import norm

from autophagy.data import dataset_from_array, load_dataset
from autophagy.loop import EvalSettings, LoopSettings, run_cell, run_loop, training_rng
from autophagy.metrics import get_metric
from autophagy.models.families.gaussian import GaussianMLE
from autophagy.policies import parse_policy
from autophagy.theory import (
    c4,
    expected_gaussian_trajectory,
    expected_gaussian_trajectory_from_truth,
    expected_kde_variance,
    expected_std_ratio,
    kde_stationary_variance,
    logdet_drift,
    logdet_step_variance,
    mixed_mean_contraction,
    simulate_gaussian_loop,
    simulate_kde_loop,
    stationary_gaussian_ratios,
    stationary_mean_variance,
)

COV2 = np.array([[2.0, 0.6], [0.6, 0.5]])
COV3 = np.array([[1.5, 0.3, 0.0], [0.3, 1.0, -0.2], [0.0, -0.2, 0.5]])


def z_scores(samples, expected):
    """(mean - expected) / (std / sqrt(S)) per column; samples (S, K), expected (K,)."""
    samples = np.asarray(samples, dtype=np.float64)
    se = samples.std(axis=0, ddof=1) / math.sqrt(samples.shape[0])
    return (samples.mean(axis=0) - np.asarray(expected)) / se


LEVEL = 0.001  # per check, two-sided, shared by its K points (module docstring)


def critical_z(k):
    """Two-sided Bonferroni critical value over k points at :data:`LEVEL`."""
    return float(norm.ppf(1 - LEVEL / (2 * k)))


def assert_matches(samples, expected, what=""):
    z = z_scores(samples, expected)
    crit = critical_z(z.size)
    assert np.all(np.abs(z) < crit), f"{what}: |z| = {np.round(np.abs(z), 2)} >= {crit:.2f}"


def assert_rejected(samples, wrong, what=""):
    """The same interval must exclude a wrong formula at some generation."""
    z = z_scores(samples, wrong)
    print(f"{what}: max |z| of the wrong formula = {np.max(np.abs(z)):.1f}")
    assert np.max(np.abs(z)) > critical_z(z.size), f"{what}: the wrong formula was not rejected"


def ratio_to_gen0(run):
    """Per seed ``tr Sigma_t / tr Sigma_0`` and ``||mu_t - mu_0||^2 / tr Sigma_0``, (S, T+1)."""
    tr0 = run.cov_trace[:, :1]
    return run.cov_trace / tr0, run.mean_shift_sq / tr0


GENS = [1, 2, 5, 10]
SEEDS = 10000  # per simulation: the wrong formulas below are still rejected by |z| > 6


# ---- fully synthetic: collapse ---------------------------------------------------------------


@pytest.mark.parametrize("d, cov", [(1, [[1.0]]), (3, COV3)])
def test_fully_synthetic_mle_covariance_shrinks_and_mean_walks(d, cov):
    n, T = 20, 10
    run = simulate_gaussian_loop(n=n, generations=T, policy="fully_synthetic", seeds=SEEDS,
                                 mean=np.zeros(d), cov=cov, rng_seed=1)
    cov_ratio, shift = ratio_to_gen0(run)
    q = (n - 1) / n
    t = np.array(GENS)
    theory = expected_gaussian_trajectory(n=n, generations=T, policy="fully_synthetic", cov0=cov)
    np.testing.assert_allclose(theory.cov_ratio, q ** np.arange(T + 1))
    np.testing.assert_allclose(theory.shift_ratio, 1 - q ** np.arange(T + 1))
    assert_matches(cov_ratio[:, t], q**t, "E tr Sigma_t / tr Sigma_0")
    assert_matches(shift[:, t], 1 - q**t, "E ||mu_t - mu_0||^2 / tr Sigma_0")
    # off by one factor (n-1)/n, or the unbiased random walk t/n: both rejected
    assert_rejected(cov_ratio[:, t], q ** (t + 1), "covariance off by (n-1)/n")
    assert_rejected(shift[:, t], t / n, "mean walk without shrinkage")


def test_fully_synthetic_unbiased_covariance_is_a_martingale_and_mean_walks_linearly():
    n, T = 10, 10
    run = simulate_gaussian_loop(n=n, generations=T, policy="fully_synthetic", seeds=SEEDS,
                                 mean=[0.0, 1.0], cov=COV2, unbiased=True, rng_seed=2)
    cov_ratio, shift = ratio_to_gen0(run)
    theory = expected_gaussian_trajectory(n=n, generations=T, policy="fully_synthetic",
                                          cov0=COV2, unbiased=True)
    np.testing.assert_allclose(theory.cov_ratio, 1.0)
    np.testing.assert_allclose(theory.shift_ratio, np.arange(T + 1) / n)
    assert_matches(cov_ratio[:, GENS], theory.cov_ratio[GENS], "unbiased E Sigma_t")
    assert_matches(shift[:, GENS], theory.shift_ratio[GENS], "unbiased mean walk")
    assert_rejected(cov_ratio[:, GENS], ((n - 1) / n) ** np.array(GENS), "MLE formula")
    # yet the median variance falls like exp(-t/(n-1)) (PAPER.md section 5, d = 1 marginal)
    median = np.median(run.covs[:, -1, 1, 1] / run.covs[:, 0, 1, 1])
    assert median == pytest.approx(math.exp(-T / (n - 1)), rel=0.1)


@pytest.mark.parametrize("unbiased, d", [(False, 1), (True, 1), (False, 2), (True, 3)])
def test_logdet_is_a_random_walk_with_the_exact_drift_and_variance(unbiased, d):
    n, T = 12, 8
    cov = np.eye(d) + 0.2
    run = simulate_gaussian_loop(n=n, generations=T, policy="fully_synthetic", seeds=SEEDS,
                                 mean=np.zeros(d), cov=cov, unbiased=unbiased, rng_seed=3 + d)
    steps = run.logdet[:, 1:] - run.logdet[:, :1]  # (S, T): sum of t i.i.d. increments
    t = np.arange(1, T + 1)
    drift, var = logdet_drift(n, d, unbiased=unbiased), logdet_step_variance(n, d)
    assert drift < 0
    assert_matches(steps[:, [0, 3, 7]], drift * t[[0, 3, 7]], "log det drift")
    assert_rejected(steps[:, [0, 3, 7]], 0.9 * drift * t[[0, 3, 7]], "drift off by 10%")
    # variance of the t-step sum: t * step variance, within 4 SE of the sample variance
    x = steps[:, -1] - steps[:, -1].mean()
    se = math.sqrt(np.mean(x**4) - np.mean(x**2) ** 2) / math.sqrt(len(x))
    assert abs(np.mean(x**2) - T * var) < 4 * se
    if d == 1 and unbiased:
        assert drift == pytest.approx(-1 / (n - 1), rel=0.1)


def test_expected_std_ratio_and_c4():
    n, T = 10, 8
    assert c4(2) == pytest.approx(math.sqrt(2 / math.pi))
    assert c4(10) == pytest.approx(0.9727, abs=1e-4)  # the control-chart table value
    run = simulate_gaussian_loop(n=n, generations=T, policy="fully_synthetic", seeds=SEEDS,
                                 mean=[0.0], cov=[[4.0]], unbiased=True, rng_seed=7)
    sd_ratio = np.sqrt(run.covs[:, :, 0, 0] / run.covs[:, :1, 0, 0])
    theory = expected_std_ratio(n, T, unbiased=True)
    assert theory[1] == pytest.approx(c4(n))
    assert_matches(sd_ratio[:, [1, 4, 8]], theory[[1, 4, 8]], "E std_t / std_0")
    assert_rejected(sd_ratio[:, [1, 4, 8]], np.ones(3), "constant std")


def test_temperature_scales_the_expected_covariance_geometrically():
    n, T, tau = 10, 6, 0.8
    run = simulate_gaussian_loop(n=n, generations=T, policy="fully_synthetic", seeds=SEEDS,
                                 mean=[0.0, 0.0], cov=COV2, unbiased=True, temperature=tau,
                                 rng_seed=8)
    cov_ratio, shift = ratio_to_gen0(run)
    theory = expected_gaussian_trajectory(n=n, generations=T, policy="fully_synthetic",
                                          cov0=COV2, unbiased=True, temperature=tau)
    np.testing.assert_allclose(theory.cov_ratio, tau ** np.arange(T + 1))  # b^t of PAPER.md
    t = [1, 3, 6]
    assert_matches(cov_ratio[:, t], theory.cov_ratio[t], "tau^t")
    assert_matches(shift[:, t], theory.shift_ratio[t], "walk at temperature")
    assert logdet_drift(n, 2, unbiased=True, temperature=tau) < logdet_drift(n, 2, unbiased=True)


# ---- mixed: the anchored loop ----------------------------------------------------------------


@pytest.mark.parametrize("lam, unbiased", [(0.5, False), (1.0, False), (0.33, True), (2.0, False)])
def test_mixed_trajectory_matches_the_recursion(lam, unbiased):
    n, T = 20, 10
    run = simulate_gaussian_loop(n=n, generations=T, policy=f"mixed:{lam}", seeds=SEEDS,
                                 mean=[1.0, -1.0], cov=COV2, unbiased=unbiased, rng_seed=11)
    cov_ratio, shift = ratio_to_gen0(run)
    theory = expected_gaussian_trajectory(n=n, generations=T, policy="mixed", lam=lam,
                                          cov0=COV2, unbiased=unbiased)
    assert_matches(cov_ratio[:, GENS], theory.cov_ratio[GENS], "mixed E Sigma_t")
    assert_matches(shift[:, GENS], theory.shift_ratio[GENS], "mixed E e e^T")
    # a plausible slip, forgetting the between-sample scatter (n m / N)(ybar - mu_0)^2 of the
    # pooled fit, is rejected: the interval resolves O(1/N) terms
    m = math.floor(lam * n)
    N, D = n + m, n + m - (1 if unbiased else 0)
    slip = np.ones(T + 1)
    for k in range(1, T + 1):
        slip[k] = ((n - 1 if unbiased else n) + (m - 1) * slip[k - 1]) / D
    assert_rejected(cov_ratio[:, GENS], slip[GENS], "no between-sample scatter")
    assert N > n


def test_mixed_recursion_by_hand_for_one_step():
    n, lam = 10, 0.5
    m, N = 5, 15
    theory = expected_gaussian_trajectory(n=n, generations=2, policy="mixed", lam=lam, cov0=1.0)
    a1 = (n + (m - 1 + n / N)) / N
    b1 = (m / N) ** 2 / m
    assert theory.cov_ratio[1] == pytest.approx(a1)
    assert theory.shift_ratio[1] == pytest.approx(b1)
    a2 = (n + (m - 1 + n / N) * a1 + n * m / N * b1) / N
    b2 = (m / N) ** 2 * (b1 + a1 / m)
    assert theory.cov_ratio[2] == pytest.approx(a2)
    assert theory.shift_ratio[2] == pytest.approx(b2)
    # lambda * n < 1: no synthetic sample, the refit is the real fit
    still = expected_gaussian_trajectory(n=n, generations=3, policy="mixed:0.05", cov0=1.0)
    np.testing.assert_array_equal(still.cov_ratio, 1.0)
    np.testing.assert_array_equal(still.shift_ratio, 0.0)


@pytest.mark.parametrize("lam", [0.5, 1.0, 3.0])
def test_mixed_stationary_law(lam):
    n, T = 20, 40
    a, b = stationary_gaussian_ratios(n=n, lam=lam)
    traj = expected_gaussian_trajectory(n=n, generations=200, policy="mixed", lam=lam, cov0=1.0)
    assert traj.cov_ratio[-1] == pytest.approx(a, rel=1e-9)
    assert traj.shift_ratio[-1] == pytest.approx(b, rel=1e-9)
    m = math.floor(lam * n)
    assert a == pytest.approx(1 / (1 + m / (n * (n + 2 * m))))
    # the O(1/n) approximation of PAPER.md section 5: lam sigma^2 / (n (1 + 2 lam))
    assert stationary_mean_variance(n, lam, 1.0) == pytest.approx(b, rel=2 / n)
    run = simulate_gaussian_loop(n=n, generations=T, policy="mixed", lam=lam, seeds=SEEDS,
                                 mean=[0.0], cov=[[1.0]], rng_seed=12)
    cov_ratio, shift = ratio_to_gen0(run)
    assert_matches(np.c_[cov_ratio[:, -1], shift[:, -1]], [a, b], "stationary (a, b)")
    # the variance of the mean around the real fit is bounded: a random walk would give T/n
    assert_rejected(shift[:, -1:], [T / n], "random walk")


def test_mixed_mean_contracts_by_lambda_over_one_plus_lambda_in_expectation():
    assert mixed_mean_contraction(0.5) == pytest.approx(1 / 3)
    assert mixed_mean_contraction(0.0) == 0.0
    with pytest.raises(ValueError, match="lam"):
        mixed_mean_contraction(-1.0)


# ---- accumulate and fresh real data, against the truth --------------------------------------


def test_accumulate_error_stays_bounded_and_fully_synthetic_grows():
    n, T = 50, 10
    acc = simulate_gaussian_loop(n=n, generations=T, policy="accumulate", seeds=SEEDS,
                                 mean=[0.0], cov=[[1.0]], rng_seed=21)
    full = simulate_gaussian_loop(n=n, generations=T, policy="fully_synthetic", seeds=SEEDS,
                                  mean=[0.0], cov=[[1.0]], rng_seed=22)
    t = [0, 1, 5, 10]
    for run, name in ((acc, "accumulate"), (full, "fully_synthetic")):
        theory = expected_gaussian_trajectory_from_truth(n=n, generations=T, policy=name, cov=1.0)
        err = n * run.mean_sq_error([0.0])
        assert_matches(err[:, t], n * theory.shift_ratio[t], f"{name} n E(mu_T - mu)^2")
        assert_matches(run.cov_trace[:, t], theory.cov_ratio[t], f"{name} E Sigma_t")
    bound = sum(1 / k**2 for k in range(1, T + 2))
    acc_theory = expected_gaussian_trajectory_from_truth(n=n, generations=T, policy="accumulate",
                                                         cov=1.0)
    assert n * acc_theory.shift_ratio[-1] < bound < math.pi**2 / 6
    assert n * acc_theory.shift_ratio[-1] == pytest.approx(1.54, abs=0.01)
    full_theory = expected_gaussian_trajectory_from_truth(n=n, generations=T,
                                                          policy="fully_synthetic", cov=1.0)
    assert n * full_theory.shift_ratio[-1] == pytest.approx(T + 1, rel=0.1)


@pytest.mark.parametrize("policy", ["accumulate:0.5", "mixed:0.5"])
def test_gen0_closed_forms_for_accumulate_and_mixed_from_gen0(policy):
    n, T = 20, 10
    run = simulate_gaussian_loop(n=n, generations=T, policy=policy, seeds=SEEDS,
                                 mean=[0.0, 0.0, 0.0], cov=COV3, rng_seed=23)
    cov_ratio, shift = ratio_to_gen0(run)
    theory = expected_gaussian_trajectory(n=n, generations=T, policy=policy, cov0=COV3)
    assert_matches(cov_ratio[:, GENS], theory.cov_ratio[GENS], f"{policy} E Sigma_t")
    assert_matches(shift[:, GENS], theory.shift_ratio[GENS], f"{policy} E e e^T")


@pytest.mark.parametrize("fraction, unbiased", [(0.3, False), (0.5, True)])
def test_fresh_real_converges_to_the_truth(fraction, unbiased):
    n, T = 20, 10
    run = simulate_gaussian_loop(n=n, generations=T, policy="fresh_real", fraction=fraction,
                                 seeds=SEEDS, mean=[1.0, 2.0], cov=COV2, unbiased=unbiased,
                                 rng_seed=24)
    theory = expected_gaussian_trajectory_from_truth(n=n, generations=T, policy="fresh_real",
                                                     fraction=fraction, cov=COV2,
                                                     unbiased=unbiased)
    t = [0, 1, 5, 10]
    tr = np.trace(COV2)
    assert_matches(run.cov_trace[:, t] / tr, theory.cov_ratio[t], "fresh_real E Sigma_t")
    assert_matches(run.mean_sq_error([1.0, 2.0])[:, t] / tr, theory.shift_ratio[t],
                   "fresh_real E ||mu_t - mu||^2")
    np.testing.assert_allclose(theory.mean_shift_sq, theory.shift_ratio * tr)
    with pytest.raises(ValueError, match="fresh_real"):
        expected_gaussian_trajectory(n=n, generations=T, policy="fresh_real", cov0=COV2)


# ---- KDE ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs", [{"h": 0.3}, {"bandwidth_factor": 0.4}, {"bandwidth_factor": 0.4, "spread": "mle"}]
)
def test_kde_variance_recursion(kwargs):
    n, T = 20, 8
    v = simulate_kde_loop(n=n, generations=T, seeds=10000, mean=[0.0, 0.0], cov=COV2,
                          rng_seed=31, **kwargs)
    # E[v_t | v_0] is affine in v_0: A_t v_0 + B_t
    B = expected_kde_variance(n=n, generations=T, var0=0.0, **kwargs)
    A = expected_kde_variance(n=n, generations=T, var0=1.0, **kwargs) - B
    t = [1, 4, 8]
    resid = v[:, t] - (A[t] * v[:, :1] + B[t])
    assert_matches(resid, np.zeros(3), f"KDE {kwargs}")
    wrong = v[:, t] - (A[t] * v[:, :1] + B[t]) * (n - 1) / n
    assert_rejected(wrong, np.zeros(3), "KDE off by (n-1)/n")


def test_kde_fixed_bandwidth_settles_at_n_minus_one_h_squared():
    v = expected_kde_variance(n=10, generations=400, var0=5.0, h=0.5)
    assert v[-1] == pytest.approx(kde_stationary_variance(10, 0.5), rel=1e-6)
    assert kde_stationary_variance(10, 0.5) == pytest.approx(9 * 0.25)
    grow = expected_kde_variance(n=10, generations=5, var0=1.0, bandwidth_factor=0.5)
    assert np.all(np.diff(grow) > 0)
    with pytest.raises(ValueError, match="exactly one"):
        expected_kde_variance(n=10, generations=5, var0=1.0)
    with pytest.raises(ValueError, match="spread"):
        expected_kde_variance(n=10, generations=5, var0=1.0, h=1.0, spread="x")


# ---- the vectorised simulation is the loop --------------------------------------------------


def _points(seed, n=60, d=2):
    rng = np.random.default_rng(100 + seed)
    return rng.multivariate_normal([1.0, -2.0], COV2, size=n)[:, :d]


@pytest.mark.parametrize(
    "policy, temperature",
    [("mixed:0.5", 1.0), ("fully_synthetic", 1.0), ("accumulate:0.5", 0.9), ("mixed:2", 1.0)],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_simulation_replays_run_cell_draw_for_draw(policy, temperature, seed):
    dataset = dataset_from_array(_points(seed), seed=seed)
    T = 6
    metrics = [get_metric("mean_shift_sq"), get_metric("cov_trace_ratio")]
    cell = run_cell(GaussianMLE(), dataset, parse_policy(policy),
                    LoopSettings(T, seed=seed, temperature=temperature),
                    EvalSettings(metrics=tuple(metrics), n_samples=10))
    assert cell.status == "done", cell.message
    n = len(dataset.train)
    sim = simulate_gaussian_loop(n=n, generations=T, policy=policy, seeds=1, mean=[0, 0],
                                 cov=np.eye(2), temperature=temperature, real=dataset.train,
                                 rng_seed=training_rng(seed))
    np.testing.assert_allclose(sim.means[0, -1], cell.model.mean_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sim.covs[0, -1], cell.model.cov_, rtol=1e-9, atol=1e-12)
    table = cell.metrics.pivot(index="generation", columns="metric", values="value")
    np.testing.assert_allclose(table["mean_shift_sq"], sim.mean_shift_sq[0], rtol=1e-8,
                               atol=1e-14)
    np.testing.assert_allclose(table["cov_trace_ratio"], sim.cov_trace[0] / sim.cov_trace[0, 0],
                               rtol=1e-9)


def test_simulation_replays_run_loop_unbiased():
    dataset = dataset_from_array(_points(5), seed=5)
    df = run_loop(GaussianMLE(unbiased=True), dataset, "fully_synthetic", 4, seed=5,
                  metrics=["cov_trace_ratio"], n_samples=10)
    sim = simulate_gaussian_loop(n=len(dataset.train), generations=4, policy="fully_synthetic",
                                 seeds=1, mean=[0, 0], cov=np.eye(2), unbiased=True,
                                 real=dataset.train, rng_seed=training_rng(5))
    np.testing.assert_allclose(df["value"], sim.cov_trace[0] / sim.cov_trace[0, 0], rtol=1e-9)


def test_simulation_batches_are_independent_seeds_of_the_same_law():
    """Seeds of one batch are exchangeable: two halves agree with each other and with theory."""
    run = simulate_gaussian_loop(n=10, generations=3, policy="fully_synthetic", seeds=4000,
                                 mean=[0.0], cov=[[1.0]], rng_seed=41)
    assert not np.allclose(run.means[0], run.means[1])
    np.testing.assert_array_equal(run.real_mean, run.means[:, 0])
    d = run.distance_to_real()
    assert d.shape == (4000, 4) and np.all(d[:, 0] == 0)


def test_input_validation():
    kw = dict(generations=3, policy="mixed", seeds=10, mean=[0.0], cov=[[1.0]])
    with pytest.raises(ValueError, match="n must"):
        simulate_gaussian_loop(n=1, **kw)
    with pytest.raises(ValueError, match="real must"):
        simulate_gaussian_loop(n=5, real=np.zeros((4, 1)), **kw)
    with pytest.raises(ValueError, match="cov must"):
        simulate_gaussian_loop(n=5, **{**kw, "cov": [[-1.0]]})
    with pytest.raises(ValueError, match="temperature"):
        expected_gaussian_trajectory(n=5, generations=2, policy="mixed", cov0=1.0, temperature=0)
    with pytest.raises(ValueError, match="already fixes"):
        expected_gaussian_trajectory(n=5, generations=2, policy="mixed:0.5", lam=1.0, cov0=1.0)
    with pytest.raises(ValueError, match="n must exceed d"):
        logdet_drift(3, 3)


def _numpy_accumulate_mean_error(n, lam, T, seeds, rng):
    """n E[(mu_T - mu)^2] / sigma^2 by the definition, in plain numpy: 1-D N(0, 1) real data,
    each generation adds floor(lam n) draws from the previous MLE fit and refits on everything."""
    k = int(np.floor(lam * n))
    errors = np.empty(seeds)
    for s in range(seeds):
        pool = rng.standard_normal(n)
        for _ in range(T):
            mean, sd = pool.mean(), pool.std()
            pool = np.concatenate([pool, rng.normal(mean, sd, size=k)])
        errors[s] = n * pool.mean() ** 2
    return errors


@pytest.mark.parametrize("lam", [0.05, 4.0])
def test_accumulate_honours_lambda_in_the_loop(lam):
    """Through the project's model and loop, accumulate's n E[(mu_T - mu)^2] / sigma^2 matches a
    numpy simulation of the definition and the closed form, for two lambdas (it used to run
    lambda = 1 whatever the config said)."""
    n, T, seeds = 40, 4, 1600
    loop_errors = np.empty(seeds)
    for s in range(seeds):
        dataset = load_dataset("gaussian", n_train=n, n_test=2, seed=s, mean=[0.0], cov=[[1.0]])
        cell = run_cell(GaussianMLE(), dataset, parse_policy(f"accumulate:{lam}"),
                        LoopSettings(T, seed=s), EvalSettings(metrics=("mean_shift_sq",),
                                                              n_samples=2))
        assert cell.status == "done", cell.message
        loop_errors[s] = n * float(cell.model.mean_[0]) ** 2
    numpy_errors = _numpy_accumulate_mean_error(n, lam, T, seeds, np.random.default_rng(7))
    se = np.sqrt(loop_errors.var(ddof=1) / seeds + numpy_errors.var(ddof=1) / seeds)
    assert abs(loop_errors.mean() - numpy_errors.mean()) < 3 * se
    def theory(lam):
        traj = expected_gaussian_trajectory_from_truth(n=n, generations=T, policy="accumulate",
                                                       lam=lam, cov=1.0)
        return n * traj.mean_shift_sq[-1]

    loop_se = loop_errors.std(ddof=1) / np.sqrt(seeds)
    assert abs(loop_errors.mean() - theory(lam)) < 3 * loop_se
    assert abs(loop_errors.mean() - theory(1.0)) > 3 * loop_se  # not the old lambda = 1
