"""Validate keyword options against a constructor's signature, with errors that teach.

Configs pass free-form ``options`` to datasets and models; checking them against the real
signature up front turns a typo into one clear line before anything runs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from autophagy.errors import ArgumentError  # noqa: F401


def _keywords(fn: Callable[..., Any], skip: tuple[str, ...]) -> tuple[list[str], bool]:
    """(named keyword parameters of ``fn`` minus ``skip``, whether it also takes ``**kwargs``)."""
    params = inspect.signature(fn).parameters.values()
    names = [p.name for p in params
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in skip]
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def accepted_options(fn: Callable[..., Any] | type, skip: tuple[str, ...] = ()) -> list[str] | None:
    """Keyword options ``fn`` accepts, or ``None`` when it takes any.

    For a class, a constructor that passes ``**options`` up to its base (the neural families
    hand the shared training options to ``NeuralModel``) accepts its own keywords plus its bases'
    along the MRO, so every family's options are checked without a hand-kept list.
    """
    if not isinstance(fn, type):
        names, open_ended = _keywords(fn, skip)
        return None if open_ended else names
    out: list[str] = []
    for klass in fn.__mro__:
        if "__init__" not in vars(klass) or klass is object:
            continue
        names, open_ended = _keywords(vars(klass)["__init__"], (*skip, "self"))
        out += [n for n in names if n not in out]
        if not open_ended:
            return out
    return None if fn.__init__ is not object.__init__ else out


def check_options(
    fn: Callable[..., Any] | type, options: dict[str, Any], *, field: str = "options",
    skip: tuple[str, ...] = ()
) -> None:
    """Raise :class:`ArgumentError` (``field``) if ``options`` has a key ``fn`` does not accept."""
    allowed = accepted_options(fn, skip)
    if allowed is None:
        return
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        choices = ", ".join(allowed) if allowed else "none"
        raise ArgumentError(field, f"unknown option {unknown[0]!r}; accepted: {choices}")
