"""Metrics of what a policy optimises, and of finite-support models.

- ``reward_mean`` / ``reward_var``: mean and variance of the curated policy's reward over the
  evaluation samples (Ferbach et al., 2024: the mean rises, fully synthetic the variance goes
  to 0). They apply to cells whose (bound) policy has a reward (``ctx.policy.reward_fn``).
- ``class_share_<c>``: the class histogram of the samples under the dataset's classifier (the
  curated-loop paper's figure), built for a dataset by :func:`class_share_metrics`.
- ``entropy`` / ``max_prob``: the exact entropy (nats) and largest atom probability of a model
  with a finite support (:class:`~autophagy.models.families.categorical.Categorical`): heat death
  drives
  the entropy to 0 at temperature < 1 and to log(atoms) above 1.
"""

from __future__ import annotations

import numpy as np

from autophagy.metrics.base import EvalContext, Metric, MetricGroup

__all__ = ["REWARD_METRICS", "SUPPORT_METRICS", "class_share_metrics"]


def _has_reward(ctx: EvalContext) -> bool:
    return getattr(ctx.policy, "reward_fn", None) is not None and len(ctx.samples) > 0


def _rewards(ctx: EvalContext) -> dict[str, float]:
    r = ctx.policy.reward_fn(np.asarray(ctx.samples))
    return {"reward_mean": float(r.mean()), "reward_var": float(r.var())}


REWARD = MetricGroup("reward", _rewards)
REWARD_METRICS: list[Metric] = [
    REWARD.metric("reward_mean", description="mean of the curated policy's reward over the "
                  "evaluation samples (rises under curation)", applies=_has_reward,
                  lower_is_better=False, title="mean reward", order=130),
    REWARD.metric("reward_var", description="variance of the curated policy's reward over the "
                  "evaluation samples (falls to 0 fully synthetic)", applies=_has_reward,
                  title="reward variance", order=131),
]


def _class_shares(ctx: EvalContext) -> dict[str, float]:
    from autophagy.metrics.classifier import DatasetClassifier, class_histogram

    clf = DatasetClassifier.for_dataset(ctx.dataset)
    hist = class_histogram(clf.predict(ctx.samples), clf.n_classes)
    return {f"class_share_{c}": float(h) for c, h in enumerate(hist)}


CLASS_SHARES = MetricGroup("class_shares", _class_shares)


def class_share_metrics(n_classes: int) -> list[Metric]:
    """``class_share_0 .. class_share_{n-1}``: the samples' class histogram, one pass a
    generation (for a labelled image dataset)."""
    from autophagy.metrics.feature_metrics import _labelled_images

    return [
        CLASS_SHARES.metric(
            f"class_share_{c}", description=f"share of the samples the dataset's classifier "
            f"puts in class {c}", applies=_labelled_images, lower_is_better=False,
            title=f"share of class {c}", order=140 + c / 100, needs=frozenset({"classifier"}),
        )
        for c in range(int(n_classes))
    ]


def _finite(ctx: EvalContext) -> bool:
    return callable(getattr(ctx.model, "probabilities", None))


def _entropy(ctx: EvalContext) -> float:
    p = np.asarray(ctx.model.probabilities(), dtype=np.float64)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


SUPPORT_METRICS: list[Metric] = [
    Metric("entropy", _entropy, "exact entropy (nats) of a finite-support model's "
           "probabilities: 0 at a point mass, log(atoms) when uniform", applies=_finite,
           lower_is_better=False, title="entropy of the model", order=150),
    Metric("max_prob", lambda ctx: float(np.max(ctx.model.probabilities())),
           "largest atom probability of a finite-support model (1: absorbed at a vertex)",
           applies=_finite, title="largest atom probability", order=151),
]
