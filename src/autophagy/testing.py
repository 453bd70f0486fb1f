"""Contract checks for your own models, policies, metrics and datasets (as scikit-learn's
``check_estimator``).

The retraining loop relies on more than the method names of the protocols: ``fit`` must return
the model, samples must have the data's shape, a model rebuilt from its checkpoint must go on
exactly as the original would, a policy's state must survive a checkpoint, a metric must not
move another metric's number. Break one and a run fails generations later, or worse, resumes to
different numbers. Each ``check_*`` runs a plugin through the loop's own moves on tiny data (a
second or so; neural families with small budgets) and raises :class:`ContractError` on the first
rule it breaks, as one line ``<Class>: <rule>: <what happened>``. It returns the rules passed.

Example (in a plugin's own test suite):
    >>> from autophagy.testing import check, check_model
    >>> check_model(BoxModel, options={"margin": 0.1})  # a class, an instance or a name
    ['constructible', 'protocol', 'fit returns self', ...]
    >>> check_model(LeakyModel)
    ContractError: LeakyModel: state round-trip: sample after load_state_dict differs from the
    original (max |diff| 1.18); state_dict must hold everything sample uses
    >>> check("mylab.extensions:BoxModel")    # the lines ``autophagy check TARGET`` prints

Every built-in family, policy, metric and generated dataset passes them (``tests/test_testing.py``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from autophagy.data import DATASETS, Dataset, DatasetEntry, load_dataset
from autophagy.errors import ArgumentError, ContractError, UnknownName
from autophagy.metrics import METRICS, EvalContext, Metric, model_moments, resolve_metrics
from autophagy.models import (
    MODELS,
    GaussianMLE,
    build_model,
    has_log_prob,
    sample_at,
    temperature_support,
)
from autophagy.policies import POLICIES, Policy, make_policy, parse_policy
from autophagy.registry import import_target

__all__ = ["ContractError", "check", "check_dataset", "check_metric", "check_model",
           "check_policy"]

KNOWN_NEEDS = frozenset({"features", "classifier"})
"""What the experiment prepares before workers start when a metric or policy declares it."""
PROTOCOL = ("fit", "sample", "state_dict", "load_state_dict")


def _statefile() -> Any:
    """The checkpoint format (``dumps`` / ``loads``) the run directory uses."""
    from autophagy.store import statefile

    return statefile


def _rng(*seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(list(seed)))


def _max_diff(a: np.ndarray, b: np.ndarray) -> str:
    if a.shape != b.shape:
        return f"shape {a.shape} vs {b.shape}"
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
    return f"max |diff| {np.nanmax(d) if d.size else 0:.3g}"


def _same(a: Any, b: Any) -> bool:
    """Bit for bit: same shape, dtype and bytes (NaNs in the same places count as equal)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


class _Rules:
    """The rules one subject passed so far; a rule's block that raises fails that rule."""

    def __init__(self, subject: str):
        self.subject = subject
        self.passed: list[str] = []

    def fail(self, rule: str, detail: str) -> None:
        raise ContractError(self.subject, rule, detail)

    @contextmanager
    def rule(self, name: str) -> Iterator[None]:
        try:
            yield
        except ContractError:
            raise
        except Exception as err:
            raise ContractError(self.subject, name, f"raised {_first_line(err)}") from err
        self.passed.append(name)


def _state_bytes(rules: _Rules, rule: str, state: Any, what: str) -> bytes:
    """``state`` through the checkpoint format; a TypeError there names what is not data."""
    try:
        return _statefile().dumps(state)
    except TypeError as err:
        rules.fail(rule, f"{what} cannot be checkpointed: {_first_line(err)}")
    raise AssertionError  # unreachable


# ---------------------------------------------------------------------------------- models
def _model_factory(model: Any, options: Mapping[str, Any] | None) -> tuple[Callable[[], Any], str]:
    """(a function building a fresh, unfitted model, the subject's name)."""
    opts = dict(options or {})
    if isinstance(model, str):
        cls = MODELS[model]
        return (lambda: build_model(model, opts)), getattr(cls, "__name__", model)
    if isinstance(model, type):
        return (lambda: model(**opts)), model.__name__
    if opts:
        raise ArgumentError("options", "options are for a class or a name; an instance is "
                                       "already built")
    template = copy.deepcopy(model)
    return (lambda: copy.deepcopy(template)), type(model).__name__


