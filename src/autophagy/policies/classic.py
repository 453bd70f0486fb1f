"""The classic loops: mixed (the paper's), fully synthetic, accumulate, fresh real data.

Each declares its closed-form scheme (:meth:`~autophagy.policies.base.Policy.mixing`) and counts
its synthetic samples through it, so the theory and the loop count alike by construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from autophagy.errors import InputError
from autophagy.policies.base import Policy, parameter
from autophagy.theory.mixing import Mixing, check_ratio


@dataclass(frozen=True)
class _SyntheticRatio(Policy):
    """What mixed and accumulate share: lambda (checked), and the count through their scheme."""

    keeps_rows: ClassVar[bool] = True

    ratio: float = parameter(1.0, key="lambda", tag="lam", help="synthetic-to-real ratio")
    anchor: ClassVar[str] = "real"

    def __post_init__(self):
        check_ratio(self.ratio, self.name)

    @property
    def lam(self) -> float:
        return float(self.ratio)

    def mixing(self) -> Mixing:
        return Mixing(self.anchor, ratio=float(self.ratio))  # type: ignore[arg-type]

    def n_synthetic(self, n_real: int) -> int:
        return self.mixing().n_synthetic(n_real)


@dataclass(frozen=True)
class Mixed(_SyntheticRatio):
    """All n real samples plus floor(lambda * n) fresh synthetic ones (Bertrand et al., Alg. 1).

    Stable when lambda (1 + L eps / alpha) < 1 and the first model is good enough.
    """

    name: ClassVar[str] = "mixed"
    color: ClassVar[str] = "viridis"
    order: ClassVar[int] = 0

    @property
    def label(self) -> str:
        return f"mixed λ={self.ratio:g}"

    def next_training_set(self, real, synthetic, state, *, rng, pool=None):
        return np.concatenate([real, synthetic]), state


@dataclass(frozen=True)
class FullySynthetic(Policy):
    """n samples of the previous model only: the self-consuming loop that collapses."""

    keeps_rows: ClassVar[bool] = True

    name: ClassVar[str] = "fully_synthetic"
    color: ClassVar[str] = "#d62728"
    order: ClassVar[int] = 100

    @property
    def lam(self) -> float:
        return math.inf

    def mixing(self) -> Mixing:
        return Mixing("none")

    def n_synthetic(self, n_real: int) -> int:
        return self.mixing().n_synthetic(n_real)

    def next_training_set(self, real, synthetic, state, *, rng, pool=None):
        return synthetic, state


@dataclass(frozen=True)
class Accumulate(_SyntheticRatio):
    """Real data plus every synthetic set so far (Gerstgrasser et al., 2024): error stays bounded.

    Each generation adds floor(lambda * n) new synthetic samples (lambda = 1 by default).
    """

    ratio: float = parameter(1.0, key="lambda", tag="lam",
                             help="new synthetic samples a generation, per real sample")
    name: ClassVar[str] = "accumulate"
    anchor: ClassVar[str] = "past"
    color: ClassVar[str] = "#ff7f0e"
    order: ClassVar[int] = 10

    @property
    def label(self) -> str:
        return "accumulate" if self.ratio == 1 else f"accumulate λ={self.ratio:g}"

    def next_training_set(self, real, synthetic, state, *, rng, pool=None):
        past = state.get("synthetic")
        kept = synthetic if past is None else np.concatenate([past, synthetic])
        return np.concatenate([real, kept]), {**state, "synthetic": kept}


@dataclass(frozen=True)
class FreshReal(Policy):
    """Each generation: floor(fraction * n) new real samples from a held-back pool, the rest
    synthetic (the "fresh data loop" of Alemohammad et al., 2023)."""

    keeps_rows: ClassVar[bool] = True

    fraction: float = parameter(0.5, tag="frac", help="share of fresh real samples a generation")
    name: ClassVar[str] = "fresh_real"
    needs_pool: ClassVar[bool] = True
    color: ClassVar[str] = "#8c564b"
    order: ClassVar[int] = 20

    def __post_init__(self):
        if not (0 < self.fraction <= 1):
            raise InputError(f"fraction must be in (0, 1] for fresh_real, got {self.fraction!r}")

    @property
    def label(self) -> str:
        return f"fresh_real {self.fraction:.0%}"

    def mixing(self) -> Mixing:
        return Mixing("fresh", fraction=float(self.fraction))

    def n_fresh(self, n_real: int) -> int:
        return self.mixing().n_fresh(n_real)

    def n_synthetic(self, n_real: int) -> int:
        return self.mixing().n_synthetic(n_real)

    def pool_size(self, n_real: int) -> int:
        return 20 * self.n_fresh(n_real)

    def check(self, n_real, pool):
        need = self.n_fresh(n_real)
        have = 0 if pool is None else len(pool)
        if have < need:
            raise InputError(
                f"fresh_real with fraction {self.fraction:g} draws {need} new real samples a "
                f"generation but the pool holds {have}; give a pool of at least {need} samples"
            )

    def next_training_set(self, real, synthetic, state, *, rng, pool=None):
        self.check(len(real), pool)
        fresh = pool[rng.choice(len(pool), size=self.n_fresh(len(real)), replace=False)]
        return np.concatenate([fresh, synthetic]), state
