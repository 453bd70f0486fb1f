"""Text metrics: perplexity, vanishing tails, diversity and heat death, on blocks of token ids.

What the papers measured, each a number per generation:

- ``perplexity``: held-out perplexity of the model (Shumailov et al. 2024, Fig. 1);
- ``gen0_ppl`` and ``gen0_ppl_tail``: the perplexity of the generation's *samples* under the
  generation-0 model, over all tokens and at the 95th percentile of the blocks (Shumailov et
  al.'s histograms: later generations write text the first model finds likely, and a few blocks
  it finds very unlikely; :func:`block_perplexities` gives the whole histogram);
- ``zero_prob``: the share of held-out tokens the model gives probability 0 (an exact MLE that
  lost them: the tail that vanished);
- ``model_types``: the types the model gives positive probability (an exact MLE's support);
- ``types``, ``distinct_1``, ``distinct_2``: distinct tokens, and distinct n-grams per n-gram in
  the samples (Li et al. 2016's distinct-n);
- ``unigram_kl``, ``bigram_kl``: KL(real || samples) of token and bigram frequencies, add-1/2 on
  the union of what either side shows (so a lost type costs a finite amount);
- ``zipf_exponent``: minus the slope of log frequency against log rank of the samples' types
  (Dohmatob et al. 2024, "A Tale of Tails": truncation cuts the Zipf tail);
- ``tail_mass``: the share of sample tokens outside the real text's 100 most frequent types;
- ``next_token_entropy``: mean entropy (nats) of the model's next-token distribution after 256
  held-out contexts (heat death on text, Marchi et al. 2024: it falls at temperature < 1).

The model-based numbers need a text family (``token_log_probs``, ``next_token_probs``); the
generation-0 model is the state the loop keeps in ``reference["model"]`` (``reference_state``).
Perplexities mix each token's probability with ``PPL_UNIFORM`` of the uniform law on the
vocabulary, so a token of probability 0 costs log(V / PPL_UNIFORM) nats instead of infinity.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autophagy.metrics.base import EvalContext, Metric, MetricGroup, metric_rng

PPL_UNIFORM = 1e-3
TAIL_TOP_K = 100
ENTROPY_CONTEXTS = 256
ZIPF_MIN_COUNT = 3


def _is_text(ctx: EvalContext) -> bool:
    return getattr(ctx.dataset, "kind", None) == "text"


def _scores(ctx: EvalContext) -> bool:
    return _is_text(ctx) and callable(getattr(ctx.model, "token_log_probs", None))


def vocab_size(ctx: EvalContext) -> int:
    """The vocabulary size: the dataset's, else one more than the largest id seen."""
    v = ctx.dataset.params.get("vocab_size")
    seen = int(max(np.max(ctx.samples), np.max(ctx.held_out), np.max(ctx.dataset.train))) + 1
    return max(int(v), seen) if v is not None else seen


def smoothed_nll(log_probs: np.ndarray, vocab: int) -> np.ndarray:
    """-log((1 - PPL_UNIFORM) p + PPL_UNIFORM / V) of each token's log-probability."""
    p = np.exp(np.asarray(log_probs, dtype=np.float64))
    return -np.log((1 - PPL_UNIFORM) * p + PPL_UNIFORM / vocab)


def block_perplexities(model: Any, blocks: np.ndarray, vocab: int,
                       reference: dict[str, Any] | None = None) -> np.ndarray:
    """Perplexity of each block under ``model`` (or its ``reference`` state), smoothed."""
    lp = model.token_log_probs(np.asarray(blocks).astype(np.int64), reference=reference)
    return np.exp(smoothed_nll(lp, vocab).mean(axis=1))


def ngram_counts(blocks: np.ndarray, n: int, vocab: int) -> tuple[np.ndarray, np.ndarray]:
    """(keys, counts) of the n-grams inside the blocks (never across two blocks)."""
    x = np.asarray(blocks).astype(np.int64)
    key = np.zeros((len(x), x.shape[1] - n + 1), dtype=np.int64)
    for j in range(n):
        key = key * vocab + x[:, j : x.shape[1] - n + 1 + j]
    return np.unique(key, return_counts=True)


def kl_half(real: tuple[np.ndarray, np.ndarray], fake: tuple[np.ndarray, np.ndarray]) -> float:
    """KL(real || fake) in nats, both add-1/2 on the union of their keys."""
    keys = np.union1d(real[0], fake[0])
    p = np.full(len(keys), 0.5)
    q = np.full(len(keys), 0.5)
    p[np.searchsorted(keys, real[0])] += real[1]
    q[np.searchsorted(keys, fake[0])] += fake[1]
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum(p * np.log(p / q)))


def zipf_exponent(counts: np.ndarray) -> float:
    """Minus the least-squares slope of log count against log rank (types seen >= 3 times)."""
    c = np.sort(np.asarray(counts))[::-1]
    c = c[c >= ZIPF_MIN_COUNT]
    if len(c) < 3:
        return float("nan")
    rank = np.arange(1, len(c) + 1)
    slope = np.polyfit(np.log(rank), np.log(c), 1)[0]
    return float(-slope)


