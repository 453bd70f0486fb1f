"""The metrics the loop can compute, by name, and :func:`evaluate`, which computes them.

Every entry of :data:`METRICS` (a :class:`~autophagy.registry.Registry`) is a
:class:`~autophagy.metrics.base.Metric` whose ``compute(ctx)`` compares ``ctx.samples`` (drawn
from this generation's model) with ``ctx.held_out`` (the real test split), and which says how the
report shows it (``title``, ``order``, ``lower_is_better``) and what the experiment must prepare
(``needs``). Point metrics flatten both sets to (n, -1). A new family lives in its own module,
builds its :class:`Metric` objects there and adds them with :func:`register_metric`; nothing else
needs to change. Randomness comes from :func:`~autophagy.metrics.base.metric_rng`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from autophagy.metrics.base import EvalContext, Metric, as_rows, metric_rng
from autophagy.metrics.curation import REWARD_METRICS, SUPPORT_METRICS
from autophagy.metrics.distances import (
    energy_distance,
    mmd_rbf,
    negative_log_likelihood,
    sliced_wasserstein2,
    wasserstein2,
)
from autophagy.metrics.downstream import DOWNSTREAM_METRICS
from autophagy.metrics.feature_metrics import FEATURE_METRICS
from autophagy.metrics.fixed_point import FIXED_POINT_METRICS
from autophagy.metrics.moments import MOMENT_METRICS
from autophagy.metrics.regression import REGRESSION_METRICS
from autophagy.metrics.tails import TAIL_METRICS
from autophagy.metrics.text import TEXT_METRICS
from autophagy.models.base import has_log_prob
from autophagy.registry import Registry

__all__ = [
    "DEFAULT_METRICS",
    "TEXT_DEFAULT_METRICS",
    "default_metrics",
    "METRICS",
    "evaluate",
    "find_metric",
    "get_metric",
    "metric_rng",
    "register_metric",
    "resolve_metrics",
]

W2_MAX_SAMPLES = 1000
"""Exact W2 subsamples each set to this size: O(1000^2) cost, about 0.2 s."""
SLICED_PROJECTIONS = 200
MMD_MAX_SAMPLES = 2000
ENERGY_MAX_SAMPLES = 2000
"""MMD and energy are O(n m d); beyond this size each set is subsampled (about 0.1 s at 2,000)."""


def _distance(name: str, fn: Any, **options: Any) -> Any:
    """The metric ``name``: ``fn(samples, held_out, rng=..., **options)`` on flattened points,
    with the metric's own random stream (subsampling, projections)."""

    def compute(ctx: EvalContext) -> float:
        rng = metric_rng(ctx, name)
        return fn(as_rows(ctx.samples), as_rows(ctx.held_out), rng=rng, **options)

    return compute


_w2 = _distance("w2", wasserstein2, max_samples=W2_MAX_SAMPLES)
_sliced_w2 = _distance("sliced_w2", sliced_wasserstein2, n_projections=SLICED_PROJECTIONS)
_mmd = _distance("mmd", mmd_rbf, max_samples=MMD_MAX_SAMPLES)
_energy = _distance("energy", energy_distance, max_samples=ENERGY_MAX_SAMPLES)


def _nll(ctx: EvalContext) -> float:
    return negative_log_likelihood(ctx.model, ctx.held_out)


METRICS: Registry[Metric] = Registry("metric", describe=lambda m: m.description)
"""Every known metric by name. Add to it with :func:`register_metric`."""


def register_metric(metric: Metric, *, replace: bool = False) -> Metric:
    """Add ``metric`` to :data:`METRICS` under ``metric.name`` and return it.

    Refuses to shadow an existing name unless ``replace=True``, so two modules cannot silently
    define the same metric twice.
    """
    return METRICS.register(metric.name, metric, description=metric.description, replace=replace)


def get_metric(name: str) -> Metric:
    """The registered metric called ``name`` (or a ``"module:attr"`` one); the error lists the
    valid names."""
    return METRICS[name]


