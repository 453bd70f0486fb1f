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


def test_fresh_real_without_enough_pool_says_how_many_it_needs():
    with pytest.raises(ValueError, match="the pool holds 0; give a pool of at least 50"):
        FreshReal(0.5).check(100, None)


def test_policies_describe_their_parameters():
    (lam,) = Mixed.parameters()
    assert (lam.key, lam.field, lam.default, lam.sweep, lam.tag) == ("lambda", "ratio", 1.0, True,
                                                                     "lam")
    assert [p.key for p in FreshReal.parameters()] == ["fraction"]
    assert FullySynthetic.parameters() == []
    assert FreshReal.needs_pool and not Mixed.needs_pool
    assert Mixed.from_params(**{"lambda": 0.5}).params == {"lambda": 0.5}
    with pytest.raises(ValueError, match="unknown parameter 'lam'; accepted: lambda"):
        Mixed.from_params(lam=0.5)


def test_cell_tags_name_every_swept_parameter():
    assert Mixed(0.5).cell_tag == "mixed-lam0.5"
    assert FreshReal(0.25).cell_tag == "fresh_real-frac0.25"
    assert FullySynthetic().cell_tag == "fully_synthetic"


def test_policy_grid_sweeps_list_values_in_order():
    from autophagy.policies import policy_grid

    grid = policy_grid("accumulate", {"lambda": [0.5, 2]})
    assert [p.lam for p in grid] == [0.5, 2.0]
    assert [p.n_synthetic(100) for p in grid] == [50, 200]
    assert policy_grid("fully_synthetic", {}) == [FullySynthetic()]


@pytest.mark.parametrize(
    ("spec", "label"),
    [("mixed:0.5", "mixed λ=0.5"), ("fully_synthetic", "fully_synthetic"),
     ("fresh_real:fraction=0.5", "fresh_real 50%"), ("accumulate:2", "accumulate λ=2"),
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
