"""Text metrics against hand counts and independent references."""

import numpy as np
import pytest
from scipy.special import rel_entr

from autophagy.data import Dataset
from autophagy.metrics import EvalContext, evaluate
from autophagy.metrics.text import PPL_UNIFORM, kl_half, ngram_counts, zipf_exponent
from autophagy.models.families.ngram import NGram

REAL = np.array([[0, 1, 1, 2], [1, 1, 0, 2]])
SAMPLES = np.array([[1, 1, 1, 1], [0, 1, 0, 1]])


def _ctx(model=None, samples=SAMPLES, reference=None):
    data = Dataset("toy", REAL, REAL, kind="text", params={"vocab_size": 3})
    return EvalContext(model, samples, REAL, data, np.random.default_rng(0), reference or {})


def test_counting_metrics_match_the_hand_counts():
    v = evaluate(["types", "distinct_1", "distinct_2", "tail_mass"], _ctx())
    assert v["types"] == 2 and v["distinct_1"] == 2 / 8
    assert v["distinct_2"] == 3 / 6  # 11, 01, 10 among 6 bigrams
    assert v["tail_mass"] == 0.0  # the real text has 3 types, all in its top 100


def test_kl_is_scipys_on_the_add_half_frequencies():
    real, fake = ngram_counts(REAL, 1, 3), ngram_counts(SAMPLES, 1, 3)
    p = np.array([2, 4, 2]) + 0.5
    q = np.array([2, 6, 0]) + 0.5
    assert kl_half(real, fake) == pytest.approx(rel_entr(p / p.sum(), q / q.sum()).sum())
    assert evaluate(["unigram_kl"], _ctx())["unigram_kl"] == pytest.approx(kl_half(real, fake))


def test_the_zipf_exponent_of_an_exact_power_law_is_its_exponent():
    counts = np.round(1e6 * np.arange(1, 200.0) ** -1.3)
    assert zipf_exponent(counts) == pytest.approx(1.3, abs=0.01)


def test_perplexities_are_the_smoothed_exponentials_of_the_hand_probabilities():
    model = NGram(order=2).fit(REAL)
    ctx = _ctx(model, reference={"model": NGram(order=1).fit(REAL).reference_state()})
    v = evaluate(["perplexity", "zero_prob", "next_token_entropy"], ctx)
    # B->0 1/2, 0->1 1/2, 1->1 2/4, 1->2 1/4 | B->1 1/2, 1->1 2/4, 1->0 1/4, 0->2 1/2
    p = np.array([[1 / 2, 1 / 2, 2 / 4, 1 / 4], [1 / 2, 2 / 4, 1 / 4, 1 / 2]])
    smoothed = (1 - PPL_UNIFORM) * p + PPL_UNIFORM / 3
    assert v["perplexity"] == pytest.approx(np.exp(-np.log(smoothed).mean()))
    assert v["zero_prob"] == 0
    assert 0 < v["next_token_entropy"] <= np.log(3)
    g0 = evaluate(["gen0_ppl"], _ctx(NGram(order=2).fit(REAL), reference=ctx.reference))
    uni = np.array([[4, 4, 4, 4], [2, 4, 2, 4]]) / 8  # the samples under the unigram reference
    expected = np.exp(-np.log((1 - PPL_UNIFORM) * uni + PPL_UNIFORM / 3).mean())
    assert g0["gen0_ppl"] == pytest.approx(expected)


def test_the_function_space_distance_reads_next_token_probs_after_probe_contexts():
    m0 = NGram(order=2).fit(REAL)
    probes = m0.function_probes(np.random.default_rng(0), REAL, SAMPLES, n=5)
    assert probes.shape == (5, 3) and np.isin(probes, REAL).all()
    v0 = m0.function_values(probes)
    p = m0.next_token_probs(probes)
    np.testing.assert_allclose(v0, np.sqrt(p).ravel() / np.sqrt(5))  # Hellinger coordinates
    # two models' squared distance is the mean over probes of 2 H^2 of their next-token laws
    assert np.sum(v0**2) == pytest.approx(1.0)
    ctx = _ctx(m0)
    assert evaluate(["function_distance"], ctx)["function_distance"] == 0.0
    star = ctx.reference["fixed_point"]["function"]["star"]
    moved = NGram(order=2, vocab_size=3).fit(SAMPLES)  # the same vocabulary, as in a loop
    d = evaluate(["function_distance"], _ctx(moved, reference=ctx.reference))["function_distance"]
    probes = ctx.reference["fixed_point"]["function"]["probes"]
    assert d == np.linalg.norm(moved.function_values(probes) - star) > 0