def _default_points(seed: int) -> Dataset:
    return load_dataset("moons", n_train=128, n_test=64, seed=seed)


def _as_dataset(dataset: Any, seed: int) -> Dataset:
    if dataset is None:
        return _default_points(seed)
    if isinstance(dataset, Dataset):
        return dataset
    if isinstance(dataset, str):
        return load_dataset(dataset, n_train=128, n_test=64, seed=seed)
    from autophagy.data import dataset_from_array

    return dataset_from_array(np.asarray(dataset), seed=seed)


def _data_shaped(samples: Any, dataset: Dataset) -> np.ndarray:
    from autophagy.loop import as_data_shape

    return as_data_shape(samples, dataset)


def check_model(
    model: Any,
    dataset: Dataset | str | np.ndarray | None = None,
    *,
    options: Mapping[str, Any] | None = None,
    n: int = 32,
    budget: int = 64,
    seed: int = 0,
) -> list[str]:
    """Check a model family against what the loop relies on; return the rules passed.

    ``model`` is a class (built as ``model(**options)``), a registered name or ``module:Class``
    (built as the loop builds it), or an unfitted instance (deep-copied for every fresh model
    a rule needs; never changed). ``dataset`` (default: 128 moons) is what it is fitted on,
    with ``budget`` samples seen per fit; ``n`` samples are drawn per call.

    Rules, in order (each one sentence of why):

    - *constructible*: the loop (and every resume) builds the model from its config options.
    - *protocol*: the loop calls ``fit``, ``sample``, ``state_dict`` and ``load_state_dict``.
    - *fit returns self*: the scikit-learn convention ``model.fit(x).sample(n)`` the API and
      docs use.
    - *fit leaves data untouched*: the loop reuses the real data every generation.
    - *sample is an array*: the loop takes ``np.asarray`` of it (numpy or CPU tensor).
    - *sample shape*: ``(n, *data shape)`` (or flat ``(n, prod(shape))``, which the loop
      reshapes), so samples mix with the real data.
    - *sample dtype*: floating point, as the data it is concatenated with.
    - *sample finite*: a NaN is a diverged generation.
    - *sample(0)*: ``mixed`` at lambda = 0 asks for no samples; it gets an empty array of the
      right shape.
    - *sample determinism*: one seed gives the same numbers; the loop draws only from the rng
      it passes.
    - *sample uses its rng*: two seeds give different samples (a model drawing from a global
      RNG, or a fixed seed of its own, makes the cells' seeds meaningless; a model that draws
      nothing, a point mass, fails it on purpose).
    - *fit determinism*: two fresh models fitted with the same rng sample the same.
    - *warm fit*: ``fit(warm_start=True)`` on the data plus its own samples (generation 1)
      runs and returns self.
    - *state is data*: ``state_dict()`` goes through the checkpoint format (no code, no
      objects), or nothing can be saved.
    - *state round-trip*: a fresh model that loads that checkpoint samples bit for bit as the
      original, so ``autophagy resume`` continues the same run.
    - *warm start after load*: the next warm-started fit (generation 2) of the loaded model
      continues bit for bit as the original's (optimizer moments, step counts, EMA are state).
    - *temperature*: a model that samples at a temperature declares it validly and gives
      finite, deterministic samples of the same shape at tau = 0.5.
    - *log_prob* (if present): one finite float per row, for the held-out NLL.
    """
    data = _as_dataset(dataset, seed)
    make, subject = _model_factory(model, options)
    rules = _Rules(subject)
    x = data.train.copy()  # a model that writes into its data must not spoil the caller's
    shape = tuple(x.shape[1:])

    with rules.rule("constructible"):
        m = make()
    with rules.rule("protocol"):
        missing = [name for name in PROTOCOL if not callable(getattr(m, name, None))]
        if missing:
            rules.fail("protocol", f"no method {', '.join(missing)}; the loop calls "
                                   f"{', '.join(PROTOCOL)}")
    original = x.copy()
    with rules.rule("fit returns self"):
        out = m.fit(x, warm_start=False, budget=budget, rng=_rng(seed, 0))
        if out is not m:
            rules.fail("fit returns self", f"fit returned {type(out).__name__}, not the model; "
                                           "end fit with 'return self'")
    with rules.rule("fit leaves data untouched"):
        if not _same(x, original):
            rules.fail("fit leaves data untouched",
                       f"fit changed its input in place ({_max_diff(x, original)}); the loop "
                       "reuses the real data every generation: work on a copy")
    with rules.rule("sample is an array"):
        first = np.asarray(sample_at(m, n, rng=_rng(seed, 1)))
    s = first
    with rules.rule("sample shape"):
        flat = (n, int(np.prod(shape)))
        if s.shape != (n, *shape) and s.shape != flat:
            alt = f" (or flat {flat})" if len(shape) > 1 else ""
            rules.fail("sample shape", f"sample({n}) gave shape {s.shape}; the loop needs "
                                       f"{(n, *shape)}{alt}")
    with rules.rule("sample dtype"):
        if not np.issubdtype(s.dtype, np.floating):
            rules.fail("sample dtype", f"sample gave dtype {s.dtype}; the loop mixes samples "
                                       "with float data: return floats")
    with rules.rule("sample finite"):
        if not np.all(np.isfinite(s)):
            rules.fail("sample finite", f"{int(np.sum(~np.isfinite(s)))} of {s.size} values "
                                        "are NaN or inf after a plain fit")
    with rules.rule("sample(0)"):
        empty = np.asarray(sample_at(m, 0, rng=_rng(seed, 1)))
        if empty.shape not in ((0, *shape), (0, flat[1])):
            rules.fail("sample(0)", f"sample(0) gave shape {empty.shape}, not {(0, *shape)}; "
                                    "mixed at lambda 0 asks for no samples")
    with rules.rule("sample determinism"):
        again = np.asarray(sample_at(m, n, rng=_rng(seed, 1)))
        if not _same(first, again):
            rules.fail("sample determinism", f"two calls with the same rng seed differ "
                                             f"({_max_diff(first, again)}); draw only from the "
                                             "rng passed in, and leave the model unchanged")
    with rules.rule("sample uses its rng"):
        other = np.asarray(sample_at(m, n, rng=_rng(seed, 2)))
        if _same(first, other):
            rules.fail("sample uses its rng", "two different rng seeds give the same samples; "
                                              "draw from the rng passed in")
    with rules.rule("fit determinism"):
        twin = make()
        twin.fit(x.copy(), warm_start=False, budget=budget, rng=_rng(seed, 0))
        theirs = np.asarray(sample_at(twin, n, rng=_rng(seed, 1)))
        if not _same(first, theirs):
            rules.fail("fit determinism", f"two fresh models fitted with the same rng sample "
                                          f"differently ({_max_diff(first, theirs)}); take all "
                                          "randomness from the rng passed to fit")

    with rules.rule("warm fit"):  # generation 1 of the loop: its own samples mixed in
        def next_set(k: int) -> np.ndarray:
            synth = _data_shaped(sample_at(m, len(x), rng=_rng(seed, k)), data)
            return np.concatenate([x, synth.astype(x.dtype, copy=False)])

        out = m.fit(next_set(3), warm_start=True, budget=budget, rng=_rng(seed, 4))
        if out is not m:
            rules.fail("fit returns self", f"a warm-started fit returned {type(out).__name__}")
    with rules.rule("state is data"):
        state = m.state_dict()
        if not isinstance(state, dict):
            rules.fail("state is data", f"state_dict returned {type(state).__name__}, not a dict")
        blob = _state_bytes(rules, "state is data", state, "state_dict()")
    with rules.rule("state round-trip"):
        fresh = make()
        fresh.load_state_dict(_statefile().loads(blob))
        a = np.asarray(sample_at(m, n, rng=_rng(seed, 5)))
        b = np.asarray(sample_at(fresh, n, rng=_rng(seed, 5)))
        if not _same(a, b):
            rules.fail("state round-trip", f"sample after load_state_dict differs from the "
                                           f"original ({_max_diff(a, b)}); state_dict "
                                           "must hold everything sample uses")
    with rules.rule("warm start after load"):  # generation 2, the original and a resumed one
        train = next_set(6)
        m.fit(train.copy(), warm_start=True, budget=budget, rng=_rng(seed, 7))
        fresh.fit(train.copy(), warm_start=True, budget=budget, rng=_rng(seed, 7))
        a = np.asarray(sample_at(m, n, rng=_rng(seed, 8)))
        b = np.asarray(sample_at(fresh, n, rng=_rng(seed, 8)))
        if not _same(a, b):
            rules.fail("warm start after load",
                       f"a warm-started fit after load_state_dict continues differently from the "
                       f"original ({_max_diff(a, b)}); training state (optimizer, step count, "
                       "EMA) belongs in state_dict")
    _check_temperature(rules, m, n, seed)
    if has_log_prob(m):
        with rules.rule("log_prob"):
            k = min(len(data.test), n)
            lp = np.asarray(m.log_prob(data.test[:k]))
            if lp.shape != (k,) or not np.issubdtype(lp.dtype, np.floating):
                rules.fail("log_prob", f"log_prob of {k} rows gave {lp.dtype} of shape "
                                       f"{lp.shape}; the NLL metric needs ({k},) floats")
            if not np.all(np.isfinite(lp)):
                rules.fail("log_prob", f"{int(np.sum(~np.isfinite(lp)))} of {k} held-out "
                                       "log-densities are not finite")
    return rules.passed


