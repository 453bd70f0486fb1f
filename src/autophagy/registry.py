"""One registration shape for every extension point: models, policies, metrics, datasets.

Why one shape: a new policy, metric, model family or dataset should be one file and one line, and
the orchestration (grid expansion, evaluation, the report, ``autophagy list``) should *ask* the
registry instead of matching names. Each kind has a :class:`Registry`; an entry is an object or a
lazy ``"module:attr"`` target (so ``autophagy list`` never imports torch) with a one-line
description.

Three ways in:

- inside the package: ``POLICIES.register("mixed", Mixed)`` next to the definition;
- a third-party package: an entry point in the group ``autophagy.plugins`` naming a module (or a
  callable) that registers its extensions when loaded, found the first time any registry is read;
- a config: any ``"module:attr"`` name (``model.name: mylab.models:Box``) is imported on demand.

Example:
    >>> from autophagy.policies import POLICIES, Policy
    >>> @POLICIES.register("keep_half")
    ... class KeepHalf(Policy): ...
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from autophagy.errors import (
    InputError,
    UnknownName,  # noqa: F401
)

T = TypeVar("T")
PLUGIN_GROUP = "autophagy.plugins"


def import_target(target: str) -> Any:
    """The object a ``"package.module:attr"`` string names."""
    module, _, attr = target.partition(":")
    if not module or not attr:
        raise UnknownName(f"{target!r} is not of the form 'package.module:name'")
    try:
        obj = importlib.import_module(module)
    except ImportError as err:
        raise UnknownName(f"{target!r}: cannot import {module!r} ({err})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UnknownName(f"{target!r}: module {module!r} has no {attr!r}")
        obj = getattr(obj, part)
    return obj


@dataclass
class Entry(Generic[T]):
    """A registered name: the object itself, or a lazy ``module:attr`` target, and what it is."""

    name: str
    target: T | str
    description: str = ""

    def load(self) -> T:
        if isinstance(self.target, str):
            self.target = import_target(self.target)
        return self.target


_plugins_loaded = False


def load_plugins() -> None:
    """Import every ``autophagy.plugins`` entry point once (each registers what it brings)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group=PLUGIN_GROUP):
        obj = ep.load()
        if callable(obj):
            obj()


class Registry(Mapping[str, T]):
    """Names of one kind of extension (``kind`` is used in errors: "unknown policy 'x'")."""

    def __init__(self, kind: str, describe: Callable[[Any], str] | None = None):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self._describe = describe or (lambda obj: (obj.__doc__ or "").strip().split("\n")[0])

    def register(
        self,
        name: str,
        target: T | str | None = None,
        *,
        description: str | None = None,
        replace: bool = False,
    ) -> Any:
        """Register ``target`` under ``name``; without ``target``, a decorator that does so.

        Refuses to shadow a name unless ``replace=True``, so two modules cannot silently define
        the same extension twice.
        """
        if target is None:
            return lambda obj: self.register(name, obj, description=description, replace=replace)
        if name in self._entries and not replace:
            raise InputError(
                f"a {self.kind} named {name!r} is already registered; pass replace=True to "
                "override it"
            )
        if description is None:
            description = "" if isinstance(target, str) else self._describe(target)
        self._entries[name] = Entry(name, target, description)
        return target

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def entry(self, name: str) -> Entry[T]:
        load_plugins()
        if name in self._entries:
            return self._entries[name]
        if ":" in str(name):
            obj = import_target(str(name))
            return Entry(str(name), obj, self._describe(obj))
        raise UnknownName(f"unknown {self.kind} {name!r}; {self.choices(str(name))}")

    def __getitem__(self, name: str) -> T:
        return self.entry(name).load()

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._entries or (isinstance(name, str) and ":" in name)

    def __iter__(self) -> Iterator[str]:
        load_plugins()
        return iter(self._entries)

    def __len__(self) -> int:
        load_plugins()
        return len(self._entries)

    def describe(self) -> list[tuple[str, str]]:
        """(name, one-line description) of every entry, without importing lazy targets."""
        load_plugins()
        return [(e.name, e.description) for e in self._entries.values()]

    def choices(self, name: str = "") -> str:
        """'did you mean ...? choose from: a, b, c' for error messages."""
        return choices_hint(name, list(self))


def choices_hint(name: str, known: list[str], verb: str = "choose from") -> str:
    """'did you mean 'x'? choose from: a, b, c' (the closest known name, if any is close)."""
    close = difflib.get_close_matches(name, known, n=1) if name else []
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}{verb}: {', '.join(known)}"
