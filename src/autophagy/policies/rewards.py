"""Rewards for curated retraining: one finite score ``r(x)`` per sample.

Ferbach et al. (2024), "Self-consuming generative models with curated data provably optimize human
preferences", model a user who, shown K samples, keeps one with Bradley-Terry probabilities
``exp(beta r(x_i)) / sum_j exp(beta r(x_j))``. The reward ``r`` is what this module provides:

- points: ``bump`` (a Gaussian bump ``exp(-|x - center|^2 / (2 width^2))``), ``linear``
  (``x . direction``), ``distance`` (``-|x - center|``);
- labelled images: ``class_logprob``, the log-probability of class ``label`` under the dataset's
  classifier (:class:`~autophagy.metrics.classifier.DatasetClassifier`), as in the paper's CIFAR
  experiment;
- a user's own function, ``"package.module:function"``, called as ``function(x, **options)`` on
  samples in the dataset's shape and returning one number per sample.

A reward is named in a config by a name or a mapping ``{name: bump, center: [1, 0]}``; its
canonical text (:func:`reward_spec`) is ``"bump {center: [1, 0]}"``. :func:`reward_spec` checks
the name and the options without data; :func:`make_reward` builds it for a dataset and
:func:`check_reward` also runs it on real samples, so a reward that raises or returns NaN stops a
run before anything trains.

Example:
    >>> r = make_reward({"name": "bump", "center": [1.0, 0.0], "width": 0.5})
    >>> r(np.array([[1.0, 0.0], [3.0, 0.0]])).round(3)
    array([1.   , 0.   ])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import yaml

from autophagy.errors import InputError
from autophagy.metrics.base import as_rows
from autophagy.registry import Registry, UnknownName
from autophagy.signatures import ArgumentError, check_options

Factory = Callable[..., Callable[[np.ndarray], np.ndarray]]
"""``factory(dataset, **options) -> r``; ``dataset`` may be None for the point rewards."""
CHECK_SAMPLES = 64
"""Real samples a reward is tried on before a run starts."""


def _vector(value: Any, name: str, default: Callable[[int], np.ndarray]):
    """An option vector checked against the samples' dimension at first use."""
    given = None if value is None else np.atleast_1d(np.asarray(value, dtype=np.float64))
    if given is not None and (given.ndim != 1 or not np.all(np.isfinite(given))):
        raise InputError(f"{name} must be a list of finite numbers, got {value!r}")

    def at(d: int) -> np.ndarray:
        v = default(d) if given is None else given
        if len(v) != d:
            raise InputError(f"{name} has {len(v)} values but the samples have {d} dimensions")
        return v

    return at


def _positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
        np.isfinite(value) and value > 0
    ):
        raise InputError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def bump(dataset: Any = None, *, center: Any = None, width: float = 1.0):
    """``exp(-|x - center|^2 / (2 width^2))``: highest (1) at ``center`` (default the origin)."""
    c, w = _vector(center, "center", np.zeros), _positive(width, "width")

    def r(x: np.ndarray) -> np.ndarray:
        x = as_rows(x)
        return np.exp(-((x - c(x.shape[1])) ** 2).sum(1) / (2 * w**2))

    return r


def linear(dataset: Any = None, *, direction: Any = None):
    """``x . direction`` (default the first axis): the reward grows without bound along it."""
    u = _vector(direction, "direction", lambda d: np.eye(d)[0])

    def r(x: np.ndarray) -> np.ndarray:
        x = as_rows(x)
        return x @ u(x.shape[1])

    return r


def distance(dataset: Any = None, *, center: Any = None):
    """``-|x - center|``: the negative Euclidean distance to ``center`` (default the origin)."""
    c = _vector(center, "center", np.zeros)

    def r(x: np.ndarray) -> np.ndarray:
        x = as_rows(x)
        return -np.sqrt(((x - c(x.shape[1])) ** 2).sum(1))

    return r


def class_logprob(dataset: Any = None, *, label: int = 0):
    """``log p(label | x)`` under the dataset's classifier (labelled image datasets only)."""
    if isinstance(label, bool) or not isinstance(label, int | np.integer) or label < 0:
        raise InputError(f"label must be a class number >= 0, got {label!r}")
    if dataset is None:
        raise InputError("class_logprob needs the dataset (its classifier): bind the policy first")
    from autophagy.metrics.classifier import DatasetClassifier, has_labels

    if not has_labels(dataset):
        raise InputError(
            f"class_logprob needs a labelled image dataset; {dataset.name!r} has no class labels"
        )
    clf = DatasetClassifier.for_dataset(dataset)
    if label >= clf.n_classes:
        raise InputError(
            f"label {label} is not a class of {dataset.name!r} (0..{clf.n_classes - 1})"
        )
    return lambda x: clf.log_proba(x)[:, int(label)]


class_logprob.needs = frozenset({"classifier"})  # type: ignore[attr-defined]

