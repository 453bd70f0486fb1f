"""Metrics of a conditional (regression) model: the test error of Gerstgrasser et al. (2024).

- ``test_error``: the excess risk ``E_x (x w_hat - x w*)^2 = (w_hat - w*)^T Sigma (w_hat - w*)``,
  exact from the dataset's truth (``coef``, ``design_cov``): the quantity of the theorem, with
  no Monte-Carlo noise from a test set. It applies to a model with a ``coef_`` on a dataset that
  knows its ``coef`` (the ``linear_regression`` dataset).
- ``test_mse``: the mean squared error of the predictions on the held-out rows (x, y), which
  estimates ``sigma^2 + test_error`` on any (x, y) data.
"""

from __future__ import annotations

import numpy as np

from autophagy.metrics.base import EvalContext, Metric

__all__ = ["REGRESSION_METRICS"]


def _coef(ctx: EvalContext) -> np.ndarray | None:
    coef = getattr(ctx.model, "coef_", None)
    return None if coef is None else np.asarray(coef, dtype=np.float64).reshape(-1)


def _regressor(ctx: EvalContext) -> bool:
    coef = _coef(ctx)
    held = np.asarray(ctx.held_out)
    return coef is not None and held.ndim == 2 and held.shape[1] == coef.size + 1


def _has_truth(ctx: EvalContext) -> bool:
    return _regressor(ctx) and "coef" in ctx.dataset.params


def _test_error(ctx: EvalContext) -> float:
    delta = _coef(ctx) - np.asarray(ctx.dataset.params["coef"], dtype=np.float64).reshape(-1)
    cov = np.asarray(ctx.dataset.params.get("design_cov", np.eye(delta.size)), dtype=np.float64)
    return float(delta @ cov @ delta)


def _test_mse(ctx: EvalContext) -> float:
    held = np.asarray(ctx.held_out, dtype=np.float64)
    return float(np.mean((held[:, :-1] @ _coef(ctx) - held[:, -1]) ** 2))


REGRESSION_METRICS: list[Metric] = [
    Metric("test_error", _test_error, "excess test risk (w_hat - w*)^T Sigma (w_hat - w*) of a "
           "linear model, exact from the dataset's truth (Gerstgrasser et al. 2024)",
           applies=_has_truth, title="test error (excess risk)", order=160),
    Metric("test_mse", _test_mse, "mean squared error of a regression model's predictions on "
           "the held-out rows (x, y): about sigma^2 + test_error", applies=_regressor,
           title="held-out squared error", order=161),
]
