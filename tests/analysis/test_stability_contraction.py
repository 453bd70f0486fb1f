"""The stability theorem measured: contraction and plateau of the Gaussian MLE through the
project's own model and loop against the closed forms (the measured rho at this project's bound,
below the paper's looser constant), the estimator on processes of known rate, and the theorem's
constants for a well- and a mis-specified Gaussian."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autophagy.analysis.contraction import (
    estimate_contraction,
    gaussian_constants,
    gaussian_plateau,
)
from autophagy.data import load_dataset
from autophagy.loop import EvalSettings, LoopSettings, run_cell
from autophagy.metrics.fixed_point import gaussian_embedding
from autophagy.models import GaussianMLE
from autophagy.policies import make_policy
from autophagy.theory import (
    contraction_factor,
    paper_contraction_factor,
    stationary_gaussian_ratios,
)

N, GENERATIONS, SEEDS = 50, 25, 60


def _gaussian_cells(lam: float):
    """SEEDS cells of a 1-D Gaussian MLE, mixed(lam): (theta_distance, theta_step, whitened
    squared mean shift), each (seeds, generations + 1)."""
    dist, step, shift = [], [], []
    for seed in range(SEEDS):
        data = load_dataset("gaussian", n_train=N, n_test=10, seed=seed, mean=[1.0], cov=[[4.0]])
        result = run_cell(
            GaussianMLE(), data, make_policy("mixed", **{"lambda": lam}),
            LoopSettings(GENERATIONS, seed=seed),
            EvalSettings(metrics=("theta_distance", "theta_step", "mean_shift_sq"), n_samples=4),
        )  # fmt: skip
        wide = result.metrics.pivot(index="generation", columns="metric", values="value")
        dist.append(wide["theta_distance"].to_numpy())
        step.append(wide["theta_step"].to_numpy())
        shift.append(wide["mean_shift_sq"].to_numpy() / result.reference["cov"][0, 0])
    return np.array(dist), np.array(step), np.array(shift)


@pytest.mark.parametrize("lam", [0.5, 2.0])
def test_gaussian_mle_contraction_and_plateau_match_the_closed_forms_through_the_loop(lam):
    dist, step, shift = _gaussian_cells(lam)
    est = estimate_contraction(dist, step)
    k = math.floor(lam * N)
    rho = k / (N + k)
    assert rho == pytest.approx(lam / (1 + lam))
    assert abs(est.rho - rho) < 3 * est.rho_se, (est.rho, est.rho_se)
    # both constants are upper bounds, and a measurement below an upper bound refutes neither:
    # at eps = 0 (the model class contains the data's law) this project's bound is lam / (1 + lam)
    # and the paper's lam (1 + L eps / alpha) is lam. The measured rho lies below both (where the
    # paper's condition lam < 1 holds its constant is a contraction; at lam = 2 it gives none) and
    # at this project's bound, the tighter one, many standard errors below the paper's.
    ours = contraction_factor(lam, L=1.0, eps=0.0, alpha=1.0) if lam < 1 else lam / (1 + lam)
    paper = paper_contraction_factor(lam, 1.0, 0.0, 1.0) if lam < 1 else lam
    assert ours < paper
    assert est.rho_high < paper and est.rho_low < ours
    assert abs(est.rho - ours) < abs(est.rho - paper) and paper - est.rho > 3 * est.rho_se
    assert est.verdict == "stable"
    # the mean's stationary variance (PAPER section 5, exact recursion) ...
    _, b = stationary_gaussian_ratios(n=N, lam=lam)
    mean_part = estimate_contraction(np.sqrt(shift))
    assert abs(mean_part.plateau_sq - b) < 3 * mean_part.plateau_sq_se, (mean_part.plateau_sq, b)
    assert b == pytest.approx(lam / (N * (1 + 2 * lam)), rel=0.05)
    # ... and the whole parameter's, p = 2 parameters at lam / (n (1 + 2 lam)) each
    expected = gaussian_plateau(N, lam, 1)
    assert abs(est.plateau_sq - expected) < 3 * est.plateau_sq_se, (est.plateau_sq, expected)


def test_fully_synthetic_gaussian_is_observed_unstable():
    dist, step = [], []
    for seed in range(10):
        data = load_dataset("gaussian", n_train=N, n_test=10, seed=seed, mean=[0.0], cov=[[1.0]])
        result = run_cell(GaussianMLE(), data, make_policy("fully_synthetic"),
                          LoopSettings(GENERATIONS, seed=seed),
                          EvalSettings(metrics=("theta_distance", "theta_step"), n_samples=4))
        wide = result.metrics.pivot(index="generation", columns="metric", values="value")
        dist.append(wide["theta_distance"].to_numpy())
        step.append(wide["theta_step"].to_numpy())
    est = estimate_contraction(np.array(dist), np.array(step))
    assert est.rho > 0.95 and est.verdict == "unstable"


def test_estimator_recovers_a_known_vector_ar1_from_scalar_distances():
    rng = np.random.default_rng(3)
    seeds, gens, dim, rho, sigma = 400, 30, 3, 0.7, 0.2
    e = np.zeros((seeds, gens + 1, dim))
    for t in range(1, gens + 1):
        e[:, t] = rho * e[:, t - 1] + sigma * rng.standard_normal((seeds, dim))
    dist = np.linalg.norm(e, axis=2)
    step = np.linalg.norm(np.diff(e, axis=1, prepend=0.0), axis=2)
    est = estimate_contraction(dist, step)
    assert abs(est.rho - rho) < 3 * est.rho_se and est.rho_se < 0.02
    plateau = dim * sigma**2 / (1 - rho**2)
    assert abs(est.plateau_sq - plateau) < 3 * est.plateau_sq_se
    assert est.verdict == "stable" and est.ci_over == "seeds"
    # without steps: the slope of squared distances estimates rho^2 (a coarser estimate)
    coarse = estimate_contraction(dist)
    assert coarse.method == "squared-distance regression"
    assert abs(coarse.rho - rho) < 0.05
    # a random walk is not contracting
    walk = np.cumsum(sigma * rng.standard_normal((50, gens + 1, dim)), axis=1)
    walk[:, 0] = 0.0
    walk_est = estimate_contraction(
        np.linalg.norm(walk, axis=2), np.linalg.norm(np.diff(walk, axis=1, prepend=0.0), axis=2)
    )
    assert walk_est.verdict == "unstable" and abs(walk_est.rho - 1) < 0.05


def test_a_distance_that_never_moves_is_stable_with_rho_zero():
    zeros = np.zeros((4, 10))
    est = estimate_contraction(zeros, zeros)
    assert est.rho == 0.0 and est.verdict == "stable" and est.plateau == 0.0


def test_squared_distances_at_their_noise_floor_are_stable_with_undefined_rho():
    noise = np.random.default_rng(0).normal(0.0, 1e-3, size=(10, 12))
    noise[:, 0] = 0.0
    est = estimate_contraction(noise, noise, squared=True)
    assert est.noise_floor and math.isnan(est.rho) and est.verdict == "stable"


def test_gaussian_embedding_is_exactly_linear_in_pooling():
    """The pooled MLE of two samples is the count-weighted mean of their embeddings."""
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(40, 2)), rng.normal(2.0, 0.5, size=(60, 2))
    star = GaussianMLE().fit(rng.normal(size=(30, 2)))
    emb = [gaussian_embedding(*_moments(x), star.mean_, star.cov_) for x in (a, b)]
    pooled = gaussian_embedding(*_moments(np.vstack([a, b])), star.mean_, star.cov_)
    np.testing.assert_allclose(pooled, 0.4 * emb[0] + 0.6 * emb[1], atol=1e-12)


def _moments(x):
    model = GaussianMLE().fit(x)
    return model.mean_, model.cov_


def test_gaussian_constants_well_and_mis_specified():
    well = load_dataset("gaussian", n_train=500, n_test=10, seed=0, mean=[0.0, 0.0],
                        cov=[[1.0, 0.3], [0.3, 2.0]]).train
    mis = load_dataset("eight_gaussians", n_train=500, n_test=10, seed=0).train
    cw, cm = gaussian_constants(well), gaussian_constants(mis)
    assert cw.alpha == cm.alpha == 1.0
    assert cw.eps < 0.05 < 0.15 < cm.eps
    assert cw.max_stable_lambda > 0.85 > 0.7 > cm.max_stable_lambda
    # L against a finite-difference Jacobian of x -> grad_theta log p (whitened, Fisher dual norm)
    model = GaussianMLE().fit(mis)
    chol = np.linalg.cholesky(model.cov_)
    z = np.linalg.solve(chol, (mis - model.mean_).T).T
    far = z[np.argmax((z**2).sum(1))]

    def grad(v):  # (d/da, sqrt(2) d/dB) at theta* = (0, I): dual of ||a||^2 + ||B||^2 / 2
        return np.concatenate([v, np.sqrt(2.0) * 0.5 * (np.outer(v, v) - np.eye(2)).ravel()])

    h = 1e-6
    jac = np.stack([(grad(far + h * e) - grad(far - h * e)) / (2 * h) for e in np.eye(2)], 1)
    assert np.linalg.norm(jac, 2) == pytest.approx(cm.L, rel=1e-5)


def test_one_seed_of_a_drifting_squared_distance_is_not_called_noise():
    """With one seed there is no spread over seeds to call a distance noise: a squared distance
    that keeps growing (a random walk away from generation 0) must come out unstable."""
    rng = np.random.default_rng(3)
    walk = np.cumsum(rng.normal(size=(1, 13, 2)), axis=1)
    walk[:, 0] = 0.0
    distance = (walk**2).sum(-1)  # squared distance to generation 0
    step = np.zeros_like(distance)
    step[:, 1:] = (np.diff(walk, axis=1) ** 2).sum(-1)
    estimate = estimate_contraction(distance, step, squared=True)
    assert not estimate.noise_floor
    assert estimate.verdict != "stable"
