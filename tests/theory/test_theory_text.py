"""The vanishing-tail closed forms against Monte Carlo, and a wrong formula refuted."""

import numpy as np

from autophagy.theory.text import (
    expected_surviving_types,
    expected_tail_mass,
    expected_types_seen,
    naive_surviving_types,
    simulate_types,
)

RUNS = 6000


def _counts():
    p = np.arange(1, 121.0) ** -1.1
    c = np.random.default_rng(0).multinomial(600, p / p.sum())
    return c[c > 0]


def _agree(theory, runs):
    se = runs.std(0, ddof=1) / np.sqrt(len(runs)) + 1e-12
    return np.abs(theory - runs.mean(0)) / se


def test_surviving_types_fully_synthetic_match_simulation_and_the_naive_formula_does_not():
    c = _counts()
    sim = simulate_types(c, 600, 8, RUNS, np.random.default_rng(1), n_draws=300)
    exact = expected_surviving_types(c, 600, 8)
    assert _agree(exact, sim["surviving"]).max() < 4
    z_naive = _agree(naive_surviving_types(c, 600, 8), sim["surviving"])
    assert z_naive[-1] > 20  # it loses types too fast: far outside the Monte Carlo error
    assert _agree(expected_types_seen(c, 600, 8, 300), sim["seen"]).max() < 4


def test_with_real_data_no_type_is_lost_and_the_types_seen_settle():
    c = _counts()
    sim = simulate_types(c, 300, 6, RUNS, np.random.default_rng(2), real_counts=c, n_draws=300)
    assert (expected_surviving_types(c, 300, 6, real_counts=c) == len(c)).all()
    assert (sim["surviving"] == len(c)).all()
    assert _agree(expected_types_seen(c, 300, 6, 300, real_counts=c), sim["seen"]).max() < 4


def test_the_expected_tail_mass_does_not_move():
    c = _counts()
    sim = simulate_types(c, 600, 8, RUNS, np.random.default_rng(3))
    top = np.argsort(-c, kind="stable")[:10]
    tail = 1 - sim["p"][:, top].sum(1)
    expected = expected_tail_mass(c, 8, 10)
    assert np.ptp(expected) == 0
    assert abs(tail.mean() - expected[-1]) < 4 * tail.std() / np.sqrt(RUNS)
    assert tail.std() > 0.05  # on average only: each run's tail drifts far from it
