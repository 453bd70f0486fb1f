"""The verified loop: the oracle's error rates, draws until enough pass, a clear stop when too few
do, and the acceptance rate recorded every generation."""

import math

import numpy as np
import pytest

from autophagy.data import load_dataset
from autophagy.errors import InputError
from autophagy.loop import EvalSettings, LoopSettings, run_cell
from autophagy.models.registry import build_model
from autophagy.policies import make_policy, policy_grid
from autophagy.signatures import ArgumentError
from autophagy.testing import check_policy


def reject_all(x, real):
    return np.zeros(len(x), dtype=bool)


def wrong_shape(x, real):
    return np.ones((len(x), 2), dtype=bool)


def keep_right_half(x, real):
    return x[:, 0] > 0


@pytest.fixture(scope="module")
def long_tail():
    return load_dataset("long_tail", n_train=200, n_test=400, seed=0)


@pytest.mark.parametrize("fa, fr", [(0.0, 0.0), (0.2, 0.3), (0.05, 0.6)])
def test_oracle_acceptance_rates_are_its_error_rates_within_binomial_error(long_tail, fa, fr):
    """Right samples (on a mode) pass at 1 - false_reject, wrong ones (the origin, 13 std from
    every mode) at false_accept: each share within 4.5 binomial standard errors."""
    policy = make_policy("verified", verifier="oracle", false_accept=fa, false_reject=fr)
    oracle = policy.bind(long_tail)._verifier
    rng = np.random.default_rng(1)
    n = 20000
    centres = long_tail.params["centres"]
    right = centres[rng.integers(len(centres), size=n)] + 0.04 * rng.standard_normal((n, 2))
    wrong = 0.2 * rng.standard_normal((n, 2))
    for x, p in ((right, 1 - fr), (wrong, fa)):
        rate = oracle(x, rng).mean()
        assert abs(rate - p) <= 4.5 * math.sqrt(max(p * (1 - p), 1e-12) / n) + 1e-12


def test_oracle_knows_a_gaussian_by_its_ellipsoid():
    data = load_dataset("gaussian", n_train=50, n_test=10, seed=0, mean=[0.0, 0.0],
                        cov=[[1.0, 0.0], [0.0, 4.0]])
    oracle = make_policy("verified", verifier="oracle").bind(data)._verifier
    x = np.array([[0.0, 5.0], [0.0, 7.0], [3.0, 0.0], [3.1, 0.0]])  # chi2_2(0.99) = 9.21
    assert oracle(x, np.random.default_rng(0)).tolist() == [True, False, True, False]


def test_oracle_refuses_a_dataset_without_a_truth():
    with pytest.raises(ArgumentError, match="oracle.*knows its truth.*'moons'"):
        make_policy("verified", verifier="oracle").bind(load_dataset("moons", n_train=20,
                                                                     n_test=10))


def test_the_loop_draws_until_enough_pass_and_records_the_acceptance_rate(long_tail):
    """A verifier passing half the plane: the training set holds n passed samples only, and the
    recorded rate is the share of the draws that passed: at generation 1, near the truth's mass
    right of x = 0 (modes 0, 1, 2, 8, 9: 0.80)."""
    policy = make_policy("verified", verifier=f"{__name__}:keep_right_half")
    model = build_model("gmm", {"n_components": 10})
    cell = run_cell(model, long_tail, policy, LoopSettings(3, seed=0),
                    EvalSettings(metrics=("w2", "acceptance_rate"), n_samples=200))
    assert cell.status == "done", cell.message
    rates = cell.metrics[cell.metrics.metric == "acceptance_rate"]
    assert rates.generation.tolist() == [1, 2, 3]
    first = rates.value.iloc[0]
    w = long_tail.params["weights"]
    assert abs(first - w[[0, 1, 2, 8, 9]].sum()) < 0.1  # the fit's error and 1/sqrt(250)
    # fully synthetic on the right half only: every later fit sits in the right half
    assert np.all(model.sample(500, rng=np.random.default_rng(0))[:, 0].mean() > 0)


def test_a_verifier_that_passes_nothing_stops_the_cell_in_one_line(long_tail):
    policy = make_policy("verified", verifier=f"{__name__}:reject_all", max_draws=3)
    cell = run_cell(build_model("gmm", {"n_components": 4}), long_tail, policy,
                    LoopSettings(2, seed=0), EvalSettings(metrics=("w2",), n_samples=50))
    assert cell.status == "failed"
    assert "\n" not in cell.message
    assert "reject_all" in cell.message and "acceptance rate 0" in cell.message
    assert "passed 0 of 600" in cell.message  # the cap: 3 x 200 draws, then it stops


def test_a_user_verifier_of_the_wrong_shape_fails_at_bind(long_tail):
    with pytest.raises(ArgumentError, match="wrong_shape.*one boolean per sample"):
        make_policy("verified", verifier=f"{__name__}:wrong_shape").bind(long_tail)


@pytest.mark.parametrize("params, field", [
    ({"verifier": "psychic"}, "verifier"), ({"false_accept": 1.5}, "false_accept"),
    ({"lambda": 0}, "lambda"), ({"max_draws": 0.5}, "max_draws")])
def test_bad_parameters_name_their_field(params, field):
    with pytest.raises(InputError, match=field):
        make_policy("verified", **params)


def test_false_accept_sweeps_like_any_parameter():
    cells = policy_grid("verified", {"false_accept": [0, 0.1, 0.3]})
    assert [p.false_accept for p in cells] == [0, 0.1, 0.3]
    assert [p.cell_tag for p in cells][1] == "verified-fa0.1-fr0-thr0.5-q0.05-laminf"


@pytest.mark.parametrize("verifier", ["discriminator", "likelihood"])
def test_discriminator_and_likelihood_verifiers_run_in_the_loop(long_tail, verifier):
    cell = run_cell(build_model("gmm", {"n_components": 10}), long_tail,
                    make_policy("verified", verifier=verifier), LoopSettings(2, seed=0),
                    EvalSettings(metrics=("acceptance_rate",), n_samples=50))
    assert cell.status == "done", cell.message
    rates = cell.metrics.value.to_numpy()
    assert len(rates) == 2 and np.all((rates > 0.05) & (rates <= 1))


@pytest.mark.parametrize("verifier, dataset", [("likelihood", "moons"), ("oracle", "long_tail"),
                                               ("discriminator", "moons")])
def test_each_verifier_passes_the_policy_contract_through_a_checkpoint(verifier, dataset):
    """Resumed from its state (generation 0's model for the likelihood), each verifier builds
    the same training sets bit for bit."""
    assert "state round-trip" in check_policy(make_policy("verified", verifier=verifier),
                                              dataset)
