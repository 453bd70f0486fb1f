"""The mitigated loops' Gaussian closed forms against simulation through the project's own loop.

Each check runs many seeds of :func:`autophagy.loop.run_cell` with the project's
:class:`GaussianMLE` and policy, and asks the per-generation means to lie within a Bonferroni
z of the closed form (the intervals of ``test_theory_gaussian.py``); a deliberately wrong formula
must be rejected by the same interval, so the checks have power.
"""

import math

import numpy as np
import pytest
from scipy.stats import norm

from autophagy.data import load_dataset
from autophagy.loop import EvalSettings, LoopSettings, run_cell
from autophagy.models.families.gaussian import GaussianMLE
from autophagy.policies import make_policy
from autophagy.theory import expected_gaussian_trajectory
from autophagy.theory.mitigations import (
    accumulate_subsample_trajectory,
    self_correcting_moments,
)

LEVEL = 0.001


def z_scores(samples, expected):
    samples = np.asarray(samples, dtype=np.float64)
    se = samples.std(axis=0, ddof=1) / math.sqrt(samples.shape[0])
    return (samples.mean(axis=0) - np.asarray(expected)) / se


def critical_z(k):
    return float(norm.ppf(1 - LEVEL / (2 * k)))


def assert_matches(samples, expected, what=""):
    z = z_scores(samples, expected)
    assert np.all(np.abs(z) < critical_z(z.size)), f"{what}: |z| = {np.round(np.abs(z), 2)}"


def assert_rejected(samples, wrong, what=""):
    z = z_scores(samples, wrong)
    assert np.max(np.abs(z)) > critical_z(z.size), f"{what}: the wrong formula was not rejected"


def loop_moments(policy, *, n, T, seeds, dim=1):
    """Per seed and generation: tr Sigma_t / tr Sigma_0, |mu_t - mu_0|^2 / tr Sigma_0 and the
    1-D standard deviation ratio, from the loop's own metrics and models."""
    cov = np.diag(np.linspace(1.0, 2.0, dim))
    ratio, shift = np.empty((seeds, T + 1)), np.empty((seeds, T + 1))
    for s in range(seeds):
        data = load_dataset("gaussian", n_train=n, n_test=2, seed=s, mean=[0.0] * dim, cov=cov)
        cell = run_cell(GaussianMLE(), data, make_policy(policy[0], **policy[1]),
                        LoopSettings(T, seed=s),
                        EvalSettings(metrics=("cov_trace_ratio", "mean_shift_sq"), n_samples=2))
        assert cell.status == "done", cell.message
        table = cell.metrics.pivot(index="generation", columns="metric", values="value")
        ratio[s] = table["cov_trace_ratio"].to_numpy()
        shift[s] = table["mean_shift_sq"].to_numpy() / np.trace(cell.reference["cov"])
    return ratio, shift


@pytest.mark.parametrize("lam, dim", [(1.0, 1), (0.5, 2)])
def test_accumulate_subsample_moments_match_the_closed_form_through_the_loop(lam, dim):
    n, T, seeds = 20, 4, 1000  # the wrong formulas sit at |z| ~ 15
    ratio, shift = loop_moments(("accumulate_subsample", {"lambda": lam}), n=n, T=T,
                                seeds=seeds, dim=dim)
    traj = accumulate_subsample_trajectory(n=n, generations=T, cov0=1.0, lam=lam)
    gens = [1, 2, 4]
    assert_matches(ratio[:, gens], traj.cov_trace_ratio[gens], "covariance")
    assert_matches(shift[:, gens], traj.shift_ratio[gens], "mean drift")
    # training on the whole pool (plain accumulate) is a different law: rejected
    whole = expected_gaussian_trajectory(n=n, generations=T, policy="accumulate", lam=lam,
                                         cov0=1.0)
    assert_rejected(shift[:, gens], whole.shift_ratio[gens], "accumulate's formula")
    # and so is the closed form without the subsample's own spread around the pool mean
    P = n + np.floor(lam * n) * np.arange(T + 1)
    spread = (P - n) / (n * P * (P - 1)) * traj.cov_trace_ratio * (P - 1) * n / (n - 1)
    assert_rejected(shift[:, gens], (traj.shift_ratio - spread)[gens], "no subsample spread")


def test_self_correction_moments_match_the_closed_form_through_the_loop():
    """Fully synthetic 1-D Gaussian MLE with the ``moments`` correction at gamma = 1: the
    expected variance, standard deviation and mean drift of the loop against
    :func:`self_correcting_moments`; the uncorrected loop's law and a law that forgets the
    Jensen gap of the corrected standard deviation (E s = sqrt(E s^2)) are rejected."""
    n, T, seeds, gamma = 10, 6, 1000, 1.0  # small n: a Jensen gap the interval resolves
    ratio, shift = loop_moments(("self_correcting", {"correction": "moments", "gamma": gamma}),
                                n=n, T=T, seeds=seeds)
    m = self_correcting_moments(n=n, generations=T, gamma=gamma)
    gens = [1, 3, 6]
    assert_matches(ratio[:, gens], m["var"][gens], "variance")
    assert_matches(np.sqrt(ratio[:, gens]), m["std"][gens], "standard deviation")
    assert_matches(shift[:, gens], m["mean_shift_sq"][gens], "mean drift")
    plain = self_correcting_moments(n=n, generations=T, gamma=0.0)
    assert_rejected(ratio[:, gens], plain["var"][gens], "no correction")
    assert_rejected(shift[:, gens], plain["mean_shift_sq"][gens], "no correction")
    w, var, g = gamma / (1 + gamma), np.ones(T + 1), math.sqrt((n - 1) / n)
    for t in range(1, T + 1):  # as if E s = sigma sqrt((n-1)/n): no Jensen gap
        var[t] = (1 - w) ** 2 * g**2 * var[t - 1] + 2 * w * (1 - w) * g * math.sqrt(var[t - 1]) \
            + w**2
    assert_rejected(ratio[:, gens], var[gens], "no Jensen gap")


def test_self_correction_overlay_is_the_closed_form():
    policy = make_policy("self_correcting", correction="moments", gamma=3.0)
    traj = policy.gaussian_trajectory(n=10, generations=3, cov0=[[2.0]])
    m = self_correcting_moments(n=10, generations=3, gamma=3.0, sigma0=math.sqrt(2.0))
    np.testing.assert_allclose(traj.cov_trace_ratio, m["var"] / 2.0)
    np.testing.assert_allclose(traj.mean_shift_sq, m["mean_shift_sq"])
    assert policy.gaussian_trajectory(n=10, generations=3, cov0=np.eye(2)) is None
    assert make_policy("self_correcting").gaussian_trajectory(n=10, generations=3,
                                                              cov0=[[1.0]]) is None
