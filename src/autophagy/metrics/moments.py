"""Gaussian parameter metrics: how far the fitted mean and covariance sit from the truth and from
generation 0.

Why these: for a Gaussian MLE retrained on its own samples the theory is exact (Bertrand et al.,
2024, sec. 3; Shumailov et al., 2023): the covariance's trace shrinks geometrically under fully
synthetic retraining and the mean performs a random walk, while a share of real data holds both
near the first fit. ``mean_shift_sq`` and ``cov_trace_ratio`` are the quantities whose
expectations :mod:`autophagy.theory` predicts, so the report overlays theory on them;
``mean_error`` and ``cov_error`` compare with the true parameters when the dataset knows them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autophagy.errors import InputError
from autophagy.metrics.base import EvalContext, Metric
from autophagy.models.families.gaussian import fit_gaussian

__all__ = [
    "MOMENT_METRICS",
    "cov_error",
    "cov_trace_ratio",
    "mean_error",
    "mean_shift_sq",
    "model_moments",
]


def model_moments(model: Any, samples: Any) -> tuple[np.ndarray, np.ndarray]:
    """The mean (d,) and covariance (d, d) a generation stands for.

    A model that carries its own fitted parameters (``mean_`` of shape (d,) and ``cov_`` of shape
    (d, d), as :class:`~autophagy.models.families.gaussian.GaussianMLE` does) is measured by them:
    no
    sampling noise is added on top of the fit the theory describes. Any other model is measured by
    the maximum-likelihood mean and covariance (divided by n) of ``samples``, flattened to (n, -1).
    """
    mean = getattr(model, "mean_", None)
    cov = getattr(model, "cov_", None)
    if mean is not None and cov is not None:
        mean = np.asarray(mean, dtype=np.float64)
        cov = np.asarray(cov, dtype=np.float64)
        if mean.ndim == 1 and cov.shape == (mean.shape[0], mean.shape[0]):
            return mean, cov
    x = np.asarray(samples, dtype=np.float64)
    return fit_gaussian(x.reshape(len(x), -1))


def _target(source: dict[str, Any], key: str, d: int, where: str) -> np.ndarray:
    """``source[key]`` as a mean (d,) or covariance (d, d), with an error naming both shapes."""
    value = np.asarray(source[key], dtype=np.float64)
    shape = (d,) if key == "mean" else (d, d)
    if value.size != int(np.prod(shape)):
        raise InputError(f"{where}[{key!r}] has shape {value.shape}, expected {shape}")
    return value.reshape(shape)


def mean_error(ctx: EvalContext) -> float:
    """``||mean - true mean||_2`` against ``ctx.dataset.params["mean"]``."""
    mean, _ = model_moments(ctx.model, ctx.samples)
    true = _target(ctx.dataset.params, "mean", len(mean), "dataset.params")
    return float(np.linalg.norm(mean - true))


def cov_error(ctx: EvalContext) -> float:
    """``||cov - true cov||_F`` (Frobenius) against ``ctx.dataset.params["cov"]``."""
    mean, cov = model_moments(ctx.model, ctx.samples)
    true = _target(ctx.dataset.params, "cov", len(mean), "dataset.params")
    return float(np.linalg.norm(cov - true, ord="fro"))


def mean_shift_sq(ctx: EvalContext) -> float:
    """``||mean - mean_0||^2``: squared drift of the mean from generation 0's fit.

    Under fully synthetic retraining of a Gaussian MLE on n samples per generation its expectation
    grows linearly, by about tr(cov_t) / n per generation (a random walk).
    """
    mean, _ = model_moments(ctx.model, ctx.samples)
    ref = _target(ctx.reference, "mean", len(mean), "reference")
    return float(np.sum((mean - ref) ** 2))


def cov_trace_ratio(ctx: EvalContext) -> float:
    """``tr(cov) / tr(cov_0)``: how much of generation 0's total variance is left.

    1 means no drift; under fully synthetic retraining of a Gaussian MLE its expectation decays
    like ((n - 1) / n) ** t (collapse), and a real-data share makes it settle at a fixed point.
    """
    mean, cov = model_moments(ctx.model, ctx.samples)
    ref = _target(ctx.reference, "cov", len(mean), "reference")
    ref_trace = float(np.trace(ref))
    if ref_trace <= 0:
        raise InputError(f"reference covariance has trace {ref_trace}; the ratio is undefined")
    return float(np.trace(cov)) / ref_trace


def _has(source: dict[str, Any], *keys: str) -> bool:
    return all(key in source and source[key] is not None for key in keys)


MOMENT_METRICS: list[Metric] = [
    Metric(
        name="mean_error",
        compute=mean_error,
        description="||mean - true mean||_2 of the model's mean (true Gaussian known)",
        applies=lambda ctx: _has(ctx.dataset.params, "mean", "cov"),
        title="mean error",
        order=130,
    ),
    Metric(
        name="cov_error",
        compute=cov_error,
        description="||cov - true cov||_F of the model's covariance (true Gaussian known)",
        applies=lambda ctx: _has(ctx.dataset.params, "mean", "cov"),
        title="covariance error",
        order=140,
    ),
    Metric(
        name="mean_shift_sq",
        compute=mean_shift_sq,
        description="||mean - mean_0||^2: squared drift of the mean from generation 0",
        applies=lambda ctx: _has(ctx.reference, "mean"),
        title="squared mean shift",
        order=150,
    ),
    Metric(
        name="cov_trace_ratio",
        compute=cov_trace_ratio,
        description="tr(cov) / tr(cov_0): share of generation 0's variance left (1 = no drift)",
        applies=lambda ctx: _has(ctx.reference, "cov"),
        lower_is_better=False,
        title="covariance trace ratio",
        order=160,
    ),
]
"""The Gaussian parameter metrics, in the order the registry lists them."""
