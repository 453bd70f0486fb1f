"""Accumulate-subsample (Kazdan, Schaeffer et al., 2024): keep every synthetic set, train on a
fixed-size subsample.

Accumulating every synthetic set keeps the error bounded (Gerstgrasser et al., 2024) but the
training set grows without end. Kazdan et al. fix the compute: the pool still accumulates (the n
real points, then ``floor(lambda n)`` draws of the previous model each generation), but each
generation's model is trained on n points drawn from the pool without replacement. The real
points' share of the training set falls like ``1 / (1 + t lambda)``, so the error grows, but it
stays bounded. For the Gaussian MLE the expected moments are exact
(:func:`autophagy.theory.mitigations.accumulate_subsample_trajectory`), and the overlays draw
them beside the measurement.

Reference:
    | Kazdan, Schaeffer, Dey, Gerstgrasser, Rafailov, Donoho, Koyejo. Collapse or Thrive? Perils
    | and Promises of Synthetic Data in a Self-Generating World (2024).
    | https://arxiv.org/abs/2410.16713
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from autophagy.policies.base import Policy, parameter
from autophagy.theory.mitigations import accumulate_subsample_trajectory
from autophagy.theory.mixing import check_ratio


@dataclass(frozen=True)
class AccumulateSubsample(Policy):
    """Pool the real data and every synthetic set; train each generation on n points of the
    pool drawn without replacement (Kazdan et al., 2024)."""

    keeps_rows: ClassVar[bool] = True

    ratio: float = parameter(1.0, key="lambda", tag="lam",
                             help="new synthetic samples a generation, per real sample")
    name: ClassVar[str] = "accumulate_subsample"
    color: ClassVar[str] = "#e377c2"
    order: ClassVar[int] = 12

    def __post_init__(self):
        check_ratio(self.ratio, self.name)

    @property
    def label(self) -> str:
        return "accumulate-subsample" if self.ratio == 1 else \
            f"accumulate-subsample λ={self.ratio:g}"

    @property
    def lam(self) -> float:
        return float(self.ratio)

    def n_synthetic(self, n_real: int) -> int:
        return math.floor(self.ratio * n_real)

    def next_training_set(self, real, synthetic, state, *, rng, pool=None):
        past = state.get("synthetic")
        kept = synthetic if past is None else np.concatenate([past, synthetic])
        everything = np.concatenate([real, kept])
        chosen = rng.choice(len(everything), size=len(real), replace=False)
        return everything[np.sort(chosen)], {**state, "synthetic": kept}

    def gaussian_trajectory(self, *, n: int, generations: int, cov0: Any,
                            unbiased: bool = False, temperature: float = 1.0) -> Any:
        return accumulate_subsample_trajectory(n=n, generations=generations, cov0=cov0,
                                               lam=self.ratio, unbiased=unbiased,
                                               temperature=temperature)