def find_metric(name: str) -> Metric | None:
    """The registered metric ``name``, or None; never imports a ``module:attr`` name (the report
    asks this about every metric name in a results table)."""
    return METRICS[name] if name in tuple(METRICS) else None


def resolve_metrics(metrics: Sequence[str | Metric] | None, kind: str | None = None
                    ) -> list[Metric]:
    """Names or :class:`Metric` objects as metrics, in the given order; None: the defaults of
    data of ``kind`` (:func:`default_metrics`)."""
    names = default_metrics(kind) if metrics is None else metrics
    return [m if isinstance(m, Metric) else get_metric(m) for m in names]


def default_metrics(kind: str | None = None) -> list[str]:
    """What the loop computes when a config names no metrics: :data:`TEXT_DEFAULT_METRICS` on
    token blocks (distances between token ids mean nothing), :data:`DEFAULT_METRICS` else."""
    return TEXT_DEFAULT_METRICS if kind == "text" else DEFAULT_METRICS


def evaluate(metrics: Sequence[str | Metric] | None, ctx: EvalContext) -> dict[str, float]:
    """``{name: value}`` of every metric in ``metrics`` that applies to ``ctx``, in their order.

    A :class:`~autophagy.metrics.base.MetricGroup` runs once however many of its metrics are
    asked for, and the sample features once for all feature metrics: both are memoized on
    ``ctx``. Each value is the one ``metric(ctx)`` alone gives. A family (``Metric.expand``)
    gives one value per member.
    """
    out = {}
    for metric in resolve_metrics(metrics):
        if not metric.applies(ctx):
            continue
        for m in metric.expand(ctx) if metric.expand is not None else [metric]:
            if m.applies(ctx):
                out[m.name] = m(ctx)
    return out


for _metric in [
    Metric(
        name="w2",
        compute=_w2,
        description=(
            f"exact Wasserstein-2 distance, samples vs held-out (POT network simplex, "
            f"each set subsampled to {W2_MAX_SAMPLES})"
        ),
        title="Wasserstein-2 distance",
        order=10,
    ),
    Metric(
        name="sliced_w2",
        compute=_sliced_w2,
        description=(
            f"sliced Wasserstein-2, sqrt of the mean squared 1-D W2 over "
            f"{SLICED_PROJECTIONS} random directions"
        ),
        title="sliced Wasserstein-2",
        order=20,
    ),
    Metric(
        name="mmd",
        compute=_mmd,
        description="squared MMD (biased V-statistic), RBF kernel, median-heuristic bandwidth",
        title="MMD",
        order=30,
    ),
    Metric(
        name="energy",
        compute=_energy,
        description="energy distance 2E|X-Y| - E|X-X'| - E|Y-Y'| (squared form, V-statistic)",
        title="energy distance",
        order=40,
    ),
    Metric(
        name="nll",
        compute=_nll,
        description="mean negative log-likelihood of the held-out data (nats per sample)",
        applies=lambda ctx: has_log_prob(ctx.model),
        title="held-out NLL",
        order=50,
    ),
    *MOMENT_METRICS,
    *FIXED_POINT_METRICS,
    *FEATURE_METRICS,
    *REWARD_METRICS,
    *SUPPORT_METRICS,
    *REGRESSION_METRICS,
    *TAIL_METRICS,
    *DOWNSTREAM_METRICS,
    *TEXT_METRICS,
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
    "theta_distance",
    "theta_step",
    "function_distance",
    "function_step",
    "function_lag2",
    "gen0_mmd2",
    "step_mmd2",
]
"""What the loop computes when a config names none; each is skipped where it does not apply.

The feature-space metrics (``fid``, ``kid``, ``precision``, ``recall``, ``density``,
``coverage``, ``frechet``, ``class_kl``, ``classes_covered``) are registered but not default: ask
for them by name (the image presets do)."""

TEXT_DEFAULT_METRICS: list[str] = [
    *(m.name for m in TEXT_METRICS),
    "function_distance",
    "function_step",
    "function_lag2",
]
"""The defaults on token blocks: every text metric (each skipped where the model lacks what it
reads) and the function-space distances of the next-token distributions."""
