"""The n-gram family against hand-computed counts, its samplers and its exact resume."""

import numpy as np
import pandas as pd
import pytest

from autophagy.data import Dataset
from autophagy.errors import InputError
from autophagy.loop import EvalSettings, LoopSettings, run_cell
from autophagy.models.families.ngram import NGram, truncate_rows
from autophagy.policies import parse_policy
from autophagy.store import CellStore, statefile

# Two blocks over types {0, 1, 2}; B marks the beginning of a block.
#   B 0 1 1 2        bigrams: B0 01 11 12 | B1 11 10 02
#   B 1 1 0 2        unigrams: 0:2  1:4  2:2 (8 tokens)
CORPUS = np.array([[0, 1, 1, 2], [1, 1, 0, 2]])


def test_bigram_probabilities_are_the_hand_counted_frequencies():
    m = NGram(order=2).fit(CORPUS, rng=np.random.default_rng(0))
    p = m.next_token_probs(np.array([[0], [1], [2]]))
    # after 0: 1 once, 2 once; after 1: 1 twice, 2 once, 0 once; after 2: never seen -> unigram
    np.testing.assert_allclose(p, [[0, 1 / 2, 1 / 2], [1 / 4, 2 / 4, 1 / 4], [2 / 8, 4 / 8, 2 / 8]])
    start = m.next_token_probs(np.zeros((1, 0), dtype=int))  # after B: 0 once, 1 once
    np.testing.assert_allclose(start, [[1 / 2, 1 / 2, 0]])
    lp = m.token_log_probs(np.array([[1, 1, 2, 0]]))
    np.testing.assert_allclose(np.exp(lp), [[1 / 2, 2 / 4, 1 / 4, 2 / 8]])  # 2 -> 0 backs off


def test_add_k_and_the_unigram_and_trigram_counts():
    m = NGram(order=2, add_k=1.0).fit(CORPUS)
    np.testing.assert_allclose(m.next_token_probs(np.array([[0]])), [[1 / 5, 2 / 5, 2 / 5]])
    uni = NGram(order=1).fit(CORPUS)
    np.testing.assert_allclose(uni.next_token_probs(np.array([[2, 2]])), [[2 / 8, 4 / 8, 2 / 8]])
    np.testing.assert_array_equal(uni.unigram_counts(), [2, 4, 2])
    tri = NGram(order=3).fit(CORPUS)  # B B 0, B 0 1, 0 1 1, 1 1 2 | B B 1, B 1 1, 1 1 0, 1 0 2
    np.testing.assert_allclose(tri.next_token_probs(np.array([[1, 1]])), [[1 / 2, 0, 1 / 2]])
    assert np.isneginf(tri.token_log_probs(np.array([[0, 1, 0, 2]]))[0, 2])  # 0 1 -> 0 unseen


def test_samples_follow_the_model_and_prompts_are_kept():
    m = NGram(order=2, prompt_len=1).fit(CORPUS)
    x = m.sample(4000, rng=np.random.default_rng(0))
    assert x.shape == (4000, 4) and x.dtype == np.int64
    np.testing.assert_array_equal(x[:4, 0], [0, 1, 0, 1])  # each real block's prefix in turn
    after_one = x[:, 1:][x[:, :-1] == 1]
    freq = np.bincount(after_one, minlength=3) / len(after_one)
    assert np.abs(freq - [0.25, 0.5, 0.25]).max() < 0.03
    assert np.exp(m.token_log_probs(x[:, 1:2]) > -np.inf).all()


def test_temperature_top_k_and_top_p_cut_the_rows_as_defined():
    p = np.array([[0.5, 0.3, 0.15, 0.05]])
    np.testing.assert_allclose(truncate_rows(p, top_k=2), [[0.625, 0.375, 0, 0]])
    np.testing.assert_allclose(truncate_rows(p, top_p=0.8), [[0.625, 0.375, 0, 0]])
    np.testing.assert_allclose(truncate_rows(p, top_p=0.81), [[0.5, 0.3, 0.15, 0]] / np.float64(
        0.95))
    q = p ** 2 / (p ** 2).sum()
    np.testing.assert_allclose(truncate_rows(p, temperature=0.5), q)
    m = NGram(order=1, top_k=1).fit(CORPUS)
    assert (m.sample(50, rng=np.random.default_rng(0)) == 1).all()


def test_bad_options_are_refused_in_one_line():
    for kwargs, field in [({"order": 0}, "order"), ({"add_k": -1}, "add_k"),
                          ({"top_p": 1.5}, "top_p"), ({"top_k": 0}, "top_k")]:
        with pytest.raises(InputError, match=f"^{field} must be"):
            NGram(**kwargs)


def test_state_round_trips_through_a_checkpoint_and_a_cell_resumes_exactly(tmp_path):
    m = NGram(order=3, prompt_len=2).fit(CORPUS)
    twin = NGram(order=3, prompt_len=2)
    twin.load_state_dict(statefile.loads(statefile.dumps(m.state_dict())))
    a, b = (x.sample(50, rng=np.random.default_rng(1)) for x in (m, twin))
    np.testing.assert_array_equal(a, b)

    rng = np.random.default_rng(0)
    data = Dataset("toy", rng.integers(0, 30, (200, 12)), rng.integers(0, 30, (50, 12)),
                   kind="text", params={"vocab_size": 30})
    loop = LoopSettings(4, seed=2)
    ev = EvalSettings(metrics=("perplexity", "types", "gen0_ppl", "model_types"), n_samples=100)
    whole = run_cell(NGram(order=2), data, parse_policy("mixed:0.5"), loop, ev)
    store = CellStore(tmp_path / "cell")
    short = LoopSettings(2, seed=2)
    run_cell(NGram(order=2), data, parse_policy("mixed:0.5"), short, ev, store=store)
    resumed = run_cell(NGram(order=2), data, parse_policy("mixed:0.5"), loop, ev, store=store)
    pd.testing.assert_frame_equal(whole.metrics, resumed.metrics)


def test_a_text_run_that_names_no_metrics_gets_the_text_metrics():
    """Point distances (w2, energy) on token ids mean nothing: text defaults to its own."""
    from autophagy.data import load_dataset

    data = load_dataset("zipf", n_train=64, n_test=32, seed=0, vocab_size=40, block_len=8)
    result = run_cell(NGram(order=2), data, parse_policy("fully_synthetic"), LoopSettings(1),
                      EvalSettings(metrics=None, n_samples=32))
    names = set(result.metrics["metric"])
    assert {"types", "unigram_kl", "perplexity", "function_distance"} <= names
    assert not names & {"w2", "energy", "mmd", "sliced_w2"}
