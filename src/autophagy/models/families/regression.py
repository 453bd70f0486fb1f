"""Linear regression on a fixed design: the conditional model of Gerstgrasser et al. (2024).

"Is Model Collapse Inevitable? Breaking the Curse of Recursion by Accumulating Real and Synthetic
Data" proves its theorem on least squares: a fixed design X of T points in d dimensions, labels
``y = X w* + noise`` (variance sigma^2), and each generation refits w on labels the previous fit
predicts plus fresh noise. Replacing the data makes the test error grow linearly,
``sigma^2 d / (T - d - 1) * t``; accumulating keeps it below ``pi^2 / 6`` times that constant
(:mod:`autophagy.theory.regression`).

How a conditional model fits the loop's unconditional interface: a data row is one (x, y) pair,
the features first and the label in the last column, so real and synthetic rows concatenate and
every policy works unchanged. ``fit`` regresses the last column on the others by least squares;
``sample(n)`` returns the design's own x rows with new labels ``x w_hat + noise``. The design is
the x rows of the training set last fitted, in order, cycled when more rows are asked for; the
policies put the real rows first, so n = T (``fully_synthetic``, ``accumulate`` at lambda = 1)
gives back exactly X, and floor(k T) rows k copies of it. Why the design and not new x: the
theorem is about refitting labels on a *fixed* design, and a model of y | x says nothing about
the law of x; a family that also modelled x would be a joint Gaussian, which ``gaussian``
already is.

The noise of the synthetic labels is ``noise_std`` when given (the theorem's known sigma), else
each fit's unbiased residual estimate ``sqrt(RSS / (N - d))``. Replacing keeps the expected
error of the theorem either way (the estimate is unbiased at each step); accumulating with an
estimated noise adds the spread between the stacked label sets to the residuals, so the
theorem's bound is stated for a known sigma. Sampling at temperature tau is exact:
``p(y | x)^(1/tau)`` is the Gaussian of variance ``tau sigma^2``; the empirical design is left as
it is (tempering equal weights changes nothing).

Example:
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((20, 3)); y = x @ [1.0, 2.0, 3.0] + rng.standard_normal(20)
    >>> model = LinearRegression(noise_std=1.0).fit(np.column_stack([x, y]), rng=rng)
    >>> model.sample(20, rng=rng).shape
    (20, 4)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autophagy.errors import InputError
from autophagy.theory.sampling import check_temperature


class LinearRegression:
    """Least squares of the last column on the others; samples (x from the design, x w + noise).

    Arguments:
        noise_std: standard deviation of the synthetic labels' noise (the theorem's known
            sigma); ``None``: estimate it at every fit from the residuals (``RSS / (N - d)``).
    """

    sampling_temperature = "exact"
    closed_form = "regression"  # theory.regression: expected test error
    identifiable = True

    def __init__(self, noise_std: float | None = None):
        if noise_std is not None and not (
            isinstance(noise_std, int | float) and not isinstance(noise_std, bool)
            and np.isfinite(noise_std) and noise_std >= 0
        ):
            raise InputError(f"noise_std must be a number >= 0 or null, got {noise_std!r}")
        self.noise_std = None if noise_std is None else float(noise_std)

    @staticmethod
    def _split(data: Any) -> tuple[np.ndarray, np.ndarray]:
        rows = np.asarray(data, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] < 2:
            raise InputError(
                "linear_regression needs rows (x_1, ..., x_d, y): an array of shape (n, d + 1) "
                f"with d >= 1, got shape {rows.shape}"
            )
        return rows[:, :-1], rows[:, -1]

    def fit(self, data, *, warm_start=False, budget=None, rng=None) -> LinearRegression:
        """``coef_`` by least squares of y on x (no intercept: add a column of ones for one)."""
        x, y = self._split(data)
        n, d = x.shape
        coef, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
        if rank < d:
            raise InputError(
                f"the design has rank {rank} < {d} features: least squares is not unique "
                f"(need at least {d} rows in general position, got {n})"
            )
        if self.noise_std is not None:
            sigma = self.noise_std
        elif n > d:
            sigma = float(np.sqrt(np.sum((y - x @ coef) ** 2) / (n - d)))
        else:
            raise InputError(f"estimating the noise needs more rows than features ({n} <= {d}); "
                             "give noise_std")
        self.coef_, self.noise_std_, self.design_ = coef, sigma, x.copy()
        return self

    def predict(self, x: Any) -> np.ndarray:
        """``x w_hat`` for feature rows x of shape (n, d)."""
        return np.asarray(x, dtype=np.float64) @ self.coef_

    def sample(self, n, *, rng, temperature=1.0) -> np.ndarray:
        """Rows (x, x w_hat + sqrt(tau) sigma z), x the design's rows in order, cycled."""
        t = check_temperature(temperature)
        x = self.design_[np.arange(int(n)) % len(self.design_)]
        y = x @ self.coef_ + np.sqrt(t) * self.noise_std_ * rng.standard_normal(int(n))
        return np.column_stack([x, y])

    def state_dict(self) -> dict[str, Any]:
        return {"coef": self.coef_.copy(), "noise_std": self.noise_std_,
                "design": self.design_.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.coef_ = np.asarray(state["coef"], dtype=np.float64)
        self.noise_std_ = float(state["noise_std"])
        self.design_ = np.asarray(state["design"], dtype=np.float64)
