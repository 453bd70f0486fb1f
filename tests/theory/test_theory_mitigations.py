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
