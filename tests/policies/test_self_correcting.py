"""The self-correcting loop's corrections by hand, and a wrong correction stopped before the run."""

import numpy as np
import pytest

from autophagy.data import dataset_from_array, load_dataset
from autophagy.errors import InputError
from autophagy.loop import EvalSettings, LoopSettings, run_cell
from autophagy.models.registry import build_model
from autophagy.policies import make_policy
from autophagy.signatures import ArgumentError


def drop_a_column(x, real):
    return x[:, :1]


def halve(x, real):
    return x / 2


REAL = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0], [4.0, 4.0]] * 5)


def _bound(**params):
    data = dataset_from_array(REAL, seed=0)
    return make_policy("self_correcting", **params).bind(data), data


def _corrected(policy, x):
    train, _ = policy.next_training_set(REAL, x, {}, rng=np.random.default_rng(0))
    return train


@pytest.mark.parametrize("gamma, share", [(np.inf, 1.0), (1.0, 0.5), (3.0, 0.75), (0.0, 0.0)])
def test_nearest_moves_each_sample_the_share_gamma_over_one_plus_gamma_to_its_real_point(
        gamma, share):
    policy, data = _bound(correction="nearest", gamma=gamma)
    x = np.array([[1.0, 0.5], [3.0, 3.0]])
    nearest = np.array([[0.0, 0.0], [4.0, 4.0]])
    np.testing.assert_allclose(_corrected(policy, x), x + share * (nearest - x))


def test_kmeans_projects_onto_the_real_data_centres():
    policy, _ = _bound(correction="kmeans", clusters=4, gamma=np.inf)
    x = np.array([[0.4, -0.3], [3.5, 4.2]])
    np.testing.assert_allclose(_corrected(policy, x), [[0.0, 0.0], [4.0, 4.0]], atol=1e-9)


def test_moments_at_full_strength_gives_the_batch_the_real_mean_and_covariance():
    data = load_dataset("gaussian", n_train=300, n_test=10, seed=0, mean=[1.0, -2.0],
                        cov=[[2.0, 0.8], [0.8, 1.0]])
    policy = make_policy("self_correcting", correction="moments", gamma=np.inf).bind(data)
    x = np.random.default_rng(1).standard_normal((500, 2)) * [0.3, 3.0]
    out, _ = policy.next_training_set(data.train, x, {}, rng=np.random.default_rng(0))
    np.testing.assert_allclose(out.mean(0), data.train.mean(0), atol=1e-10)
    np.testing.assert_allclose(np.cov(out, rowvar=False, bias=True),
                               np.cov(data.train, rowvar=False, bias=True), atol=1e-10)


def test_a_finite_lambda_keeps_the_real_data():
    policy, _ = _bound(correction="nearest", **{"lambda": 0.5})
    assert policy.n_synthetic(20) == 10
    x = np.zeros((10, 2))
    train, _ = policy.next_training_set(REAL, x, {}, rng=np.random.default_rng(0))
    assert len(train) == 30 and np.array_equal(train[:20], REAL)


def test_a_correction_of_the_wrong_shape_fails_before_the_run():
    data = load_dataset("long_tail", n_train=50, n_test=20, seed=0)
    policy = make_policy("self_correcting", correction=f"{__name__}:drop_a_column")
    with pytest.raises(ArgumentError, match=r"drop_a_column.*shape it is given, \(50, 2\); "
                       r"got \(50, 1\)"):
        run_cell(build_model("gmm", {"n_components": 2}), data, policy, LoopSettings(1))


def test_a_user_correction_runs_in_the_loop():
    data = load_dataset("long_tail", n_train=100, n_test=50, seed=0)
    cell = run_cell(build_model("gaussian"), data,
                    make_policy("self_correcting", correction=f"{__name__}:halve", gamma=np.inf),
                    LoopSettings(2, seed=0), EvalSettings(metrics=("cov_trace_ratio",),
                                                          n_samples=10))
    assert cell.status == "done", cell.message
    # each generation trains on its samples halved: the covariance falls about 4x a generation
    last = cell.metrics.value.iloc[-1]
    assert 0.02 < last < 0.2


@pytest.mark.parametrize("params, field", [
    ({"correction": "magic"}, "correction"), ({"gamma": -1}, "gamma"),
    ({"clusters": 0}, "clusters"), ({"lambda": 0}, "lambda")])
def test_bad_parameters_name_their_field(params, field):
    with pytest.raises(InputError, match=field):
        make_policy("self_correcting", **params)
