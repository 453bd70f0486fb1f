"""``check_policy``: a policy's training sets and state through checkpoints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from autophagy.data import Dataset, load_dataset
from autophagy.metrics import resolve_metrics
from autophagy.models import (
    GaussianMLE,
)
from autophagy.policies import Policy, make_policy, parse_policy
from autophagy.testing.common import (
    KNOWN_NEEDS,
    _data_shaped,
    _max_diff,
    _rng,
    _Rules,
    _same,
    _state_bytes,
    _statefile,
)


def check_policy(
    policy: Policy | type | str,
    dataset: Dataset | str | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    generations: int = 3,
    seed: int = 0,
) -> list[str]:
    """Check a policy against what the loop relies on; return the rules passed.

    ``policy`` is a :class:`~autophagy.policies.Policy` (instance or class, built with
    ``params``, its config keys), or a name (``"mixed:0.5"``, ``module:Class``). The loop is
    played for ``generations`` on ``dataset`` (default: 128 moons, with the pool the policy
    asks for), the "previous model" a Gaussian fitted to the data.

    Rules (each one sentence of why):

    - *is a Policy*: the grid, the store and the report ask it to describe itself.
    - *describes itself*: ``cell_tag`` and ``label`` are text and ``from_params(**params)``
      rebuilds it, as a config (and a resume) does.
    - *needs*: only what the experiment knows how to prepare (``classifier``).
    - *check and bind*: ``check(n, pool)`` accepts the pool of ``pool_size(n)`` rows it asked
      for, and ``bind(dataset)`` returns a policy.
    - *extra metrics*: the names it adds to every generation exist.
    - *n_synthetic*: a whole number >= 0, the same on every call: the loop draws that many.
    - *training set*: ``next_training_set`` returns (array of the data's per-sample shape,
      float, finite, at least one row; a dict state) for exactly the samples it asked for.
    - *inputs untouched*: the real data, the samples and the pool are reused afterwards.
    - *determinism*: the same rng seed gives the same training sets.
    - *state is data*: the state goes into every checkpoint.
    - *state round-trip*: with its state through a checkpoint and the policy rebuilt from its
      parameters each generation (as ``autophagy resume`` does), the training sets are bit for
      bit the same, so a resumed run continues exactly.
    """
    rules = _Rules(policy if isinstance(policy, str) else getattr(
        policy, "__name__", type(policy).__name__))
    with rules.rule("constructible"):
        if isinstance(policy, str):
            p = make_policy(policy, **params) if params else parse_policy(policy)
        elif isinstance(policy, type):
            p = policy.from_params(**params) if params else policy()
        else:
            p = policy
    rules.subject = type(p).__name__
    with rules.rule("is a Policy"):
        if not isinstance(p, Policy):
            rules.fail("is a Policy", f"{type(p).__name__} does not subclass "
                                      "autophagy.policies.Policy")
    with rules.rule("describes itself"):
        for attr in ("cell_tag", "label"):
            value = getattr(p, attr)
            if not isinstance(value, str) or not value:
                rules.fail("describes itself", f"{attr} is {value!r}, not a non-empty text")
        rebuilt = type(p).from_params(**p.params)
        if rebuilt != p:
            rules.fail("describes itself", f"from_params(**params) gives {rebuilt!r}, not "
                                           f"{p!r}; declare every field with parameter()")
    with rules.rule("needs"):
        unknown = set(p.needs) - KNOWN_NEEDS
        if unknown:
            rules.fail("needs", f"needs {sorted(unknown)}: the experiment prepares only "
                                f"{sorted(KNOWN_NEEDS)}")
    n_real = 128
    with rules.rule("check and bind"):
        n_pool = p.pool_size(n_real)
        if dataset is None or isinstance(dataset, str):
            data = load_dataset(dataset or "moons", n_train=n_real, n_test=64, n_pool=n_pool,
                                seed=seed)
        else:
            data = dataset
        p.check(len(data.train), data.pool)
        bound = p.bind(data)
        if not isinstance(bound, Policy):
            rules.fail("check and bind", f"bind returned {type(bound).__name__}, not a Policy")
    with rules.rule("extra metrics"):
        resolve_metrics(bound.extra_metrics())
    real = data.train.copy()
    with rules.rule("n_synthetic"):
        k = bound.n_synthetic(len(real))
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
            rules.fail("n_synthetic", f"n_synthetic({len(real)}) is {k!r}; the loop needs a "
                                      "whole number >= 0")
        if bound.n_synthetic(len(real)) != k:
            rules.fail("n_synthetic", "two calls give different counts")
    previous = GaussianMLE().fit(real, rng=_rng(seed, 0))

    def play(resumed: bool, *, first: bool = False) -> list[np.ndarray]:
        """The training sets of ``generations`` by a policy built anew (``first``: the bound
        one); ``resumed``: each generation as a resumed run plays it, its state through a
        checkpoint and the policy rebuilt from its parameters."""
        rng, state, out = _rng(seed, 1), {}, []
        for g in range(1, generations + 1):
            if g == 1 or resumed:
                policy = bound if first else type(p).from_params(**p.params).bind(data)
            synth = _data_shaped(previous.sample(int(k), rng=rng), data)
            inputs = [real.copy(), synth.copy(), None if data.pool is None else data.pool.copy()]
            more = {"draw": lambda m: _data_shaped(previous.sample(int(m), rng=rng), data),
                    "model": previous} if policy.draws_more else {}
            result = policy.next_training_set(real, synth, state, rng=rng, pool=data.pool,
                                              **more)
            if first:
                _check_training_set(rules, result, real, synth, data, inputs, g)
            train, state = result
            if resumed:
                state = _statefile().loads(_state_bytes(rules, "state is data", state,
                                                        f"generation {g}'s state"))
            out.append(np.asarray(train))
        return out

    with rules.rule("training set"):
        plain = play(False, first=True)
    rules.passed.append("inputs untouched")
    with rules.rule("determinism"):
        for g, (a, b) in enumerate(zip(plain, play(False), strict=True), start=1):
            if not _same(a, b):
                rules.fail("determinism", f"generation {g}'s training set differs under the same "
                                          f"rng seed ({_max_diff(a, b)}); draw only from rng")
    with rules.rule("state is data"):
        resumed = play(True)
    with rules.rule("state round-trip"):
        for g, (a, b) in enumerate(zip(plain, resumed, strict=True), start=1):
            if not _same(a, b):
                rules.fail("state round-trip", f"generation {g}'s training set differs when the "
                                               f"state went through a checkpoint "
                                               f"({_max_diff(a, b)}); keep what a policy "
                                               "remembers in its state dict, not on itself")
    return rules.passed


def _check_training_set(rules: _Rules, result: Any, real, synth, data, inputs, g: int) -> None:
    rule = "training set"
    if not (isinstance(result, tuple) and len(result) == 2):
        rules.fail(rule, f"next_training_set returned {type(result).__name__}; the loop needs "
                         "(training set, state)")
    train, state = result
    train = np.asarray(train)
    if train.shape[1:] != real.shape[1:] or len(train) == 0:
        rules.fail(rule, f"generation {g}: shape {train.shape}, the data's rows are "
                         f"{real.shape[1:]} (at least one row)")
    if not np.issubdtype(train.dtype, np.floating) or not np.all(np.isfinite(train)):
        rules.fail(rule, f"generation {g}: dtype {train.dtype}, finite "
                         f"{bool(np.all(np.isfinite(train)))}; the model fits finite floats")
    if not isinstance(state, dict):
        rules.fail(rule, f"the state is {type(state).__name__}, not a dict")
    for name, now, before in zip(("real data", "synthetic samples", "pool"),
                                 (real, synth, data.pool), inputs, strict=True):
        if before is not None and not _same(now, before):
            rules.fail("inputs untouched", f"next_training_set changed the {name} in place "
                                           f"({_max_diff(now, before)})")
