"""``check_metric``: a metric in the context the loop builds at generation 0."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from autophagy.data import Dataset
from autophagy.metrics import METRICS, EvalContext, Metric, model_moments
from autophagy.models import (
    GaussianMLE,
    sample_at,
)
from autophagy.policies import Policy, parse_policy
from autophagy.testing.common import (
    KNOWN_NEEDS,
    _as_dataset,
    _data_shaped,
    _rng,
    _Rules,
    _same,
)


def _context(model: Any, dataset: Dataset, policy: Policy | None, n: int, seed: int,
             features: str, policy_state: Mapping[str, Any] | None = None) -> EvalContext:
    from autophagy.loop import evaluation_rng

    rng = evaluation_rng(seed, 0)
    samples = _data_shaped(sample_at(model, n, rng=rng), dataset)
    mean, cov = model_moments(model, samples)
    return EvalContext(model, samples, dataset.test.copy(), dataset, rng,
                       {"mean": mean, "cov": cov}, features=features, policy=policy,
                       policy_state=dict(policy_state or {}),
                       train=dataset.train)  # generation 0 trains on the real data


def check_metric(
    metric: Metric | str,
    dataset: Dataset | str | None = None,
    *,
    model: Any = None,
    policy: Policy | str | None = None,
    features: str = "auto",
    n: int = 200,
    seed: int = 0,
    policy_state: Mapping[str, Any] | None = None,
) -> list[str]:
    """Check a metric against what the loop relies on; return the rules passed.

    ``metric`` is a :class:`~autophagy.metrics.Metric` or a name (``module:attr``). It is
    computed as the loop does at generation 0: ``n`` samples of ``model`` (a fitted model;
    default: a Gaussian fitted to ``dataset``, 128 moons by default) against the held-out set,
    with ``policy`` bound to the data where the metric reads one (the curated reward metrics),
    and the feature extractor ``features`` (config ``eval.features``; ``"pixels"`` needs no
    training). ``policy_state`` is what a policy recorded while building a later generation's
    training set, for the metrics that read it (the verified policy's ``acceptance_rate``).

    Rules (each one sentence of why):

    - *is a Metric*: the loop and the report read its name, title, order and direction.
    - *describes itself*: text name, description and title, a boolean ``lower_is_better``, a
      numeric ``order``, and ``needs`` only among what the experiment prepares (``features``,
      ``classifier``), since it prepares them before workers start, or checks the dataset has
      (``labels``, ``groups``).
    - *applies*: ``applies(ctx)`` answers True or False (the loop skips it when False; then
      nothing else is checked and ``"applies: no"`` is returned).
    - *finite float*: the results table stores one number per metric and generation (a group
      returns a mapping holding this metric's key).
    - *determinism*: a second context with the same seed gives the same number bit for bit.
    - *leaves ctx.rng alone*: a metric draws from ``metric_rng(ctx, name)``; advancing
      ``ctx.rng`` would move every metric computed after it.
    - *inputs untouched*: the samples and held-out data are shared by every metric.

    A family (``Metric.expand``, one metric per class or group) is checked member by member.
    """
    rules = _Rules(metric if isinstance(metric, str) else getattr(metric, "name", "metric"))
    with rules.rule("constructible"):
        m = METRICS[metric] if isinstance(metric, str) else metric
    with rules.rule("is a Metric"):
        if not isinstance(m, Metric):
            rules.fail("is a Metric", f"{type(m).__name__} is not an autophagy.metrics.Metric")
    rules.subject = m.name if isinstance(m.name, str) and m.name else rules.subject
    with rules.rule("describes itself"):
        for attr in ("name", "description", "title"):
            if not isinstance(getattr(m, attr), str) or not getattr(m, attr):
                rules.fail("describes itself", f"{attr} is {getattr(m, attr)!r}, not text")
        if not isinstance(m.lower_is_better, bool | np.bool_):
            rules.fail("describes itself", f"lower_is_better is {m.lower_is_better!r}")
        if not isinstance(m.order, int | float) or isinstance(m.order, bool):
            rules.fail("describes itself", f"order is {m.order!r}, not a number")
        unknown = set(m.needs) - KNOWN_NEEDS
        if unknown:
            rules.fail("describes itself", f"needs {sorted(unknown)}: the experiment prepares "
                                           f"only {sorted(KNOWN_NEEDS)}")
    data = _as_dataset(dataset, seed)
    model = model if model is not None else GaussianMLE().fit(data.train, rng=_rng(seed, 0))
    bound = None
    if policy is not None:
        bound = parse_policy(policy).bind(data)

    def fresh() -> EvalContext:
        return _context(model, data, bound, n, seed, features, policy_state)

    ctx = fresh()
    with rules.rule("applies"):
        applies = m.applies(ctx)
        if not isinstance(applies, bool | np.bool_):
            rules.fail("applies", f"applies(ctx) returned {applies!r}, not True or False")
    if not applies:
        return [*rules.passed, "applies: no (nothing computed)"]
    if m.expand is not None:  # a family: each of its members is checked as a metric
        members = m.expand(ctx)
        passed: list[str] = []
        for member in members:
            passed = check_metric(member, data, model=model, policy=policy, features=features,
                                  n=n, seed=seed)
        return [*rules.passed, f"family of {len(members)}", *passed[-3:]]
    before = (ctx.samples.copy(), ctx.held_out.copy(), copy.deepcopy(ctx.rng.bit_generator.state))
    with rules.rule("finite float"):
        if m.group is not None:
            values = m.group(ctx)
            if not isinstance(values, Mapping) or m.name not in values:
                rules.fail("finite float", f"its group {m.group.name!r} returned no "
                                           f"{m.name!r} entry")
        raw = m.compute(ctx)
        if isinstance(raw, bool) or not isinstance(raw, int | float | np.integer | np.floating |
                                                  np.ndarray):
            rules.fail("finite float", f"compute returned {type(raw).__name__}, not a number")
        value = float(raw)
        if not math.isfinite(value):
            rules.fail("finite float", f"compute returned {value} on {data.name}")
    with rules.rule("leaves ctx.rng alone"):
        if ctx.rng.bit_generator.state != before[2]:
            rules.fail("leaves ctx.rng alone", "compute advanced ctx.rng; draw from "
                                               "metric_rng(ctx, name) instead")
    with rules.rule("inputs untouched"):
        for what, now, then in (("samples", ctx.samples, before[0]),
                                ("held-out data", ctx.held_out, before[1])):
            if not _same(now, then):
                rules.fail("inputs untouched", f"compute changed the {what} in place")
    with rules.rule("determinism"):
        again = float(m.compute(fresh()))
        if not _same(np.float64(value), np.float64(again)):
            rules.fail("determinism", f"two contexts with the same seed give {value!r} and "
                                      f"{again!r}; draw from metric_rng(ctx, name)")
    return rules.passed
