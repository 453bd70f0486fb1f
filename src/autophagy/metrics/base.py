"""How a metric sees one generation, and what a metric says about itself.

Every metric is a function of an :class:`EvalContext` returning a float. The loop builds the
context once per generation: ``samples`` are drawn from the model with the evaluation RNG stream,
which is derived from (seed, generation) and never shared with training, so adding or removing a
metric does not change the training trajectory.

A :class:`Metric` describes itself (title, display order, direction, what it needs), so the
report and the experiment ask the registry instead of keeping lists of names. Several numbers
that come from one computation (precision, recall, density and coverage from one k-NN pass) are a
:class:`MetricGroup`: each number is a metric of its own name, and the group runs once per
context, memoized on the context itself.

Randomness: a metric never draws from ``ctx.rng``. It draws from :func:`metric_rng`, a stream
derived from the *current state* of ``ctx.rng`` and the metric's name without advancing it, so a
metric's value depends only on (seed, generation, name): adding, removing or reordering metrics
changes no other metric's number, and the loop's own use of ``ctx.rng`` is untouched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autophagy.data.base import Dataset

__all__ = ["EvalContext", "Metric", "MetricGroup", "as_rows", "metric_rng"]

DEFAULT_ORDER = 1000
"""Display order of a metric that does not give one: after the built-in ones."""


def as_rows(samples: Any) -> np.ndarray:
    """Samples as float64 rows, shape (n, features): images and points alike are compared as
    flat vectors by the sample metrics (and by rewards)."""
    x = np.asarray(samples, dtype=np.float64)
    return x.reshape(len(x), -1)


@dataclass
class EvalContext:
    """One generation as the metrics see it; its memo shares work between metrics of this context.

    Treat a context as read-only once a metric has run on it: what a group or a shared step
    (the sample features) computed is kept in the memo, not recomputed when a field changes.
    """

    model: Any
    samples: np.ndarray
    held_out: np.ndarray
    dataset: Dataset
    rng: np.random.Generator
    reference: dict[str, Any] = field(default_factory=dict)
    """What generation 0 looked like (``mean``, ``cov`` of the first fit), for drift metrics."""
    features: str = "auto"
    """Feature extractor of the feature-space metrics (config ``eval.features``)."""
    inception: str | None = None
    """Path of the Inception TorchScript file (else ``$AUTOPHAGY_INCEPTION``)."""
    held_out_features: Any = None
    """A per-cell :class:`~autophagy.metrics.feature_metrics.HeldOutFeatures`, so the held-out
    set's features (the same every generation) are computed once per cell; without one, each
    context computes them (the Inception and classifier ones are read from the disk cache)."""
    policy: Any = None
    """The cell's policy, bound to the dataset (metrics of what it optimises: curated's reward)."""
    policy_state: dict[str, Any] = field(default_factory=dict)
    """What the policy recorded while building this generation's training set (the verified
    policy's ``acceptance_rate``); empty at generation 0."""
    train: Any = None
    """The generation's actual training set (what the policy fed the model; None outside a
    loop): the downstream metrics train a classifier on it."""
    downstream: Mapping[str, Any] = field(default_factory=dict)
    """The config's ``eval.downstream`` (classifier, labels) for the downstream metrics."""
    sample_labels: Any = None
    """(labels, groups or None) that a class-conditional model drew ``samples`` for; None for
    any other model."""
    train_labels: Any = None
    """(labels, groups or None) of ``train`` carried by a class-conditional model's label plane
    (real rows their own, synthetic rows the ones they were drawn for); None otherwise."""
    _memo: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` the first time ``key`` is asked for here; the same value after that."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]


def _always(ctx: EvalContext) -> bool:
    return True


@dataclass(frozen=True)
class Metric:
    """A named metric and what the report and the experiment need to know about it.

    - ``compute(ctx) -> float`` and ``applies(ctx) -> bool`` (for example held-out NLL needs
      ``log_prob``; parameter errors need a dataset with a known Gaussian);
    - ``title``: the human name in figures ("Wasserstein-2 distance"; default: ``name``);
    - ``order``: display order in the report, distances first (lower comes first);
    - ``lower_is_better``: the direction of the verdict rule;
    - ``needs``: what the experiment must prepare, ``"features"`` (a feature extractor) or
      ``"classifier"`` (the dataset's classifier);
    - ``group``: the :class:`MetricGroup` this number comes from, if any;
    - ``expand(ctx) -> list[Metric]``: a family named once in a config that stands for one
      metric per class or group of the dataset (``group_shares``: ``group_share_0``, ...).
    """

    name: str
    compute: Callable[[EvalContext], float]
    description: str
    applies: Callable[[EvalContext], bool] = _always
    lower_is_better: bool = True
    title: str = ""
    order: float = DEFAULT_ORDER
    needs: frozenset[str] = frozenset()
    group: MetricGroup | None = None
    expand: Callable[[EvalContext], list[Metric]] | None = None

    def __post_init__(self) -> None:
        if not self.title:
            object.__setattr__(self, "title", self.name)
        object.__setattr__(self, "needs", frozenset(self.needs))

    def __call__(self, ctx: EvalContext) -> float:
        return float(self.compute(ctx))


@dataclass(frozen=True)
class MetricGroup:
    """Several numbers from one computation, each registered as a metric of its own name.

    ``compute(ctx)`` returns ``{key: value}``; it runs at most once per context (memoized on the
    context), however many of its metrics are asked for, so a config may list ``precision``
    alone or all four k-NN numbers at the cost of one pass. ``name`` keys the memo; by
    convention it is also the name the group passes to :func:`metric_rng`.

    Example:
        >>> PRDC = MetricGroup("prdc", lambda ctx: prdc(real, fake, k=5))
        >>> precision = PRDC.metric("precision", description="...", lower_is_better=False)
    """

    name: str
    compute: Callable[[EvalContext], Mapping[str, float]]

    def __call__(self, ctx: EvalContext) -> Mapping[str, float]:
        return ctx.memo(f"group:{self.name}", lambda: self.compute(ctx))

    def metric(self, key: str, *, description: str, **fields: Any) -> Metric:
        """The :class:`Metric` ``key`` of this group (other fields as :class:`Metric` takes)."""
        return Metric(
            name=key,
            compute=lambda ctx: self(ctx)[key],
            description=description,
            group=self,
            **fields,
        )


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