def _text_numbers(ctx: EvalContext) -> dict[str, float]:
    vocab = vocab_size(ctx)
    samples = np.asarray(ctx.samples).astype(np.int64)
    real = np.asarray(ctx.held_out).astype(np.int64)
    s_types, s_counts = np.unique(samples, return_counts=True)
    real_uni = np.unique(real, return_counts=True)
    train_types, train_counts = np.unique(np.asarray(ctx.dataset.train), return_counts=True)
    top = train_types[np.argsort(-train_counts, kind="stable")[:TAIL_TOP_K]]
    out = {
        "types": float(len(s_types)),
        "distinct_1": len(s_types) / samples.size,
        "distinct_2": (len(ngram_counts(samples, 2, vocab)[0])
                       / max(1, len(samples) * (samples.shape[1] - 1))),
        "unigram_kl": kl_half(real_uni, (s_types, s_counts)),
        "bigram_kl": kl_half(ngram_counts(real, 2, vocab), ngram_counts(samples, 2, vocab)),
        "zipf_exponent": zipf_exponent(s_counts),
        "tail_mass": float(1.0 - np.isin(samples, top).mean()),
    }
    return out


def _model_numbers(ctx: EvalContext) -> dict[str, float]:
    vocab = vocab_size(ctx)
    real = np.asarray(ctx.held_out).astype(np.int64)
    lp = ctx.model.token_log_probs(real)
    out = {
        "perplexity": float(np.exp(smoothed_nll(lp, vocab).mean())),
        "zero_prob": float(np.isneginf(lp).mean()),
    }
    state = ctx.reference.get("model")
    if state is not None:
        per_block = block_perplexities(ctx.model, ctx.samples, vocab, reference=state)
        lp0 = ctx.model.token_log_probs(np.asarray(ctx.samples).astype(np.int64),
                                        reference=state)
        out["gen0_ppl"] = float(np.exp(smoothed_nll(lp0, vocab).mean()))
        out["gen0_ppl_tail"] = float(np.quantile(per_block, 0.95))
    rng = metric_rng(ctx, "next_token_entropy")
    rows = rng.integers(len(real), size=ENTROPY_CONTEXTS)
    cut = rng.integers(1, real.shape[1], size=ENTROPY_CONTEXTS)
    entropies = []
    for length in np.unique(cut):  # contexts of one length at a time
        at = cut == length
        p = ctx.model.next_token_probs(real[rows[at], :length])
        with np.errstate(divide="ignore", invalid="ignore"):
            entropies.append(-np.where(p > 0, p * np.log(p), 0.0).sum(axis=1))
    out["next_token_entropy"] = float(np.concatenate(entropies).mean())
    return out


TEXT = MetricGroup("text", _text_numbers)
TEXT_MODEL = MetricGroup("text_model", _model_numbers)


def _has_reference(ctx: EvalContext) -> bool:
    return _scores(ctx) and ctx.reference.get("model") is not None


def _model_types(ctx: EvalContext) -> float:
    return float(ctx.model.support_size())


TEXT_METRICS: list[Metric] = [
    Metric("model_types", _model_types, description=(
        "types of positive probability under the model (its support: lost types are gone)"),
        applies=lambda ctx: _is_text(ctx) and callable(getattr(ctx.model, "support_size", None)),
        lower_is_better=False, title="types in the model", order=309),
    TEXT_MODEL.metric("perplexity", description=(
        "held-out perplexity per token (probabilities mixed with 1e-3 of uniform)"),
        applies=_scores, title="held-out perplexity", order=300),
    TEXT_MODEL.metric("gen0_ppl", description=(
        "perplexity of the samples under the generation-0 model (Shumailov et al.'s histograms)"),
        applies=_has_reference, title="samples' perplexity under gen 0", order=301),
    TEXT_MODEL.metric("gen0_ppl_tail", description=(
        "95th percentile of the samples' per-block perplexity under the generation-0 model"),
        applies=_has_reference, title="gen-0 perplexity, 95th pct", order=302),
    TEXT_MODEL.metric("zero_prob", description=(
        "share of held-out tokens the model gives probability 0 (the lost tail)"),
        applies=_scores, title="held-out tokens at p = 0", order=303),
    TEXT_MODEL.metric("next_token_entropy", description=(
        "mean next-token entropy (nats) after 256 held-out contexts (heat death on text)"),
        applies=_scores, lower_is_better=False, title="next-token entropy", order=304),
    TEXT.metric("types", description="number of distinct token types in the samples",
                applies=_is_text, lower_is_better=False, title="types", order=310),
    TEXT.metric("distinct_1", description="distinct tokens per token in the samples",
                applies=_is_text, lower_is_better=False, title="distinct-1", order=311),
    TEXT.metric("distinct_2", description="distinct bigrams per bigram in the samples",
                applies=_is_text, lower_is_better=False, title="distinct-2", order=312),
    TEXT.metric("unigram_kl", description=(
        "KL(real || samples) of token frequencies, add-1/2 on the union"),
        applies=_is_text, title="unigram KL", order=313),
    TEXT.metric("bigram_kl", description=(
        "KL(real || samples) of bigram frequencies, add-1/2 on the union"),
        applies=_is_text, title="bigram KL", order=314),
    TEXT.metric("zipf_exponent", description=(
        "fitted Zipf exponent of the samples (minus the log-log rank slope, types seen >= 3x)"),
        applies=_is_text, lower_is_better=False, title="Zipf exponent", order=315),
    TEXT.metric("tail_mass", description=(
        "share of sample tokens outside the real text's 100 most frequent types"),
        applies=_is_text, lower_is_better=False, title="tail mass", order=316),
]
