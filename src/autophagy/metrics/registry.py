"""The metrics the loop can compute, by name.

Every entry is a :class:`~autophagy.metrics.base.Metric` whose ``compute(ctx)`` compares
``ctx.samples`` (drawn from this generation's model) with ``ctx.held_out`` (the real test split).
Point metrics flatten both to (n, -1). A new family (FID, precision / recall on features) lives in
its own module, builds its :class:`Metric` objects there and adds them with :func:`register_metric`;
nothing here needs to change.

Randomness: a metric never draws from ``ctx.rng`` itself. It draws from :func:`metric_rng`, a
stream derived from the *current state* of ``ctx.rng`` and the metric's name without advancing
it, so a metric's value depends only on (seed, generation, name): adding, removing or reordering
metrics changes no other metric's number, and the loop's own use of ``ctx.rng`` is untouched.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from autophagy.metrics.base import EvalContext, Metric
from autophagy.metrics.distances import (
    energy_distance,
    mmd_rbf,
    negative_log_likelihood,
    sliced_wasserstein2,
    wasserstein2,
)
from autophagy.metrics.feature_metrics import FEATURE_METRICS
from autophagy.metrics.moments import MOMENT_METRICS
from autophagy.models.base import has_log_prob

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "get_metric",
    "metric_rng",
    "register_metric",
]

W2_MAX_SAMPLES = 1000
"""Exact W2 subsamples each set to this size: O(1000^2) cost, about 0.2 s."""
SLICED_PROJECTIONS = 200
MMD_MAX_SAMPLES = 2000
ENERGY_MAX_SAMPLES = 2000
"""MMD and energy are O(n m d); beyond this size each set is subsampled (about 0.1 s at 2,000)."""


def _digest(obj: Any, h: Any) -> None:
    """Feed a bit generator's state (nested dicts of ints, strings and arrays) into a hash."""
    if isinstance(obj, dict):
        for key in sorted(obj):
            h.update(repr(key).encode())
            _digest(obj[key], h)
    elif isinstance(obj, np.ndarray):
        h.update(str(obj.dtype).encode() + obj.tobytes())
    else:
        h.update(repr(obj).encode())


def metric_rng(ctx: EvalContext, name: str) -> np.random.Generator:
    """A generator for metric ``name``, derived from ``ctx.rng``'s current state without using it.

    Why: if metrics drew from ``ctx.rng`` in turn, the value of one would depend on which others
    ran before it. Reading the state (not advancing it) and hashing it with the name gives each
    metric its own reproducible stream for this (seed, generation).
    """
    h = hashlib.sha256()
    _digest(ctx.rng.bit_generator.state, h)
    h.update(b"\0metric\0" + name.encode())
    words = np.frombuffer(h.digest(), dtype=np.uint32)
    return np.random.default_rng(np.random.SeedSequence([int(w) for w in words]))


def _points(a: Any) -> np.ndarray:
    x = np.asarray(a, dtype=np.float64)
    return x.reshape(len(x), -1)


def _w2(ctx: EvalContext) -> float:
    return wasserstein2(
        _points(ctx.samples),
        _points(ctx.held_out),
        max_samples=W2_MAX_SAMPLES,
        rng=metric_rng(ctx, "w2"),
    )


def _sliced_w2(ctx: EvalContext) -> float:
    return sliced_wasserstein2(
        _points(ctx.samples),
        _points(ctx.held_out),
        n_projections=SLICED_PROJECTIONS,
        rng=metric_rng(ctx, "sliced_w2"),
    )


def _mmd(ctx: EvalContext) -> float:
    return mmd_rbf(
        _points(ctx.samples),
        _points(ctx.held_out),
        max_samples=MMD_MAX_SAMPLES,
        rng=metric_rng(ctx, "mmd"),
    )


def _energy(ctx: EvalContext) -> float:
    return energy_distance(
        _points(ctx.samples),
        _points(ctx.held_out),
        max_samples=ENERGY_MAX_SAMPLES,
        rng=metric_rng(ctx, "energy"),
    )


def _nll(ctx: EvalContext) -> float:
    return negative_log_likelihood(ctx.model, ctx.held_out)


METRICS: dict[str, Metric] = {}
"""Every known metric by name. Add to it with :func:`register_metric`."""


def register_metric(metric: Metric, *, replace: bool = False) -> Metric:
    """Add ``metric`` to :data:`METRICS` under ``metric.name`` and return it.

    Refuses to shadow an existing name unless ``replace=True``, so two modules cannot silently
    define the same metric twice.
    """
    if metric.name in METRICS and not replace:
        raise ValueError(
            f"a metric named {metric.name!r} is already registered; pass replace=True to override"
        )
    METRICS[metric.name] = metric
    return metric


def get_metric(name: str) -> Metric:
    """The registered metric called ``name``; the error lists the valid names."""
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; choose from: {', '.join(METRICS)}") from None


for _metric in [
    Metric(
        name="w2",
        compute=_w2,
        description=(
            f"exact Wasserstein-2 distance, samples vs held-out (POT network simplex, "
            f"each set subsampled to {W2_MAX_SAMPLES})"
        ),
    ),
    Metric(
        name="sliced_w2",
        compute=_sliced_w2,
        description=(
            f"sliced Wasserstein-2, sqrt of the mean squared 1-D W2 over "
            f"{SLICED_PROJECTIONS} random directions"
        ),
    ),
    Metric(
        name="mmd",
        compute=_mmd,
        description="squared MMD (biased V-statistic), RBF kernel, median-heuristic bandwidth",
    ),
    Metric(
        name="energy",
        compute=_energy,
        description="energy distance 2E|X-Y| - E|X-X'| - E|Y-Y'| (squared form, V-statistic)",
    ),
    Metric(
        name="nll",
        compute=_nll,
        description="mean negative log-likelihood of the held-out data (nats per sample)",
        applies=lambda ctx: has_log_prob(ctx.model),
    ),
    *MOMENT_METRICS,
    *FEATURE_METRICS,
]:
    register_metric(_metric)
del _metric

DEFAULT_METRICS: list[str] = [
    "w2",
    "sliced_w2",
    "mmd",
    "energy",
    "nll",
    "mean_error",
    "cov_error",
    "mean_shift_sq",
    "cov_trace_ratio",
]
"""What the loop computes when a config names none; each is skipped where it does not apply.

The feature-space metrics (``fid``, ``kid``, ``precision``, ``recall``, ``density``,
``coverage``, ``frechet``, ``class_kl``, ``classes_covered``) are registered but not default: ask
for them by name (the image presets do)."""
