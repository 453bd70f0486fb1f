"""``torch.load(weights_only=True)`` for files someone else wrote: refusals in one line.

Why a wrapper: torch's own refusal is a paragraph that ends by advising ``weights_only=False``,
which would run whatever code the file names, and a pickle of another protocol first prints a
two-line ``UserWarning``. A received file gets one line instead: the file, the global its
pickle asked for, and that nothing ran (:class:`~autophagy.errors.CheckpointRefused`); a file
that is merely damaged says so, also in one line. Neither ever suggests turning the check off.
"""

from __future__ import annotations

import io
import pickle
import re
import warnings
from pathlib import Path
from typing import IO, Any

import torch

from autophagy.errors import ArgumentError, CheckpointRefused

_GLOBAL = re.compile(r"GLOBAL (\S+)")
_EDM = "torch_utils.persistence."
_TENSOR_GLOBALS = ("torch.", "collections.OrderedDict", "_codecs.encode", "builtins.set")
"""Globals of a plain state dict: a pickle asking for anything else is named by it."""


def load_weights_only(
    source: str | Path | IO[bytes],
    path: str | Path,
    *,
    argument: str = "init_checkpoint",
    expected: str = "a state dict",
) -> Any:
    """``torch.load(source, weights_only=True)`` on the CPU, quietly, failing in one line.

    ``path`` names the file in messages (``source`` may be a buffer read from it); ``expected``
    says what the file should have been ("a state dict").

    Raises:
        CheckpointRefused: the pickle asks for a global outside torch's weights-only allow-list
            (its code did not run).
        ArgumentError: the file is not a torch file, or is truncated or damaged.
    """
    with warnings.catch_warnings():
        # "Detected pickle protocol 4 in the checkpoint": the refusal or the load below says
        # all a reader needs.
        warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
        try:
            return torch.load(source, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            raise explain(err, path, argument=argument, expected=expected,
                          data=_bytes_of(source)) from None
        except Exception as err:  # a zip that is not torch's, a bad magic number, a short read
            raise ArgumentError(argument, f"{str(path)!r} is not {expected} that torch reads "
                                f"({type(err).__name__}: {first_line(err)})") from None


def explain(
    err: BaseException, path: str | Path, *, argument: str = "init_checkpoint",
    expected: str = "a state dict", data: bytes | None = None,
) -> ArgumentError:
    """One line for torch's weights-only failure ``err``: a refusal naming the global asked for,
    or, for a file that is only truncated or damaged, what is wrong with it. ``data`` (the
    file's bytes) names the global when torch stopped before reaching it (a plain pickle)."""
    text = str(err)
    if m := _GLOBAL.search(text):
        return refusal(path, m[1], argument=argument, expected=expected)
    foreign = [g for g in pickle_globals(data or b"") if not g.startswith(_TENSOR_GLOBALS)]
    if foreign:
        return refusal(path, foreign[0], argument=argument, expected=expected)
    raw = text.split("WeightsUnpickler error:")[-1] if "WeightsUnpickler error:" in text else (
        text.split("\n\n", 1)[-1])
    reason = first_line(raw.split("Check the documentation of torch.load")[0])
    if not reason or "weights_only" in reason:  # never pass on torch's advice to turn it off
        reason = "unreadable"
    if re.search(r"truncated|ran out of input|EOF", reason, re.IGNORECASE):
        return ArgumentError(argument, f"{str(path)!r} is truncated ({reason})")
    # no global named: nothing in it could have run code; a damaged or foreign file
    return ArgumentError(argument, f"{str(path)!r} is not {expected} that torch reads "
                         f"({reason})")


def refusal(
    path: str | Path, asked: str, *, argument: str = "init_checkpoint",
    expected: str = "a state dict",
) -> CheckpointRefused:
    """The one line of a refused file: the global its pickle asked for, and that nothing ran."""
    hint = ""
    if asked.startswith(_EDM):
        hint = ("; it is an NVlabs/edm network pickle: name it .pkl, which model edm with "
                "network songunet reads as data")
    return CheckpointRefused(argument, f"refused {str(path)!r}: its pickle asks for {asked}, which "
                             f"{expected} does not need; nothing was run{hint}")


def first_line(err: BaseException | str) -> str:
    """The first non-empty line of an error's message, without terminal escapes."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def pickle_globals(data: bytes) -> list[str]:
    """The globals (``module.name``) the first pickle in ``data`` asks for, read from its opcodes
    with :mod:`pickletools`, which parses and never executes; ``[]`` for what does not parse."""
    import pickletools

    found: list[str] = []
    strings: list[Any] = []  # the string arguments pushed last (STACK_GLOBAL takes two)
    memo: dict[int, Any] = {}
    try:
        for op, arg, _ in pickletools.genops(data):
            name = op.name
            if name == "GLOBAL" or name == "INST":
                found.append(str(arg).replace(" ", ".", 1))
            elif name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
            elif "UNICODE" in name or name in ("STRING", "BINSTRING", "SHORT_BINSTRING"):
                strings.append(arg)
            elif name == "MEMOIZE" and strings:
                memo[len(memo)] = strings[-1]
            elif name in ("PUT", "BINPUT", "LONG_BINPUT") and strings:
                memo[int(arg)] = strings[-1]
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                strings.append(memo.get(int(arg), "?"))
    except Exception:  # noqa: BLE001 - a damaged pickle: what was read so far
        pass
    return found


def _bytes_of(source: Any) -> bytes | None:
    if isinstance(source, io.BytesIO):
        return source.getvalue()
    try:
        with open(source, "rb") as f:
            return f.read(1 << 20)  # the globals of a pickle come early; never a whole network
    except (OSError, TypeError):
        return None
