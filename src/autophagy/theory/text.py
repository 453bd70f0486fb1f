"""Vanishing tails in closed form: a categorical law (a unigram) refitted on its own samples.

A type of a categorical fitted by maximum likelihood on ``m`` draws from the previous fit keeps a
count that, *alone*, is a Markov chain: given its count the next one is binomial, whatever the
other types do. So the law of each type's count at every generation is exact by propagating a
vector through a (binomial) transition matrix, and the expected number of surviving types, or
of types seen in a sample, is a sum over types. With ``a_i`` real occurrences of type ``i`` among
``a`` real tokens in every training set (the ``mixed`` policy; ``a = 0``: fully synthetic),

    p_0(i) = c_i / N_0,   Y_1 ~ Bin(m, p_0(i)),   p_t(i) = (a_i + Y_t) / (a + m),
    Y_{t+1} | Y_t ~ Bin(m, p_t(i)).

Fully synthetic, a type that reaches 0 is gone for good (the tail vanishes, Shumailov et al.
2024); with real data no real type is ever lost from the model, only from finite samples of it.
The expected mass of any fixed set of types (the tail outside the top k) does not move at all,
fully synthetic or mixed: ``E[p_{t+1}] = (a + m E[p_t]) / (a + m)`` with ``p_0 = a_i / a``, and
fully synthetic ``p_t`` is a martingale. The tails vanish in the typical run, not on average.

Types seen more than :data:`EXACT_BELOW` (100) times are not propagated: their chance of being
lost within the horizon is negligible (about that of a critical Poisson branching process
started from 100: 3e-8 within 10 generations, 1e-4 within 20), so they count as surviving, at
their mean probability.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binom

from autophagy.errors import InputError

EXACT_BELOW = 100
"""Types seen more often than this are counted as surviving (see the module docstring)."""
STATE_CAP = 2000
"""Largest count a propagated type's chain tracks; beyond it, the (tiny) mass is dropped."""


def _counts(counts) -> np.ndarray:
    c = np.asarray(counts)
    if c.ndim != 1 or c.size == 0 or (c < 0).any() or (np.round(c) != c).any():
        raise InputError("counts must be a non-empty 1-D array of whole numbers >= 0")
    return c.astype(np.int64)


def type_chains(counts, m: int, generations: int, real_counts=None):
    """The law of each type's count Y_t for t = 1..T: ``(states, laws, rows)``.

    ``counts``: type counts of the generation-0 fit (its N_0 = their sum); ``m``: draws a
    generation; ``real_counts``: the real counts a_i in every training set (``None``: fully
    synthetic). Returns ``states`` (the tracked counts 0..K), ``laws`` of shape
    (T, n_groups, K + 1) and ``rows``: for each type its group (``-1``: not propagated, seen
    more than :data:`EXACT_BELOW` times). Types are grouped by (c_i, a_i).
    """
    c = _counts(counts)
    a_i = np.zeros_like(c) if real_counts is None else _counts(real_counts)
    if a_i.shape != c.shape:
        raise InputError("real_counts must have one entry per type, as counts")
    m, T = int(m), int(generations)
    if m < 1 or T < 0:
        raise InputError(f"m must be >= 1 and generations >= 0, got {m}, {generations}")
    a, n0 = int(a_i.sum()), int(c.sum())
    small = c <= EXACT_BELOW
    pairs, inverse = np.unique(np.stack([c[small], a_i[small]], 1), axis=0, return_inverse=True)
    rows = np.full(len(c), -1)
    rows[small] = inverse.ravel()
    K = min(m, STATE_CAP)
    states = np.arange(K + 1)
    if T == 0 or not len(pairs):
        return states, np.zeros((T, len(pairs), K + 1)), rows
    laws = np.empty((T, len(pairs), K + 1))
    law = binom.pmf(states[None, :], m, (pairs[:, 0] / n0)[:, None])
    laws[0] = law
    for t in range(1, T):
        # law' [g, y'] = sum_y law[g, y] Bin(y'; m, (a_g + y) / (a + m))
        p = np.clip((pairs[:, 1:2] + states[None, :]) / (a + m), 0.0, 1.0)  # (g, y)
        nxt = np.zeros_like(law)
        for g in range(len(pairs)):
            live = np.flatnonzero(law[g] > 1e-18)  # the rest of the law is dropped
            top = int(live.max())
            cols = states[: min(K, int(top + 12 * np.sqrt(top + 1) + 30)) + 1]
            kernel = binom.pmf(cols[None, :], m, p[g, live][:, None])  # (y, y')
            nxt[g, : len(cols)] = law[g, live] @ kernel
        law = nxt
        laws[t] = law
    return states, laws, rows


