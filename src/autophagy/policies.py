"""How each generation's training set is built from real data and the previous model's samples.

Each policy is a small frozen dataclass: it says how many synthetic samples it wants
(:meth:`Policy.n_synthetic`) and builds the next training set from arrays
(:meth:`Policy.next_training_set`). Anything it must remember between generations (the
accumulated synthetic sets) lives in an explicit ``state`` dict that the loop checkpoints, so a
resumed run continues exactly.

Three meanings of "lambda" exist in the literature; here ``lam`` is always Bertrand et al.'s
synthetic-to-real *ratio* (lambda = 1: half of the training set is synthetic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

State = dict[str, Any]


@dataclass(frozen=True)
class Policy:
    name: ClassVar[str] = ""
    uses_lambda: ClassVar[bool] = False

    def n_synthetic(self, n_real: int) -> int:
        """How many samples to draw from the previous generation."""
        raise NotImplementedError

    def next_training_set(
        self,
        real: np.ndarray,
        synthetic: np.ndarray,
        state: State,
        *,
        rng: np.random.Generator,
        pool: np.ndarray | None = None,
    ) -> tuple[np.ndarray, State]:
        """Return (training set for this generation, updated state)."""
        raise NotImplementedError

    @property
    def lam(self) -> float:
        return math.nan

    @property
    def label(self) -> str:
        return self.name

    def check(self, n_real: int, pool: np.ndarray | None) -> None:
        """Raise ``ValueError`` if the policy cannot run on this data."""


@dataclass(frozen=True)
class Mixed(Policy):
    """All n real samples plus floor(lambda * n) fresh synthetic ones (Bertrand et al., Alg. 1).

    Stable when lambda (1 + L eps / alpha) < 1 and the first model is good enough.
    """

    ratio: float = 1.0
    name: ClassVar[str] = "mixed"
    uses_lambda: ClassVar[bool] = True

    def __post_init__(self):
        if not (math.isfinite(self.ratio) and self.ratio >= 0):
            raise ValueError(f"lambda must be a finite number >= 0, got {self.ratio!r}")

    @property
    def lam(self) -> float:
        return float(self.ratio)

    @property
    def label(self) -> str:
        return f"mixed λ={self.ratio:g}"

    def n_synthetic(self, n_real: int) -> int:
        return math.floor(self.ratio * n_real)

    def next_training_set(self, real, synthetic, state, *, rng, pool=None):
        return np.concatenate([real, synthetic]), state


@dataclass(frozen=True)
class FullySynthetic(Policy):
    """n samples of the previous model only: the self-consuming loop that collapses."""

    name: ClassVar[str] = "fully_synthetic"

    def n_synthetic(self, n_real: int) -> int:
        return n_real

    def next_training_set(self, real, synthetic, state, *, rng, pool=None):
        return synthetic, state


@dataclass(frozen=True)
class Accumulate(Policy):
    """Real data plus every synthetic set so far (Gerstgrasser et al., 2024): error stays bounded.

    Each generation adds floor(lambda * n) new synthetic samples (lambda = 1 by default).
    """

    ratio: float = 1.0
    name: ClassVar[str] = "accumulate"
    uses_lambda: ClassVar[bool] = True

    def __post_init__(self):
        if not (math.isfinite(self.ratio) and self.ratio > 0):
            raise ValueError(
                f"lambda must be a finite number > 0 for accumulate, got {self.ratio!r}"
            )

    @property
    def lam(self) -> float:
        return float(self.ratio)

    @property
    def label(self) -> str:
        return "accumulate" if self.ratio == 1 else f"accumulate λ={self.ratio:g}"

    def n_synthetic(self, n_real: int) -> int:
        return max(1, math.floor(self.ratio * n_real))

    def next_training_set(self, real, synthetic, state, *, rng, pool=None):
        past = state.get("synthetic")
        kept = synthetic if past is None else np.concatenate([past, synthetic])
        return np.concatenate([real, kept]), {**state, "synthetic": kept}


@dataclass(frozen=True)
class FreshReal(Policy):
    """Each generation: floor(fraction * n) new real samples from a held-back pool, the rest
    synthetic (the "fresh data loop" of Alemohammad et al., 2023)."""

    fraction: float = 0.5
    name: ClassVar[str] = "fresh_real"

    def __post_init__(self):
        if not (0 < self.fraction <= 1):
            raise ValueError(f"fraction must be in (0, 1] for fresh_real, got {self.fraction!r}")

    @property
    def label(self) -> str:
        return f"fresh_real {self.fraction:.0%}"

    def n_fresh(self, n_real: int) -> int:
        return max(1, math.floor(self.fraction * n_real))

    def n_synthetic(self, n_real: int) -> int:
        return n_real - self.n_fresh(n_real)

    def check(self, n_real, pool):
        need = self.n_fresh(n_real)
        have = 0 if pool is None else len(pool)
        if have < need:
            raise ValueError(
                f"data.n_pool: fresh_real with fraction {self.fraction:g} draws {need} new real "
                f"samples a generation but the pool holds {have}; set data.n_pool >= {need}"
            )

    def next_training_set(self, real, synthetic, state, *, rng, pool=None):
        self.check(len(real), pool)
        fresh = pool[rng.choice(len(pool), size=self.n_fresh(len(real)), replace=False)]
        return np.concatenate([fresh, synthetic]), state


POLICIES: dict[str, tuple[type[Policy], str]] = {
    "mixed": (Mixed, "all real + floor(lambda*n) synthetic samples (the paper's scheme)"),
    "fully_synthetic": (FullySynthetic, "n synthetic samples only: the collapsing loop"),
    "accumulate": (Accumulate, "real + every earlier synthetic set (lambda*n added a generation)"),
    "fresh_real": (FreshReal, "fraction of new real samples from a held-back pool + synthetic"),
}


def make_policy(name: str, *, lam: float | None = None, fraction: float | None = None) -> Policy:
    """Build a policy by name; ``lam`` feeds mixed/accumulate, ``fraction`` feeds fresh_real."""
    if name not in POLICIES:
        raise ValueError(
            f"loop.policy: unknown policy {name!r}; choose from: {', '.join(POLICIES)}"
        )
    cls = POLICIES[name][0]
    if cls.uses_lambda:
        return cls() if lam is None else cls(float(lam))
    if cls is FreshReal:
        return cls() if fraction is None else cls(float(fraction))
    return cls()


def parse_policy(spec: str | Policy) -> Policy:
    """Parse "mixed:0.5", "fully_synthetic", "fresh_real:0.3", ... (or pass a Policy through)."""
    if isinstance(spec, Policy):
        return spec
    name, _, arg = str(spec).partition(":")
    if not arg:
        return make_policy(name)
    try:
        value = float(arg)
    except ValueError:
        raise ValueError(f"policy {spec!r}: the part after ':' must be a number") from None
    if name == "fresh_real":
        return make_policy(name, fraction=value)
    if not POLICIES.get(name, (Policy,))[0].uses_lambda:
        raise ValueError(f"policy {spec!r}: {name} takes no number")
    return make_policy(name, lam=value)