REWARDS: Registry[Factory] = Registry("reward")
"""Built-in rewards by name; add one with ``REWARDS.register(name, factory)`` where
``factory(dataset, **options)`` returns ``r(x) -> (n,)``."""
REWARDS.register("bump", bump)
REWARDS.register("linear", linear)
REWARDS.register("distance", distance)
REWARDS.register("class_logprob", class_logprob)


# -- specs ---------------------------------------------------------------------------------------
def parse_reward(spec: Any) -> tuple[str, dict[str, Any]]:
    """``(name, options)`` of a reward given as a name, a mapping or its canonical text."""
    if isinstance(spec, Mapping):
        options = dict(spec)
        name = options.pop("name", None)
    elif isinstance(spec, str):
        name, _, rest = spec.strip().partition(" ")
        try:
            options = yaml.safe_load(rest) if rest.strip() else {}
        except yaml.YAMLError:
            options = None
        if not isinstance(options, dict):
            raise InputError(f"reward {spec!r}: options after the name must be a mapping {{...}}")
    else:
        raise InputError(f"a reward is a name or a mapping with a 'name', got {spec!r}")
    if not isinstance(name, str) or not name:
        raise InputError(f"a reward mapping needs a 'name' (choose from: {', '.join(REWARDS)})")
    return name, options


def _user_function(name: str) -> Callable[..., Any]:
    from autophagy.registry import import_target

    try:
        fn = import_target(name)
    except UnknownName as err:
        raise InputError(str(err)) from None
    if not callable(fn):
        raise InputError(f"reward {name!r} is not callable")
    return fn


def _factory(name: str) -> Factory:
    """The factory of reward ``name``: a registered one, or a user's ``module:function``."""
    if name in REWARDS and ":" not in name:
        return REWARDS[name]
    if ":" in name:
        fn = _user_function(name)

        def user(dataset: Any = None, **options: Any):
            return lambda x: fn(x, **options)

        user.check = fn  # type: ignore[attr-defined]
        return user
    raise InputError(f"unknown reward {name!r}; {REWARDS.choices(name)}, or 'module:function'")


def reward_spec(spec: Any) -> str:
    """Check a reward's name and options (no data needed) and return its canonical text.

    Raises ``ValueError`` naming the problem: an unknown name, an option the reward does not
    take, a ``module:function`` that cannot be imported.
    """
    name, options = parse_reward(spec)
    factory = _factory(name)
    target = getattr(factory, "check", factory)
    skip = ("dataset",) if target is factory else _first_parameter(target)
    try:
        check_options(target, options, field="reward", skip=skip)
    except ArgumentError as err:
        raise InputError(f"reward {name!r}: {err.detail}") from None
    if target is factory and name != "class_logprob":
        try:
            factory(None, **options)  # validates option values
        except (TypeError, ValueError) as err:
            raise InputError(f"reward {name!r}: {err}") from None
    if not options:
        return name
    return f"{name} {yaml.safe_dump(options, default_flow_style=True, sort_keys=True).strip()}"


def _first_parameter(fn: Callable[..., Any]) -> tuple[str, ...]:
    import inspect

    params = list(inspect.signature(fn).parameters)
    return tuple(params[:1])


def reward_needs(spec: Any) -> frozenset[str]:
    """What the experiment must prepare for the reward (``{"classifier"}`` for class rewards)."""
    name, _ = parse_reward(spec)
    return frozenset(getattr(REWARDS[name], "needs", ())) if name in REWARDS and ":" not in name \
        else frozenset()


@dataclass(frozen=True)
class Reward:
    """A reward built for one dataset: ``reward(x)`` is a finite float64 array of shape (n,).

    Every call checks the output, so a user's function returning NaN or the wrong shape fails
    with its name instead of silently steering the loop.
    """

    spec: str
    fn: Callable[[np.ndarray], Any]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        try:
            out = np.asarray(self.fn(x), dtype=np.float64)
        except Exception as err:
            raise InputError(f"reward {self.spec!r} raised {type(err).__name__}: {err}") from None
        if out.shape != (len(x),):
            raise InputError(
                f"reward {self.spec!r} must return one number per sample, shape ({len(x)},); "
                f"got shape {out.shape}"
            )
        bad = ~np.isfinite(out)
        if bad.any():
            raise InputError(
                f"reward {self.spec!r} returned non-finite values (NaN or inf) for "
                f"{int(bad.sum())} of {len(x)} samples"
            )
        return out


def make_reward(spec: Any, dataset: Any = None) -> Reward:
    """The reward ``spec`` built for ``dataset`` (needed by ``class_logprob``)."""
    text = reward_spec(spec)
    name, options = parse_reward(text)
    try:
        fn = _factory(name)(dataset, **options)
    except (TypeError, ValueError) as err:
        raise InputError(f"reward {name!r}: {err}") from None
    return Reward(text, fn)


def check_reward(spec: Any, dataset: Any) -> Reward:
    """:func:`make_reward`, then run it on up to :data:`CHECK_SAMPLES` real training samples."""
    reward = make_reward(spec, dataset)
    reward(np.asarray(dataset.train[:CHECK_SAMPLES]))
    return reward
