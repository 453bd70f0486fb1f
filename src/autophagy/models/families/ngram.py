"""An exact maximum-likelihood n-gram language model: the text family the theory is exact for.

Each training block (a row of token ids) is read after ``order - 1`` beginning-of-block symbols
(id ``vocab_size``), so the first tokens of a block have a distribution of their own. The fit is
the maximum-likelihood (or add-k) estimate

    p(w | c) = (count(c, w) + k) / (count(c) + k V)

for every context ``c`` of ``order - 1`` tokens seen in the data. A context never seen backs off
to the longest seen suffix of it (the ``order - 1``-gram's estimate, down to the unigram): one
distribution per context, so the model is a proper distribution over blocks. With ``add_k = 0``
a type or an n-gram that the loop stops producing gets probability 0 for good: the vanishing
tails of Shumailov et al. (2024), which :mod:`autophagy.theory.text` predicts.

Counts are sparse and vectorised: an m-gram is one int64 key in base ``V + 1``, the counts of
each order are the sorted unique keys with their multiplicities (``np.unique``), and lookups are
``np.searchsorted``. Sampling draws a whole batch of blocks position by position from the dense
next-token rows of their contexts, tempered (``p^(1/temperature)``), cut to the ``top_k`` most
likely tokens and the ``top_p`` nucleus (Holtzman et al. 2020), optionally continuing each real
block's first ``prompt_len`` tokens (Shumailov et al.'s generation from a real prefix).

Example:
    >>> m = NGram(order=2).fit(np.array([[0, 1, 0, 1]]), rng=np.random.default_rng(0))
    >>> np.exp(m.token_log_probs(np.array([[0, 1]])))
    array([[1., 1.]])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autophagy.errors import InputError
from autophagy.theory.sampling import check_temperature

ROW_CHUNK_ELEMENTS = 2**22
"""Dense next-token rows are built this many (rows x vocabulary) entries at a time."""
PROBE_CONTEXT = 8


def check_generation(top_k: int | None, top_p: float | None, prompt_len: int) -> None:
    """Validate the truncation and prompt options shared by the text families."""
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise InputError(f"top_k must be a whole number >= 1 or null, got {top_k!r}")
    if top_p is not None and not (isinstance(top_p, int | float) and 0 < top_p <= 1):
        raise InputError(f"top_p must be in (0, 1] or null, got {top_p!r}")
    if isinstance(prompt_len, bool) or not isinstance(prompt_len, int) or prompt_len < 0:
        raise InputError(f"prompt_len must be a whole number >= 0, got {prompt_len!r}")


def truncate_rows(p: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> np.ndarray:
    """Rows of next-token probabilities tempered (``p^(1/tau)``), cut to their ``top_k`` largest
    entries and to the smallest set of largest entries whose mass reaches ``top_p``, renormalised.
    """
    p = np.asarray(p, dtype=np.float64)
    if float(temperature) != 1.0:
        with np.errstate(divide="ignore"):
            logits = np.log(p) / check_temperature(temperature)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
    p = p / p.sum(axis=1, keepdims=True)
    if top_k is not None and top_k < p.shape[1]:
        kth = -np.partition(-p, top_k - 1, axis=1)[:, top_k - 1 : top_k]
        p = np.where(p >= kth, p, 0.0)  # ties at the k-th value are kept
    if top_p is not None and top_p < 1:
        order = np.argsort(-p, axis=1, kind="stable")
        sorted_p = np.take_along_axis(p, order, axis=1)
        before = np.cumsum(sorted_p, axis=1) - sorted_p  # mass of the strictly larger ones
        keep_sorted = before < top_p * sorted_p.sum(axis=1, keepdims=True)
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=1)
        p = np.where(keep, p, 0.0)
    return p / p.sum(axis=1, keepdims=True)


def sample_rows(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of ``p`` (rows summing to 1), by inverse CDF with one uniform a row."""
    cdf = np.cumsum(p, axis=1)
    u = rng.random(len(p)) * cdf[:, -1]
    return np.minimum((cdf < u[:, None]).sum(axis=1), p.shape[1] - 1)


