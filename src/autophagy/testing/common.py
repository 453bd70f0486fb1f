"""What every contract check shares: the rule book, tiny data, checkpoints through the
run directory's own format."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from autophagy.data import Dataset, load_dataset
from autophagy.errors import ArgumentError, ContractError
from autophagy.models import (
    MODELS,
    build_model,
)

KNOWN_NEEDS = frozenset({"features", "classifier", "labels", "groups"})
"""What the experiment prepares before workers start when a metric or policy declares it
(``features``, ``classifier``), or checks the dataset has (``labels``, ``groups``)."""
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