def _check_temperature(rules: _Rules, m: Any, n: int, seed: int) -> None:
    with rules.rule("temperature"):
        try:
            support = temperature_support(m)
        except ValueError as err:
            rules.fail("temperature", str(err))
        if support == "none":
            return
        hot = np.asarray(m.sample(n, rng=_rng(seed, 6), temperature=0.5))
        ref = np.asarray(sample_at(m, n, rng=_rng(seed, 6)))
        if hot.shape != ref.shape or not np.all(np.isfinite(hot)):
            rules.fail("temperature", f"sample at temperature 0.5 gave shape {hot.shape} "
                                      f"(finite: {bool(np.all(np.isfinite(hot)))}), at 1 "
                                      f"{ref.shape}")
        again = np.asarray(m.sample(n, rng=_rng(seed, 6), temperature=0.5))
        if not _same(hot, again):
            rules.fail("temperature", "two calls at temperature 0.5 with the same rng seed "
                                      f"differ ({_max_diff(hot, again)})")


# -------------------------------------------------------------------------------- policies
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
            result = policy.next_training_set(real, synth, state, rng=rng, pool=data.pool)
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


# --------------------------------------------------------------------------------- metrics
def _context(model: Any, dataset: Dataset, policy: Policy | None, n: int, seed: int,
             features: str) -> EvalContext:
    from autophagy.loop import evaluation_rng

    rng = evaluation_rng(seed, 0)
    samples = _data_shaped(sample_at(model, n, rng=rng), dataset)
    mean, cov = model_moments(model, samples)
    return EvalContext(model, samples, dataset.test.copy(), dataset, rng,
                       {"mean": mean, "cov": cov}, features=features, policy=policy)