class _Level:
    """The counts of the m-grams of one order: sorted keys, counts, and their contexts."""

    def __init__(self, keys: np.ndarray, counts: np.ndarray, base: int):
        self.keys, self.counts = keys, counts
        ctx = keys // base
        self.ctx, start = np.unique(ctx, return_index=True)
        self.start = start
        self.stop = np.append(start[1:], len(keys))
        self.totals = np.add.reduceat(counts, start) if len(keys) else counts[:0]
        self.cum = np.cumsum(counts)

    def context_rows(self, ctx_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(index into the contexts, whether found) of each context key."""
        i = np.searchsorted(self.ctx, ctx_keys)
        i = np.minimum(i, max(len(self.ctx) - 1, 0))
        found = (self.ctx[i] == ctx_keys) if len(self.ctx) else np.zeros(len(ctx_keys), bool)
        return i, found

    def count(self, keys: np.ndarray) -> np.ndarray:
        i = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return np.where(self.keys[i] == keys, self.counts[i], 0)


class NextTokenFunction:
    """The function space of a language model (``next_token_probs(contexts)``): what it predicts
    after fixed probe contexts, shared by the n-gram and the transformer."""

    function_space = True

    def function_probes(self, rng: np.random.Generator, real, samples, n: int = 32) -> np.ndarray:
        """``n`` probe contexts (n, 8): random windows of the real blocks."""
        return probe_contexts(rng, real, n)

    def function_values(self, probes) -> np.ndarray:
        """Square roots of the next-token probabilities after each probe, divided by
        sqrt(#probes), flat float64: Hellinger coordinates, as a flow's density
        (:func:`~autophagy.models.base.density_values`). Why not log-probabilities: the log of
        a rare token's probability moves by nats between fits that change nothing else, and
        such tokens are most of a vocabulary."""
        p = self.next_token_probs(np.asarray(probes, dtype=np.int64))
        return np.sqrt(np.maximum(p, 0.0)).ravel() / np.sqrt(len(p))

    function_embedding = function_values


class NGram(NextTokenFunction):
    """Maximum-likelihood (add-k) n-gram on blocks of token ids; samples exactly from it.

    Arguments:
        order: n (1: unigram, 2: bigram, ...).
        add_k: additive smoothing k >= 0 (0: the exact MLE, whose lost n-grams stay lost).
        vocab_size: the number of token types V (``None``: one more than the largest id of the
            first fit's data; ids >= V have probability 0).
        top_k, top_p: truncation of every next-token distribution when sampling (``None``: off).
        prompt_len: continue the first ``prompt_len`` tokens of the real blocks of the first fit
            (taken in turn), as Shumailov et al. generate from real prefixes; 0: unconditioned.
    """

    identifiable = True

    @property
    def sampling_temperature(self) -> str:
        """``"exact"`` for a unigram (i.i.d. tokens: tempering each is tempering the block),
        else ``"approximate"`` (each next-token distribution is tempered, as LMs sample)."""
        return "exact" if self.order == 1 else "approximate"

    def __init__(self, order: int = 2, add_k: float = 0.0, vocab_size: int | None = None,
                 top_k: int | None = None, top_p: float | None = None, prompt_len: int = 0):
        if isinstance(order, bool) or not isinstance(order, int) or order < 1:
            raise InputError(f"order must be a whole number >= 1, got {order!r}")
        if not (isinstance(add_k, int | float) and not isinstance(add_k, bool) and add_k >= 0):
            raise InputError(f"add_k must be a number >= 0, got {add_k!r}")
        if vocab_size is not None and (isinstance(vocab_size, bool)
                                       or not isinstance(vocab_size, int) or vocab_size < 1):
            raise InputError(f"vocab_size must be a whole number >= 1 or null, got {vocab_size!r}")
        check_generation(top_k, top_p, prompt_len)
        self.order, self.add_k, self.vocab_size = order, float(add_k), vocab_size
        self.top_k, self.top_p, self.prompt_len = top_k, top_p, prompt_len

    @property
    def closed_form(self) -> str | None:
        """``"unigram"`` for the exact MLE unigram sampled as it is (the categorical the closed
        forms of :mod:`autophagy.theory.text` are exact for); else ``None``."""
        plain = (self.order == 1 and self.add_k == 0 and self.top_k is None
                 and self.top_p in (None, 1, 1.0) and self.prompt_len == 0)
        return "unigram" if plain else None

    def support_size(self) -> int:
        """Types of positive probability (all V with add-k smoothing)."""
        return self.vocab_ if self.add_k > 0 else int(len(self.levels_[0].keys))

    def unigram_counts(self) -> np.ndarray:
        """The fitted unigram counts of every type (V,)."""
        lv = self.levels_[0]
        out = np.zeros(self.vocab_, dtype=np.int64)
        out[lv.keys[lv.keys < self.vocab_]] = lv.counts[lv.keys < self.vocab_]
        return out

    # ------------------------------------------------------------------ counting
    @property
    def base(self) -> int:
        return self.vocab_ + 1

    def _check_tokens(self, data: Any, where: str = "data") -> np.ndarray:
        x = np.asarray(data)
        if x.ndim != 2 or x.dtype.kind not in "iuf" or len(x) == 0:
            raise InputError(f"{where} must be a non-empty (n_blocks, block_len) array of token "
                             f"ids, got shape {x.shape} of {x.dtype}")
        xi = x.astype(np.int64)
        if (xi != x).any() or (xi < 0).any():
            raise InputError(f"{where} must hold whole token ids >= 0")
        return xi

    def _padded(self, x: np.ndarray) -> np.ndarray:
        bos = np.full((len(x), self.order - 1), self.vocab_, dtype=np.int64)
        return np.concatenate([bos, np.minimum(x, self.vocab_)], axis=1)

    def _keys(self, padded: np.ndarray, m: int, length: int) -> np.ndarray:
        """Keys of the m-grams ending at each of the last ``length`` positions, (n, length)."""
        n_cols = padded.shape[1]
        key = np.zeros((len(padded), length), dtype=np.int64)
        for j in range(m):
            start = n_cols - length - (m - 1) + j
            key = key * self.base + padded[:, start : start + length]
        return key

    def fit(self, data, *, warm_start=False, budget=None, rng=None) -> NGram:
        """Counts of every order on ``data``: the maximum-likelihood n-gram of these blocks.

        A warm start keeps the vocabulary and the prompts (the MLE has nothing else to carry);
        ``budget`` is ignored (the fit is exact).
        """
        x = self._check_tokens(data)
        if not (warm_start and getattr(self, "levels_", None)):
            self.vocab_ = int(self.vocab_size or int(x.max()) + 1)
            if self.order * np.log2(self.vocab_ + 1) > 62:
                raise InputError(f"order {self.order} with {self.vocab_} types overflows int64 "
                                 "n-gram keys; lower order or vocab_size")
            self.prompts_ = x[:, : self.prompt_len].copy()
            self.block_len = int(x.shape[1])
        levels = []
        padded = self._padded(x)
        valid = x < self.vocab_
        for m in range(1, self.order + 1):
            keys, counts = np.unique(self._keys(padded, m, x.shape[1])[valid], return_counts=True)
            levels.append((keys, counts.astype(np.int64)))
        self._set_levels(levels)
        return self

    def _set_levels(self, levels) -> None:
        self.levels_ = [_Level(np.asarray(k, np.int64), np.asarray(c, np.int64), self.base)
                        for k, c in levels]

    # ------------------------------------------------------------------ probabilities
    def _backoff(self, before: np.ndarray, length: int):
        """Per position (the last ``length`` columns of ``before`` end each context): the level
        used (the highest whose context was seen) and the index of its context."""
        level = np.full((len(before), length), -1, dtype=np.int64)
        index = np.zeros((len(before), length), dtype=np.int64)
        for m in range(self.order, 0, -1):
            lv = self.levels_[m - 1]
            ctx = self._keys(before, m - 1, length) if m > 1 else np.zeros_like(level)
            i, found = lv.context_rows(ctx.ravel())
            take = (level.ravel() < 0) & found
            level.ravel()[take] = m - 1
            index.ravel()[take] = i[take]
        return level, index

    def token_log_probs(self, blocks, reference: dict[str, Any] | None = None) -> np.ndarray:
        """log p(x_t | x_<t) of every token of ``blocks``, shape (n, L) (``-inf`` where 0).

        ``reference``: score under another state of this model (a :meth:`reference_state`),
        e.g. generation 0's, instead of the current one.
        """
        if reference is not None:
            return self._from_state(reference).token_log_probs(blocks)
        x = self._check_tokens(blocks, "blocks")
        padded, L = self._padded(x), x.shape[1]
        level, index = self._backoff(padded[:, :-1], L)
        logp = np.full((len(x), L), -np.inf)
        V, k = self.vocab_, self.add_k
        for m in range(1, self.order + 1):
            lv = self.levels_[m - 1]
            at = level == m - 1
            if not at.any():
                continue
            c = lv.count(self._keys(padded, m, L)[at])
            total = lv.totals[index[at]]
            with np.errstate(divide="ignore"):
                logp[at] = np.log((c + k) / (total + k * V))
        logp[x >= V] = -np.inf
        return logp

    def next_token_probs(self, contexts) -> np.ndarray:
        """Dense next-token distributions (R, V) after each row of ``contexts`` (R, C) (only
        the last ``order - 1`` tokens matter; shorter rows are read after beginning symbols)."""
        ctx = self._check_tokens(contexts, "contexts") if np.size(contexts) else np.zeros(
            (len(contexts), 0), np.int64)
        level, index = self._backoff(self._padded(ctx), 1)
        level, index = level[:, 0], index[:, 0]
        V, k = self.vocab_, self.add_k
        out = np.full((len(ctx), V), k, dtype=np.float64)
        total = np.zeros(len(ctx))
        for m in range(1, self.order + 1):
            lv = self.levels_[m - 1]
            rows = np.flatnonzero(level == m - 1)
            if not len(rows):
                continue
            lo, hi = lv.start[index[rows]], lv.stop[index[rows]]
            lengths = hi - lo
            entry = np.repeat(lo - np.cumsum(lengths) + lengths, lengths) + np.arange(
                lengths.sum())
            row_of = np.repeat(rows, lengths)
            out[row_of, lv.keys[entry] % self.base] += lv.counts[entry]
            total[rows] = lv.totals[index[rows]]
        return out / (total + k * V)[:, None]

    # ------------------------------------------------------------------ sampling
    def sample(self, n, *, rng, temperature=1.0, prompts: np.ndarray | None = None,
               length: int | None = None) -> np.ndarray:
        """``n`` blocks drawn token by token (tempered, top-k, top-p), int64 (n, block_len).

        With ``prompt_len`` > 0 each block starts with the prefix of a real block of the first
        fit (taken in order, cycling) and the rest is generated; ``prompts`` overrides them.
        """
        n = int(n)
        L = int(length or self.block_len)
        if prompts is None and self.prompt_len:
            prompts = self.prompts_[np.arange(n) % len(self.prompts_)]
        out = np.zeros((n, L), dtype=np.int64)
        start = 0 if prompts is None else min(prompts.shape[1], L)
        if start:
            out[:, :start] = prompts[:, :start]
        chunk = max(1, ROW_CHUNK_ELEMENTS // self.vocab_)
        plain = (float(temperature) == 1.0 and self.add_k == 0 and self.top_k is None
                 and self.top_p in (None, 1, 1.0))
        for t in range(start, L):
            u = rng.random(n)
            if plain:  # the exact MLE as it is: a sparse inverse CDF, no dense rows
                out[:, t] = self._sample_sparse(out[:, max(0, t - (self.order - 1)) : t], u)
                continue
            # one dense row per distinct context, shared by the blocks that are in it
            contexts, inverse = np.unique(out[:, max(0, t - (self.order - 1)) : t], axis=0,
                                          return_inverse=True)
            inverse = inverse.ravel()
            for a in range(0, len(contexts), chunk):
                p = self.next_token_probs(contexts[a : a + chunk])
                cdf = np.cumsum(truncate_rows(p, temperature, self.top_k, self.top_p), axis=1)
                rows = np.flatnonzero((inverse >= a) & (inverse < a + chunk))
                j = inverse[rows] - a
                # inverse CDF of each block's own context row, all rows in one searchsorted
                flat = (cdf / cdf[:, -1:] + 2.0 * np.arange(len(cdf))[:, None]).ravel()
                pick = np.searchsorted(flat, u[rows] + 2.0 * j, side="right") - j * self.vocab_
                out[rows, t] = np.minimum(pick, self.vocab_ - 1)
        return out

    def _sample_sparse(self, contexts: np.ndarray, u: np.ndarray) -> np.ndarray:
        """One token after each context from the counts themselves: the ``floor(u * total)``-th
        occurrence in the context's run of the cumulative counts."""
        level, index = self._backoff(self._padded(contexts), 1)
        level, index = level[:, 0], index[:, 0]
        tokens = np.zeros(len(contexts), dtype=np.int64)
        for m in range(1, self.order + 1):
            lv = self.levels_[m - 1]
            rows = np.flatnonzero(level == m - 1)
            if not len(rows):
                continue
            i = index[rows]
            first = lv.start[i]
            r = np.minimum(np.floor(u[rows] * lv.totals[i]).astype(np.int64), lv.totals[i] - 1)
            e = np.searchsorted(lv.cum, lv.cum[first] - lv.counts[first] + r, side="right")
            tokens[rows] = lv.keys[e] % self.base
        return tokens

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"order": self.order, "add_k": self.add_k, "vocab": self.vocab_,
                                 "block_len": self.block_len, "prompts": self.prompts_.copy()}
        for m, lv in enumerate(self.levels_, start=1):
            state[f"keys_{m}"], state[f"counts_{m}"] = lv.keys.copy(), lv.counts.copy()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state.get("order", self.order)) != self.order:
            raise InputError(f"the state is of an order-{state['order']} model, this one is of "
                             f"order {self.order}")
        self.vocab_ = int(state["vocab"])
        self.block_len = int(state["block_len"])
        self.prompts_ = np.asarray(state["prompts"], dtype=np.int64)
        self._set_levels([(state[f"keys_{m}"], state[f"counts_{m}"])
                          for m in range(1, self.order + 1)])

    def reference_state(self) -> dict[str, Any]:
        """What scoring under this generation later needs (its counts)."""
        return self.state_dict()

    def _from_state(self, state: dict[str, Any]) -> NGram:
        cached = getattr(self, "_reference", None)
        if cached is not None and cached[0] is state:
            return cached[1]
        other = NGram(int(state.get("order", self.order)), float(state.get("add_k", self.add_k)))
        other.load_state_dict(state)
        self._reference = (state, other)
        return other


def probe_contexts(rng: np.random.Generator, real, n: int = 32,
                   length: int = PROBE_CONTEXT) -> np.ndarray:
    """``n`` windows of ``length`` tokens (shorter blocks: all of them) from random real blocks."""
    real = np.asarray(real, dtype=np.int64)
    length = min(length, real.shape[1] - 1)
    rows = rng.integers(len(real), size=n)
    starts = rng.integers(real.shape[1] - length, size=n)
    return real[rows[:, None], starts[:, None] + np.arange(length)]
