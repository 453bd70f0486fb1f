"""Per-generation metrics: distances between samples and held-out data, Gaussian parameter drift,
and feature-space metrics (precision / recall / density / coverage, Fréchet distance, KID).

Two layers: array functions (:mod:`~autophagy.metrics.distances`, :mod:`~autophagy.metrics.moments`)
usable on their own, and the registry of named :class:`Metric` objects the loop evaluates on an
:class:`EvalContext` (:mod:`~autophagy.metrics.registry`). A metric describes itself (title,
display order, direction, what it needs); numbers computed together (precision / recall / density
/ coverage) are a :class:`MetricGroup`, run once per context.

Example:
    >>> from autophagy.metrics import evaluate, get_metric, wasserstein2
    >>> wasserstein2(x, y, rng=np.random.default_rng(0))
    >>> get_metric("sliced_w2")(ctx)
    >>> evaluate(["w2", "precision", "recall"], ctx)    # {"w2": ..., "precision": ..., ...}
"""

from autophagy.metrics.base import EvalContext, Metric, MetricGroup, metric_rng
from autophagy.metrics.distances import (
    energy_distance,
    mmd_rbf,
    negative_log_likelihood,
    sliced_wasserstein2,
    wasserstein2,
)
from autophagy.metrics.extractors import (
    FeatureCache,
    FeatureExtractor,
    InceptionFeatures,
    PixelFeatures,
)
from autophagy.metrics.fid import (
    KIDResult,
    frechet_distance,
    frechet_distance_from_moments,
    kid,
)
from autophagy.metrics.moments import model_moments
from autophagy.metrics.prdc import prdc
from autophagy.metrics.registry import (
    DEFAULT_METRICS,
    METRICS,
    evaluate,
    find_metric,
    get_metric,
    register_metric,
    resolve_metrics,
)

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "EvalContext",
    "FeatureCache",
    "FeatureExtractor",
    "InceptionFeatures",
    "KIDResult",
    "Metric",
    "MetricGroup",
    "PixelFeatures",
    "energy_distance",
    "evaluate",
    "find_metric",
    "frechet_distance",
    "frechet_distance_from_moments",
    "get_metric",
    "kid",
    "metric_rng",
    "mmd_rbf",
    "model_moments",
    "negative_log_likelihood",
    "prdc",
    "register_metric",
    "resolve_metrics",
    "sliced_wasserstein2",
    "wasserstein2",
]