def check_metric(
    metric: Metric | str,
    dataset: Dataset | str | None = None,
    *,
    model: Any = None,
    policy: Policy | str | None = None,
    features: str = "auto",
    n: int = 200,
    seed: int = 0,
) -> list[str]:
    """Check a metric against what the loop relies on; return the rules passed.

    ``metric`` is a :class:`~autophagy.metrics.Metric` or a name (``module:attr``). It is
    computed as the loop does at generation 0: ``n`` samples of ``model`` (a fitted model;
    default: a Gaussian fitted to ``dataset``, 128 moons by default) against the held-out set,
    with ``policy`` bound to the data where the metric reads one (the curated reward metrics),
    and the feature extractor ``features`` (config ``eval.features``; ``"pixels"`` needs no
    training).

    Rules (each one sentence of why):

    - *is a Metric*: the loop and the report read its name, title, order and direction.
    - *describes itself*: text name, description and title, a boolean ``lower_is_better``, a
      numeric ``order``, and ``needs`` only among what the experiment prepares (``features``,
      ``classifier``), since it prepares them before workers start.
    - *applies*: ``applies(ctx)`` answers True or False (the loop skips it when False; then
      nothing else is checked and ``"applies: no"`` is returned).
    - *finite float*: the results table stores one number per metric and generation (a group
      returns a mapping holding this metric's key).
    - *determinism*: a second context with the same seed gives the same number bit for bit.
    - *leaves ctx.rng alone*: a metric draws from ``metric_rng(ctx, name)``; advancing
      ``ctx.rng`` would move every metric computed after it.
    - *inputs untouched*: the samples and held-out data are shared by every metric.
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
        return _context(model, data, bound, n, seed, features)

    ctx = fresh()
    with rules.rule("applies"):
        applies = m.applies(ctx)
        if not isinstance(applies, bool | np.bool_):
            rules.fail("applies", f"applies(ctx) returned {applies!r}, not True or False")
    if not applies:
        return [*rules.passed, "applies: no (nothing computed)"]
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


# -------------------------------------------------------------------------------- datasets
def check_dataset(
    dataset: str | DatasetEntry | Dataset,
    *,
    options: Mapping[str, Any] | None = None,
    n_train: int = 64,
    n_test: int = 32,
    n_pool: int = 16,
    seed: int = 0,
) -> list[str]:
    """Check a dataset against what the loop relies on; return the rules passed.

    ``dataset`` is a registered name or ``module:attr`` naming a
    :class:`~autophagy.data.DatasetEntry`, an entry itself (registered for the check under a
    temporary name), or a built :class:`~autophagy.data.Dataset` (only its arrays are checked).

    Rules (each one sentence of why):

    - *loads*: ``load_dataset(name, n_train=, n_test=, n_pool=, seed=, **options)`` builds it,
      as a config does.
    - *arrays*: train, test (and pool) are numpy float arrays of finite values, the sizes asked
      for, one per-sample shape: the model fits them and metrics compare against them.
    - *kind and shape*: ``kind`` is ``points`` (rows ``(n, d)``) or ``images`` (``(n, C, H,
      W)`` in [-1, 1]), as the entry says: the report draws and the families build by it.
    - *disjoint splits*: no test or pool row is a training row; evaluation on seen data would
      flatter every model.
    - *determinism*: the same seed gives the same arrays bit for bit, another seed others: one
      seed, the same run.
    """
    temporary = None
    if isinstance(dataset, DatasetEntry):
        temporary = f"_contract_check_{id(dataset)}"
        DATASETS.register(temporary, dataset)
    try:
        return _check_dataset(temporary or dataset, options or {}, n_train, n_test, n_pool, seed)
    finally:
        if temporary is not None:
            DATASETS.unregister(temporary)


def _check_dataset(dataset, options, n_train, n_test, n_pool, seed) -> list[str]:
    built = isinstance(dataset, Dataset)
    rules = _Rules(dataset.name if built else str(dataset))
    sizes = {"n_train": n_train, "n_test": n_test, "n_pool": n_pool}

    def load(s: int) -> Dataset:
        return load_dataset(dataset, **sizes, seed=s, **options)

    with rules.rule("loads"):
        data = dataset if built else load(seed)
        if not isinstance(data, Dataset):
            rules.fail("loads", f"load_dataset gave {type(data).__name__}, not a Dataset")
    parts = {"train": data.train, "test": data.test}
    if data.pool is not None:
        parts["pool"] = data.pool
    with rules.rule("arrays"):
        for part, x in parts.items():
            if not isinstance(x, np.ndarray) or x.ndim < 2:
                rules.fail("arrays", f"{part} is {type(x).__name__} of shape "
                                     f"{getattr(x, 'shape', None)}, not an array (n, ...)")
            if not np.issubdtype(x.dtype, np.floating) or not np.all(np.isfinite(x)):
                rules.fail("arrays", f"{part} has dtype {x.dtype}, finite "
                                     f"{bool(np.all(np.isfinite(x)))}; models fit finite floats")
            if x.shape[1:] != data.train.shape[1:]:
                rules.fail("arrays", f"{part} rows have shape {x.shape[1:]}, train rows "
                                     f"{data.train.shape[1:]}")
            want = sizes.get(f"n_{part}")
            if not built and want and len(x) != want:
                rules.fail("arrays", f"{part} has {len(x)} rows, {want} were asked for")
        if not built and n_pool and data.pool is None:
            rules.fail("arrays", f"no pool, {n_pool} rows were asked for")
    with rules.rule("kind and shape"):
        if data.kind not in ("points", "images"):
            rules.fail("kind and shape", f"kind is {data.kind!r}, not 'points' or 'images'")
        if data.kind == "points" and data.train.ndim != 2:
            rules.fail("kind and shape", f"points of shape {data.train.shape}, not (n, d)")
        if data.kind == "images":
            x = data.train
            if x.ndim != 4 or x.min() < -1 or x.max() > 1:
                rules.fail("kind and shape", f"images of shape {x.shape} in [{x.min():g}, "
                                             f"{x.max():g}], not (n, C, H, W) in [-1, 1]")
        if data.shape != tuple(data.train.shape[1:]):
            rules.fail("kind and shape", f"shape {data.shape} is not the rows' "
                                         f"{data.train.shape[1:]}")
        if not built and DATASETS.entry(dataset).load().kind != data.kind:
            rules.fail("kind and shape", f"the entry says {DATASETS.entry(dataset).load().kind}"
                                         f", the dataset is {data.kind}")
    with rules.rule("disjoint splits"):
        seen = {row.tobytes() for row in data.train.reshape(len(data.train), -1)}
        for part in ("test", "pool"):
            if part in parts:
                x = parts[part]
                shared = sum(row.tobytes() in seen for row in x.reshape(len(x), -1))
                if shared:
                    rules.fail("disjoint splits", f"{shared} of {len(x)} {part} rows are "
                                                  "also training rows")
    if built:
        return rules.passed
    with rules.rule("determinism"):
        again, other = load(seed), load(seed + 1)
        for part in parts:
            if not _same(parts[part], getattr(again, part)):
                rules.fail("determinism", f"two loads with seed {seed} give different {part} "
                                          "arrays")
        if _same(data.train, other.train):
            rules.fail("determinism", f"seeds {seed} and {seed + 1} give the same train array; "
                                      "draw from the seed's rng")
    return rules.passed


# -------------------------------------------------------------------------------- any kind
def _kinds(target: str) -> list[tuple[str, Any]]:
    """What ``target`` names: (kind, object) for each registry holding it, or by its type."""
    module, colon, rest = target.partition(":")
    if not colon:
        found = [(kind, target) for kind, reg in (("model", MODELS), ("policy", POLICIES),
                                                   ("metric", METRICS), ("dataset", DATASETS))
                 if target in reg]
        if found:
            return found
        raise UnknownName(f"{target!r} is no registered model, policy, metric or dataset; "
                          "name one ('autophagy list') or give module:attr")
    if module in POLICIES:  # "mixed:0.5", "fresh_real:fraction=0.3"
        return [("policy", target)]
    obj = import_target(f"{module}:{rest.partition(':')[0]}")
    if isinstance(obj, Metric):
        return [("metric", obj)]
    if isinstance(obj, DatasetEntry | Dataset):
        return [("dataset", obj)]
    if isinstance(obj, Policy) or (isinstance(obj, type) and issubclass(obj, Policy)):
        return [("policy", target if rest.count(":") else obj)]
    if all(hasattr(obj, name) for name in ("fit", "sample")):
        return [("model", obj)]
    raise ContractError(target, "kind", f"{type(obj).__name__} is not a model (fit, sample), "
                                        "Policy, Metric or DatasetEntry")


CHECKS: dict[str, Callable[..., list[str]]] = {
    "model": check_model, "policy": check_policy, "metric": check_metric,
    "dataset": check_dataset,
}


def check(target: str, *, options: Mapping[str, Any] | None = None,
          dataset: str | None = None) -> list[str]:
    """Run the right contract check on ``target`` and return lines to print (``autophagy
    check TARGET``).

    ``target`` is a registered name (``"gmm"``, ``"mixed:0.5"``, ``"w2"``, ``"moons"``; a name
    registered as two kinds, like ``gaussian``, is checked as both) or ``module:attr``.
    ``options`` go to a model's constructor, a policy's parameters or a dataset's builder;
    ``dataset`` is the data a model, policy or metric is checked on. Raises
    :class:`ContractError` (one line) on the first broken rule.
    """
    lines = []
    for kind, obj in _kinds(target):
        if kind == "model":
            passed = check_model(obj, dataset, options=options)
        elif kind == "policy":
            passed = check_policy(obj, dataset, params=options)
        elif kind == "metric":
            passed = check_metric(obj, dataset)
        else:
            passed = check_dataset(obj, options=options)
        if passed[-1].startswith("applies: no"):
            lines.append(f"{kind} {target}: does not apply on {dataset or 'moons'}; name a "
                         "dataset it applies to")
            continue
        lines.append(f"{kind} {target}: {len(passed)} rules passed")
        lines += [f"  ok  {rule}" for rule in passed]
    return lines
