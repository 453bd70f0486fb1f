"""Tail and diversity metrics against hand-computed cases and the long-tail toy's known truth."""

import math

import numpy as np
import pytest

from autophagy.data import load_dataset
from autophagy.data.points import long_tail_weights
from autophagy.errors import InputError
from autophagy.metrics import EvalContext, evaluate
from autophagy.metrics.tails import RARE_WEIGHT, mode_counts, vendi_score
from autophagy.models.registry import build_model


def test_vendi_identical_samples_give_one_and_orthogonal_ones_give_n():
    assert vendi_score(kernel=np.ones((7, 7))) == pytest.approx(1.0)
    assert vendi_score(np.tile([[0.3, -1.0]], (50, 1)), bandwidth=1.0) == pytest.approx(1.0)
    for n in (1, 4, 25):
        assert vendi_score(kernel=np.eye(n)) == pytest.approx(n)
    # n points far apart at a small bandwidth: the RBF kernel is the identity to 1e-300
    far = 10.0 * np.arange(12)[:, None] * np.ones((1, 2))
    assert vendi_score(far, bandwidth=0.1) == pytest.approx(12.0)


def test_vendi_two_by_two_by_hand():
    """K = [[1, s], [s, 1]]: eigenvalues of K/2 are (1 +- s)/2, VS = exp of their entropy."""
    s = 0.5
    lam = np.array([0.75, 0.25])
    expected = math.exp(-(lam * np.log(lam)).sum())  # 1.7548
    assert vendi_score(kernel=np.array([[1, s], [s, 1]])) == pytest.approx(expected)
    assert expected == pytest.approx(1.7548, abs=1e-4)
    # the same through the RBF kernel: two points at distance d, bandwidth h, s = exp(-d^2/2h^2)
    d, h = 1.0, 1.0 / math.sqrt(2 * math.log(2))  # s = 1/2
    assert vendi_score(np.array([[0.0, 0.0], [d, 0.0]]), bandwidth=h) == pytest.approx(expected)


def test_vendi_refuses_a_kernel_without_unit_diagonal():
    with pytest.raises(InputError, match="unit diagonal"):
        vendi_score(kernel=2 * np.eye(3))


def test_mode_counts_by_hand():
    centres = np.array([[0.0, 0.0], [10.0, 0.0]])
    x = np.array([[0.1, 0.0], [9.0, 0.0], [5.0, 0.0], [0.0, 0.2]])
    counts, outside = mode_counts(x, centres, std=0.5)  # radius 1.5
    assert counts.tolist() == [2, 1] and outside == 1


def test_long_tail_mode_frequencies_match_the_true_weights_within_binomial_error():
    n = 20000
    data = load_dataset("long_tail", n_train=n, n_test=10, seed=3)
    w = data.params["weights"]
    np.testing.assert_allclose(w, long_tail_weights(10, 0.6))
    counts, outside = mode_counts(data.train, data.params["centres"], data.params["std"])
    off = math.exp(-4.5)  # a 2-D Gaussian puts exp(-9/2) beyond 3 std
    assert abs(outside / n - off) < 4.5 * math.sqrt(off / n)
    share = counts / counts.sum()
    se = np.sqrt(w * (1 - w) / n)
    assert np.all(np.abs(share - w) < 4.5 * se)


def _ctx(model, samples, dataset):
    return EvalContext(model, samples, dataset.test, dataset, np.random.default_rng(0))


def test_rare_mass_and_modes_covered_on_the_truth_and_on_a_model_that_lost_its_tail():
    data = load_dataset("long_tail", n_train=10, n_test=1000, seed=0)
    names = ["modes_covered", "rare_mode_mass", "off_mode_share", "vendi"]
    n = 20000
    truth = load_dataset("long_tail", n_train=n, n_test=10, seed=1).train
    values = evaluate(names, _ctx(None, truth, data))
    w = data.params["weights"]
    rare = w[w < RARE_WEIGHT].sum()
    assert values["modes_covered"] == 10
    # share inside 3 std is 1 - exp(-9/2) per mode: the rare mass, within binomial error
    inside = 1 - math.exp(-4.5)
    assert abs(values["rare_mode_mass"] - rare * inside) < 4.5 * math.sqrt(rare / n)
    assert abs(values["off_mode_share"] - (1 - inside)) < 4.5 * math.sqrt(0.011 / n)
    # the same samples with the rare modes dropped: no rare mass, fewer modes, lower diversity
    counts_mode = np.linalg.norm(truth[:, None] - data.params["centres"][None], axis=2).argmin(1)
    head = truth[w[counts_mode] >= RARE_WEIGHT]
    cut = evaluate(names, _ctx(None, head, data))
    assert cut["rare_mode_mass"] == 0 and cut["modes_covered"] == int((w >= RARE_WEIGHT).sum())
    assert cut["vendi"] < values["vendi"]


def test_min_weight_and_support_size_read_the_model():
    data = load_dataset("long_tail", n_train=400, n_test=200, seed=0)
    gmm = build_model("gmm", {"n_components": 3})
    gmm.fit(data.train, rng=np.random.default_rng(0))
    values = evaluate(["min_weight", "support_size"], _ctx(gmm, data.test, data))
    assert values == {"min_weight": pytest.approx(float(np.min(gmm.gmm_.weights_)))}
    cat = build_model("categorical")
    atoms = np.array([[0.0], [0.0], [1.0], [3.0]])
    cat.fit(atoms, rng=np.random.default_rng(0))
    values = evaluate(["min_weight", "support_size"], _ctx(cat, atoms, data))
    assert values == {"support_size": 3.0}
