"""Curated retraining (Ferbach et al., 2024): keep one of K candidates by Bradley-Terry choice.

Each generation draws ``k`` candidates per kept sample from the previous model and keeps one of
each group with probability ``exp(beta r(x_i)) / sum_j exp(beta r(x_j))`` under a reward ``r``
(:mod:`autophagy.policies.rewards`). Fully synthetic, the kept set's law is ``p_t(x) H(x)`` with
``H(x) = E[K e^{beta r(x)} / (e^{beta r(x)} + sum_{i<K} e^{beta r(x_i)})]``: the expected reward
rises and the distribution concentrates on the reward's maximisers
(:mod:`autophagy.theory.curated` computes it exactly on a finite support). Mixing real data
keeps it stable: ``p_{t+1} = w p_data + (1 - w) p_t H``.

Why ``real_weight`` and not ``lambda``: the literature has three lambdas (PAPER.md). Here the
real data's *share of the training set* is ``real_weight`` (the paper's ``1 / (1 + lambda)``):
``0`` is the fully synthetic curated loop (n kept samples), ``w > 0`` keeps all n real samples
and ``round(n (1 - w) / w)`` curated ones.

Reference:
    | Ferbach, Bertrand, Bose, Gidel. Self-Consuming Generative Models with Curated Data
    | Provably Optimize Human Preferences (NeurIPS 2024). https://arxiv.org/abs/2407.09499
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from autophagy.errors import InputError
from autophagy.policies.base import Policy, parameter
from autophagy.policies.rewards import Reward, check_reward, make_reward, reward_needs, reward_spec
from autophagy.signatures import ArgumentError

REWARD_METRICS = ("reward_mean", "reward_var")


def bradley_terry_choice(
    rewards: np.ndarray, beta: float, rng: np.random.Generator
) -> np.ndarray:
    """Index of the kept candidate in each row of ``rewards`` (m, k).

    Row i keeps j with probability ``softmax(beta * rewards[i])_j``; ``beta = inf`` keeps the
    argmax (the first of tied maxima), ``beta = 0`` a uniform choice. One uniform draw per row.
    """
    r = np.asarray(rewards, dtype=np.float64)
    u = rng.random(len(r))
    if math.isinf(beta):
        return r.argmax(axis=1)
    logits = beta * (r - r.max(axis=1, keepdims=True))
    w = np.exp(logits)
    cdf = np.cumsum(w, axis=1)
    cdf /= cdf[:, -1:]
    return np.minimum((u[:, None] > cdf).sum(axis=1), r.shape[1] - 1)


@dataclass(frozen=True)
class Curated(Policy):
    """Keep one of ``k`` candidates per sample by Bradley-Terry choice under ``reward`` (Ferbach
    et al., 2024), with real data at share ``real_weight`` of the training set."""

    reward: Any = parameter("bump", sweep=False,
                            help="a reward name, {name: ..., options} or module:function")
    k: int = parameter(4, help="candidates drawn per kept sample")
    beta: float = parameter(1.0, help="Bradley-Terry inverse temperature (inf: keep the best)")
    real_weight: float = parameter(0.0, tag="rw",
                                   help="share of real data in the training set, in [0, 1)")
    name: ClassVar[str] = "curated"
    color: ClassVar[str] = "plasma"
    order: ClassVar[int] = 30

    def __post_init__(self):
        k, beta, w = self.k, self.beta, self.real_weight
        if isinstance(k, bool) or not isinstance(k, int | float) or k != int(k) or k < 1:
            raise InputError(f"k must be a whole number >= 1 for curated, got {k!r}")
        object.__setattr__(self, "k", int(k))
        if isinstance(beta, bool) or not isinstance(beta, int | float) or math.isnan(beta) \
                or beta < 0:
            raise InputError(f"beta must be a number >= 0 (inf: keep the best) for curated, "
                             f"got {beta!r}")
        if isinstance(w, bool) or not isinstance(w, int | float) or not 0 <= w < 1:
            raise InputError(f"real_weight must be a number in [0, 1) for curated, got {w!r}")
        object.__setattr__(self, "reward", reward_spec(self.reward))

    # -- self-description ---------------------------------------------------------------------
    @property
    def label(self) -> str:
        real = f", real {self.real_weight:.0%}" if self.real_weight else ""
        return f"curated k={self.k} β={self.beta:g}{real}"

    @property
    def lam(self) -> float:
        """Kept synthetic samples per real one (inf when fully synthetic)."""
        w = self.real_weight
        return math.inf if w == 0 else (1 - w) / w

    @property
    def needs(self) -> frozenset[str]:
        return reward_needs(self.reward)

    def extra_metrics(self) -> tuple[Any, ...]:
        """Reward mean and variance; for a class reward, the class histogram too."""
        n_classes = self.__dict__.get("_classes")
        if not n_classes:
            return REWARD_METRICS
        from autophagy.metrics.curation import class_share_metrics

        return (*REWARD_METRICS, *class_share_metrics(n_classes))

    # -- the reward -----------------------------------------------------------------------------
    def bind(self, dataset: Any) -> Curated:
        """A copy holding the reward built for ``dataset`` and tried on its real samples."""
        bound = dataclasses.replace(self)
        try:
            reward = check_reward(self.reward, dataset)
        except ValueError as err:
            raise ArgumentError("reward", str(err)) from None
        object.__setattr__(bound, "_reward", reward)
        if "classifier" in self.needs:
            from autophagy.metrics.classifier import DatasetClassifier

            object.__setattr__(bound, "_classes", DatasetClassifier.for_dataset(dataset).n_classes)
        return bound

    @property
    def reward_fn(self) -> Reward:
        """The reward (built without data unless :meth:`bind` gave it one)."""
        fn = self.__dict__.get("_reward")
        if fn is None:
            fn = make_reward(self.reward)
            object.__setattr__(self, "_reward", fn)
        return fn

    # -- behaviour ------------------------------------------------------------------------------
    def n_kept(self, n_real: int) -> int:
        """Curated samples in a training set: n fully synthetic, round(n (1-w)/w) with real data."""
        w = self.real_weight
        return n_real if w == 0 else round(n_real * (1 - w) / w)

    def n_synthetic(self, n_real: int) -> int:
        return self.k * self.n_kept(n_real)

    def curate(self, candidates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One Bradley-Terry pick from each consecutive group of ``k`` candidates."""
        m = len(candidates) // self.k
        groups = candidates[: m * self.k].reshape(m, self.k, *candidates.shape[1:])
        rewards = self.reward_fn(candidates[: m * self.k]).reshape(m, self.k)
        pick = bradley_terry_choice(rewards, float(self.beta), rng)
        return groups[np.arange(m), pick]

    def next_training_set(self, real, synthetic, state, *, rng, pool=None):
        kept = self.curate(synthetic, rng)
        if self.real_weight == 0:
            return kept, state
        return np.concatenate([real, kept]), state
