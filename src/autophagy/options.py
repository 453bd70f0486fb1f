"""Validate keyword options against a constructor's signature, with errors that teach.

Configs pass free-form ``options`` to datasets and models; checking them against the real
signature up front turns a typo into one clear line before anything runs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


class ArgumentError(ValueError):
    """A bad argument, named in library terms (``argument``: ``device``, ``path``, ``options``).

    Why a type: the command line maps it to the config field it came from (``model.options.device``)
    in one place (:func:`autophagy.config.config_field`) instead of every module speaking CLI.
    """

    def __init__(self, argument: str, message: str):
        super().__init__(f"{argument}: {message}")
        self.argument = argument
        self.detail = message


def accepted_options(fn: Callable[..., Any], skip: tuple[str, ...] = ()) -> list[str]:
    """Keyword parameters of ``fn`` (minus ``skip``); empty when it takes ``**kwargs``."""
    params = inspect.signature(fn).parameters.values()
    return [
        p.name
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in skip
    ]


def check_options(
    fn: Callable[..., Any], options: dict[str, Any], *, field: str = "options",
    skip: tuple[str, ...] = ()
) -> None:
    """Raise :class:`ArgumentError` (``field``) if ``options`` has a key ``fn`` does not accept."""
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    allowed = accepted_options(fn, skip)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        choices = ", ".join(allowed) if allowed else "none"
        raise ArgumentError(field, f"unknown option {unknown[0]!r}; accepted: {choices}")
