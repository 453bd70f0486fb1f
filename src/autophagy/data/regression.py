"""Rows (x, y) of a linear model with Gaussian design: the data of Gerstgrasser et al. (2024).

``x ~ N(0, I_d)``, ``y = x w* + sigma z``: the last column is the label, the others the
features, as :class:`~autophagy.models.families.regression.LinearRegression` reads them. The
training
split is the theorem's fixed design of T = ``n_train`` points; the test split is fresh draws.
The truth (``coef``, ``noise``, the design's covariance ``design_cov``) goes into
``Dataset.params`` so the ``test_error`` metric measures ``||w_hat - w*||^2_Sigma`` exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autophagy.data.points import _start, check_int, check_number
from autophagy.errors import InputError


def regression_params(*, dim: int = 10, noise: float = 1.0, coef: Any = None) -> dict[str, Any]:
    """The true ``coef`` (d,) (default all ones), ``noise`` sigma and ``design_cov`` I_d."""
    dim = check_int(dim, "dim", 1)
    noise = check_number(noise, "noise")
    if coef is None:
        w = np.ones(dim)
    else:
        try:
            w = np.asarray(coef, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise InputError(f"coef must be a list of {dim} numbers, got {coef!r}") from None
        if w.size != dim or not np.all(np.isfinite(w)):
            raise InputError(f"coef must be a list of {dim} finite numbers (dim), got {coef!r}")
    return {"coef": w, "noise": noise, "design_cov": np.eye(dim)}


def linear_regression(
    n: int, rng: np.random.Generator, *, dim: int = 10, noise: float = 1.0, coef: Any = None
) -> np.ndarray:
    """``n`` rows (x, y), shape (n, dim + 1): x ~ N(0, I), y = x coef + noise z."""
    n, rng = _start(n, rng)
    truth = regression_params(dim=dim, noise=noise, coef=coef)
    x = rng.standard_normal((n, truth["coef"].size))
    y = x @ truth["coef"] + truth["noise"] * rng.standard_normal(n)
    return np.column_stack([x, y])
