import numpy as np
import pytest

from autophagy.policies import Accumulate, FreshReal, FullySynthetic, Mixed, parse_policy


def arrays(n_real=100, n_synth=50, d=2):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n_real, d)), rng.normal(size=(n_synth, d)) + 10


def test_mixed_keeps_all_real_and_adds_floor_lambda_n_synthetic():
    policy = Mixed(0.55)
    assert policy.n_synthetic(100) == 55
    real, synth = arrays(100, 55)
    train, state = policy.next_training_set(real, synth, {}, rng=np.random.default_rng(0))
    assert train.shape == (155, 2)
    np.testing.assert_array_equal(train[:100], real)
    assert state == {}


def test_mixed_lambda_zero_trains_on_real_only():
    real, _ = arrays()
    policy = Mixed(0.0)
    assert policy.n_synthetic(len(real)) == 0
    train, _ = policy.next_training_set(real, real[:0], {}, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(train, real)


def test_fully_synthetic_drops_real_data():
    real, synth = arrays(100, 100)
    policy = FullySynthetic()
    assert policy.n_synthetic(100) == 100
    train, _ = policy.next_training_set(real, synth, {}, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(train, synth)


def test_accumulate_grows_by_one_synthetic_set_per_generation():
    real, _ = arrays(100)
    policy, state = Accumulate(), {}
    rng = np.random.default_rng(1)
    for t in range(1, 4):
        synth = rng.normal(size=(policy.n_synthetic(100), 2))
        train, state = policy.next_training_set(real, synth, state, rng=rng)
        assert train.shape == (100 + 100 * t, 2)
        np.testing.assert_array_equal(train[-100:], synth)


def test_fresh_real_draws_new_pool_samples_each_generation():
    real, synth = arrays(100, 70)
    pool = np.arange(1000 * 2, dtype=float).reshape(1000, 2)
    policy = FreshReal(0.3)
    assert policy.n_fresh(100) == 30 and policy.n_synthetic(100) == 70
    rng = np.random.default_rng(0)
    a, _ = policy.next_training_set(real, synth, {}, rng=rng, pool=pool)
    b, _ = policy.next_training_set(real, synth, {}, rng=rng, pool=pool)
    assert a.shape == (100, 2)
    fresh_a = {tuple(r) for r in a[:30]}
    assert fresh_a <= {tuple(r) for r in pool}
    assert fresh_a != {tuple(r) for r in b[:30]}


def test_fresh_real_without_enough_pool_names_the_field():
    with pytest.raises(ValueError, match="data.n_pool"):
        FreshReal(0.5).check(100, None)


@pytest.mark.parametrize(
    ("spec", "label"),
    [("mixed:0.5", "mixed λ=0.5"), ("fully_synthetic", "fully_synthetic"),
     ("accumulate", "accumulate"), ("fresh_real:0.25", "fresh_real 25%"), ("mixed", "mixed λ=1")],
)
def test_parse_policy_reads_short_strings(spec, label):
    assert parse_policy(spec).label == label


@pytest.mark.parametrize(
    ("spec", "message"),
    [("bogus", "unknown policy 'bogus'; choose from: mixed"), ("mixed:-1", "lambda must be"),
     ("mixed:x", "must be a number"), ("fully_synthetic:0.5", "takes no number"),
     ("fresh_real:1.5", "fraction must be in")],
)
def test_parse_policy_rejects_bad_specs_with_a_clear_message(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_policy(spec)