def expected_surviving_types(counts, m: int, generations: int, real_counts=None) -> np.ndarray:
    """E[number of types with p_t > 0] for t = 0..T (fully synthetic or mixed, see module)."""
    c = _counts(counts)
    a_i = np.zeros_like(c) if real_counts is None else _counts(real_counts)
    states, laws, rows = type_chains(c, m, generations, real_counts)
    out = [float((c > 0).sum())]
    small = rows >= 0
    has_real = np.zeros(laws.shape[1], dtype=bool)
    has_real[rows[small]] = a_i[small] > 0  # a real type is never lost from the model
    groups = np.bincount(rows[small], minlength=laws.shape[1])
    big = int(((rows < 0) & (c > 0)).sum())
    for t in range(int(generations)):
        alive = np.where(has_real, 1.0, 1.0 - laws[t][:, 0])
        out.append(big + float(groups @ alive))
    return np.array(out)


def expected_types_seen(counts, m: int, generations: int, n_draws: int,
                        real_counts=None) -> np.ndarray:
    """E[number of distinct types among ``n_draws`` draws from p_t] for t = 0..T (what the
    ``types`` metric measures on a sample of ``n_draws`` tokens)."""
    c = _counts(counts)
    a_i = np.zeros_like(c) if real_counts is None else _counts(real_counts)
    states, laws, rows = type_chains(c, m, generations, real_counts)
    a, N = int(a_i.sum()), int(n_draws)
    p0 = c / c.sum()
    out = [float(np.sum(1 - (1 - p0) ** N))]
    small = rows >= 0
    big_seen = float(np.sum(1 - (1 - p0[~small]) ** N))  # their p_t stays near p_0
    group_a = np.zeros(laws.shape[1])
    group_a[rows[small]] = a_i[small]
    groups = np.bincount(rows[small], minlength=laws.shape[1])
    for t in range(int(generations)):
        p = (group_a[:, None] + states[None, :]) / (a + m)
        seen = (laws[t] * (1 - (1 - np.clip(p, 0, 1)) ** N)).sum(axis=1)
        out.append(big_seen + float(groups @ seen))
    return np.array(out)


def expected_tail_mass(counts, generations: int, top_k: int) -> np.ndarray:
    """E[mass outside the ``top_k`` most frequent types of ``counts``] for t = 0..T: constant,
    fully synthetic or mixed with the same real counts (a martingale, see the module)."""
    c = _counts(counts)
    top = np.argsort(-c, kind="stable")[: int(top_k)]
    return np.full(int(generations) + 1, 1.0 - c[top].sum() / c.sum())


def simulate_types(counts, m: int, generations: int, n_runs: int, rng: np.random.Generator,
                   real_counts=None, n_draws: int | None = None) -> dict[str, np.ndarray]:
    """Monte Carlo of the same loop: ``surviving`` types (n_runs, T + 1), and, with ``n_draws``,
    ``seen`` types in a sample of that many draws, and ``p`` the final laws (n_runs, V)."""
    c = _counts(counts)
    a_i = np.zeros_like(c) if real_counts is None else _counts(real_counts)
    a = int(a_i.sum())
    p = np.tile(c / c.sum(), (int(n_runs), 1))
    surviving, seen = [(p > 0).sum(1)], []
    if n_draws:
        seen.append((rng.multinomial(n_draws, p) > 0).sum(1))
    for _ in range(int(generations)):
        y = rng.multinomial(int(m), p)
        p = (a_i[None, :] + y) / (a + int(m))
        surviving.append((p > 0).sum(1))
        if n_draws:
            seen.append((rng.multinomial(n_draws, p) > 0).sum(1))
    out = {"surviving": np.stack(surviving, 1), "p": p}
    if n_draws:
        out["seen"] = np.stack(seen, 1)
    return out


def naive_surviving_types(counts, m: int, generations: int) -> np.ndarray:
    """A *wrong* formula kept to be refuted by simulation: each generation a type survives
    independently with its generation-0 chance, ``sum_i (1 - (1 - p_0(i))^m)^t``. It ignores
    that a survivor's probability drifts (up as often as down), so it loses types too fast."""
    c = _counts(counts)
    p0 = c / c.sum()
    keep = 1 - (1 - p0) ** int(m)
    return np.array([float(np.sum(np.where(c > 0, keep ** t, 0.0)))
                     for t in range(int(generations) + 1)])
