"""How a metric sees one generation.

Every metric is a function of an :class:`EvalContext` returning a float. The loop builds the
context once per generation: ``samples`` are drawn from the model with the evaluation RNG stream,
which is derived from (seed, generation) and never shared with training, so adding or removing a
metric does not change the training trajectory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autophagy.data.base import Dataset


@dataclass
class EvalContext:
    model: Any
    samples: np.ndarray
    held_out: np.ndarray
    dataset: Dataset
    rng: np.random.Generator
    reference: dict[str, Any] = field(default_factory=dict)
    """What generation 0 looked like (``mean``, ``cov`` of the first fit), for drift metrics."""
    features: str = "auto"
    """Feature extractor of the feature-space metrics (config ``eval.features``)."""
    inception: str | None = None
    """Path of the Inception TorchScript file (else ``$AUTOPHAGY_INCEPTION``)."""


@dataclass(frozen=True)
class Metric:
    """A named metric. ``applies`` says whether it can be computed for a context (for example
    held-out NLL needs ``log_prob``; parameter errors need a dataset with a known Gaussian)."""

    name: str
    compute: Callable[[EvalContext], float]
    description: str
    applies: Callable[[EvalContext], bool] = lambda ctx: True
    lower_is_better: bool = True

    def __call__(self, ctx: EvalContext) -> float:
        return float(self.compute(ctx))
