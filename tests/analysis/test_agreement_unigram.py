"""``autophagy theory unigram``: the closed form beside the ngram model run through the loop."""

import numpy as np

from autophagy.analysis.agreement import unigram_agreement
from autophagy.data import load_dataset
from autophagy.theory.text import naive_surviving_types


def test_the_ngram_model_through_the_loop_keeps_the_expected_types_and_the_naive_form_fails():
    out = unigram_agreement(n=20, block_len=10, vocab=200, exponent=1.1, generations=6,
                            lam=None, seeds=150, seed=0)
    assert out.n_agree == len(out.rows) == 7
    means = np.array([r.values[0][1] for r in out.rows])  # types kept, the runs' mean
    half = np.array([r.values[0][2] for r in out.rows])  # its 99% interval
    assert means[-1] < 0.6 * means[0]  # the tail vanishes
    real = load_dataset("zipf", n_train=20, n_test=2, seed=0, vocab_size=200, exponent=1.1,
                        block_len=10)
    counts = np.bincount(real.train.ravel(), minlength=200)
    naive = naive_surviving_types(counts, 200, 6)
    assert np.any(np.abs(naive - means) > half)  # outside the runs' interval


def test_with_real_data_every_real_type_is_kept():
    out = unigram_agreement(n=20, block_len=10, vocab=200, exponent=1.1, generations=3,
                            lam=1.0, seeds=40, seed=0)
    assert out.n_agree == len(out.rows)
    assert len({r.values[0][1] for r in out.rows}) == 1
