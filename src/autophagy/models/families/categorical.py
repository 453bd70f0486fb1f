"""A categorical distribution on a finite set of atoms: where temperature can be seen exactly.

Marchi et al. (2024), "Heat death of generative models in closed-loop learning": sampling at a
temperature tau != 1 without enough external data degenerates the loop. On a finite support the
maximum-likelihood fit is the empirical frequency, and sampling at temperature tau draws from
``p^(1/tau)`` normalised *exactly*, so with infinitely many samples a generation

    p_t ∝ p_0^(1/tau^t):  to the argmax for tau < 1, to uniform (on p_0's support) for tau > 1,

while at tau = 1 with finitely many samples the frequencies perform a Wright-Fisher walk that is
absorbed at a vertex (atom i with probability p_0(i)). :mod:`autophagy.theory.categorical` has
the closed forms; the ``mixed`` policy's real data holds the fixed point away from the vertices.

The atoms are the distinct rows of the data (labels, or integer codes), or points snapped to a
grid of spacing ``grid`` (``round(x / grid) * grid``). The support is every atom seen so far; an
atom the loop stops producing keeps probability 0 (it is lost for good, as in the theory).

Example:
    >>> model = Categorical().fit(np.array([[0.], [0.], [1.]]), rng=np.random.default_rng(0))
    >>> model.probabilities()
    array([0.66666667, 0.33333333])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autophagy.errors import InputError
from autophagy.theory.sampling import check_temperature, tempered  # noqa: F401


class Categorical:
    """Empirical frequencies on a finite support; samples exactly from ``p^(1/temperature)``.

    Arguments:
        grid: snap points to a grid of this spacing before counting (``None``: the rows are the
            atoms as given, e.g. labels).
    """

    sampling_temperature = "exact"
    identifiable = True

    def __init__(self, grid: float | None = None):
        if grid is not None and not (
            isinstance(grid, int | float) and not isinstance(grid, bool) and np.isfinite(grid)
            and grid > 0
        ):
            raise InputError(f"grid must be a positive number or null, got {grid!r}")
        self.grid = None if grid is None else float(grid)

    def _snap(self, data: Any) -> np.ndarray:
        x = np.asarray(data, dtype=np.float64).reshape(len(data), -1)
        if self.grid is not None:
            x = np.round(x / self.grid) * self.grid
        return x

    def fit(self, data, *, warm_start=False, budget=None, rng=None) -> Categorical:
        """Frequencies of the atoms of ``data`` on the support seen so far."""
        x = self._snap(data)
        if len(x) == 0:
            raise InputError("need at least one sample to fit a categorical distribution")
        old = getattr(self, "support_", None)
        atoms = x if old is None or old.shape[1] != x.shape[1] else np.concatenate([old, x])
        support, inverse = np.unique(atoms, axis=0, return_inverse=True)
        counts = np.bincount(inverse.ravel()[len(atoms) - len(x):], minlength=len(support))
        self.support_ = support
        self.probs_ = counts / counts.sum()
        return self

    def probabilities(self) -> np.ndarray:
        """The probability of each atom of ``support_`` (sums to 1)."""
        return self.probs_.copy()

    def sample(self, n, *, rng, temperature=1.0) -> np.ndarray:
        """``n`` atoms drawn from ``p^(1/temperature)`` normalised: exact at any temperature."""
        q = tempered(self.probs_, temperature)
        idx = rng.choice(len(q), size=int(n), p=q)
        return self.support_[idx]

    def state_dict(self) -> dict[str, Any]:
        return {"support": self.support_.copy(), "probs": self.probs_.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.support_ = np.asarray(state["support"], dtype=np.float64)
        self.probs_ = np.asarray(state["probs"], dtype=np.float64)
