"""What the loop needs from a dataset: a training set, a disjoint held-out set, and a reserve.

``train`` is what generation 0 fits (and the real share of every later generation); ``test`` is
used only for evaluation, never for fitting; ``pool`` is a held-back reserve of further real
samples, disjoint from both, from which the ``fresh_real`` policy draws new real data.
``params`` carries what is known of the true distribution (for a Gaussian: ``mean`` and ``cov``),
so that metrics and theory can compare fits with the truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np


@dataclass
class Dataset:
    name: str
    train: np.ndarray
    test: np.ndarray
    pool: np.ndarray | None = None
    kind: Literal["points", "images", "text"] = "points"
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one sample."""
        return tuple(self.train.shape[1:])

    @property
    def dim(self) -> int:
        """Number of scalar features of one sample."""
        return int(np.prod(self.shape))

    def __repr__(self) -> str:
        pool = 0 if self.pool is None else len(self.pool)
        return (
            f"Dataset({self.name!r}, kind={self.kind}, shape={self.shape}, "
            f"train={len(self.train)}, test={len(self.test)}, pool={pool})"
        )
