"""Checkpoints as data: arrays and tensors in safetensors, everything else as tagged JSON.

A checkpoint holds a model's ``state_dict()``, the training RNG state, the policy state, the
reference moments and the metric rows so far: nested dicts and lists of numpy arrays, torch
tensors and plain values. ``pickle`` would store all of that, and also any code a file names, so
a run directory received from someone else could run anything on ``autophagy resume``. Here a
checkpoint is a single `safetensors <https://huggingface.co/docs/safetensors>`_ file: the
arrays in its byte buffer, and the tree around them as JSON in its header's ``__metadata__``.
Nothing in it is executable, and reading it never imports anything it names.

One file, not a ``.safetensors`` + ``.json`` pair: a checkpoint is then one atomic rename, and a
tensor file can never sit beside the JSON of another generation. The header stays readable
with any safetensors reader (``safe_open(path, "np").metadata()``) or by hand: eight bytes of
little-endian length, then JSON.

JSON alone is lossy, so the tree tags what it cannot say (a tag is an object whose keys start
with ``$``)::

    {"$array": name, "dtype": "<f8", "shape": [3, 3]}      numpy array (``"order": "F"``, raw)
    {"$tensor": name, "dtype": "float32", "shape": [64]}   torch tensor (always on the CPU)
    {"$scalar": "<f4", "value": 0.5}                       numpy scalar (``"hex"`` when not finite)
    {"$float": "nan"}  {"$tuple": [...]}  {"$dict": [[k, v], ...]}  {"$odict": [[k, v], ...]}
    {"$bytes": base64}  {"$dtype": descr}  {"$torch_dtype": "bfloat16"}  {"$size": [2, 3]}

``$dict`` carries dicts whose keys are not all strings (a torch optimizer's ``state`` has int
keys) or that start with ``$``. Python ints of any size are plain JSON. Dtypes safetensors lacks
(bfloat16 as numpy sees it, complex128, long double, big-endian, strings) travel as raw bytes
and are viewed back, so every array comes back bit for bit with its dtype, shape and (C or
Fortran) order, writable. Tensors come back on the CPU, contiguous.

Example:
    >>> blob = dumps({"model": {"mean": np.zeros(2)}, "rows": [(0, "w2", 0.1)]})
    >>> loads(blob)["rows"]
    [(0, 'w2', 0.1)]
"""

from __future__ import annotations

import base64
import json
import math
import struct
import sys
from collections import OrderedDict
from typing import Any

import numpy as np

from autophagy.errors import (
    InputError,
    StateFileError,  # noqa: F401
)

FORMAT = "autophagy.state/1"
"""The ``format`` entry of a checkpoint's header metadata."""
SUFFIX = ".safetensors"

_NATIVE = {"|b1", "|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f2", "<f4", "<f8"}
"""numpy dtypes that safetensors stores as themselves; the others travel as raw bytes."""
_TORCH_NUMPY = {
    "bool": "|b1", "uint8": "|u1", "int8": "|i1", "int16": "<i2", "int32": "<i4",
    "int64": "<i8", "float16": "<f2", "float32": "<f4", "float64": "<f8",
}  # fmt: skip
"""torch dtypes stored natively (through numpy); the others (bfloat16, complex) as raw bytes."""


def dumps(state: Any) -> bytes:
    """The checkpoint bytes of ``state`` (nested dicts, lists, tuples, arrays, tensors, values).

    Raises:
        TypeError: something in ``state`` is not data (an object, a function, a generator):
            the message names where, e.g. ``model.trainer.sampler``.
    """
    import safetensors.numpy

    encoder = _Encoder()
    tree = encoder.encode(state, ())
    meta = {"format": FORMAT, "state": json.dumps(tree, separators=(",", ":"), allow_nan=False)}
    return _canonical(safetensors.numpy.save(encoder.arrays, metadata=meta))


def _canonical(blob: bytes) -> bytes:
    """``blob`` with its header's ``__metadata__`` keys in sorted order.

    Why: safetensors writes ``__metadata__`` from a Rust ``HashMap``, whose order changes from
    process to process, so the same state gave different bytes (and sha256) in two runs, and two
    writers of one checkpoint wrote different files. The tensor entries keep safetensors' own
    (deterministic) order and offsets; the header is re-padded with spaces to 8 bytes, as
    safetensors pads it, so the buffer stays aligned.
    """
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    meta = header.pop("__metadata__", None)
    ordered = {"__metadata__": dict(sorted(meta.items()))} if meta is not None else {}
    text = json.dumps({**ordered, **header}, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + blob[8 + n :]


def loads(data: bytes) -> Any:
    """The state :func:`dumps` wrote, with the same types and bit-identical arrays."""
    import safetensors.numpy

    meta = read_metadata(data)
    try:
        tree = json.loads(meta["state"])
        arrays = safetensors.numpy.load(bytes(data))
    except (KeyError, ValueError, TypeError) as err:
        raise StateFileError(f"damaged checkpoint ({err})") from None
    except Exception as err:  # safetensors raises its own error type for a bad buffer
        raise StateFileError(f"damaged checkpoint ({type(err).__name__}: {err})") from None
    try:
        return _Decoder(arrays).decode(tree)
    except (KeyError, ValueError, TypeError, IndexError) as err:
        raise StateFileError(f"damaged checkpoint tree ({type(err).__name__}: {err})") from None


def read_metadata(data: bytes) -> dict[str, str]:
    """The header metadata of checkpoint bytes, checked to be an autophagy checkpoint."""
    if len(data) < 8:
        raise StateFileError(f"truncated checkpoint ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise StateFileError(f"truncated checkpoint (header of {n} bytes, {len(data)} in file)")
    try:
        header = json.loads(bytes(data[8 : 8 + n]))
    except ValueError:
        raise StateFileError("damaged checkpoint header (not JSON)") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise StateFileError(f"not an autophagy checkpoint (format {found!r}, want {FORMAT!r})")
    return meta


def _torch():
    """torch if it is already imported: nothing can be a tensor otherwise (keeps gmm runs light)."""
    return sys.modules.get("torch")


class _Encoder:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def encode(self, x: Any, path: tuple[str, ...]) -> Any:
        torch = _torch()
        if x is None or type(x) in (bool, str):
            return x
        if type(x) is int:
            return x
        if type(x) is float:
            return x if math.isfinite(x) else {"$float": x.hex()}
        if isinstance(x, np.generic):
            return _scalar(x, path)
        if type(x) is np.ndarray or isinstance(x, np.ndarray):
            return self._array(np.asarray(x), path)
        if torch is not None and isinstance(x, torch.Tensor):
            return self._tensor(x, path)
        if isinstance(x, np.dtype):
            return {"$dtype": self.encode(np.lib.format.dtype_to_descr(x), path)}
        if torch is not None and isinstance(x, torch.dtype):
            return {"$torch_dtype": str(x).removeprefix("torch.")}
        if torch is not None and isinstance(x, torch.Size):
            return {"$size": list(x)}
        if type(x) is dict:
            if all(type(k) is str and not k.startswith("$") for k in x):
                return {k: self.encode(v, (*path, k)) for k, v in x.items()}
            return {"$dict": self._pairs(x, path)}
        if type(x) is OrderedDict:
            return {"$odict": self._pairs(x, path)}
        if type(x) is list:
            return [self.encode(v, (*path, str(i))) for i, v in enumerate(x)]
        if type(x) is tuple:
            return {"$tuple": [self.encode(v, (*path, str(i))) for i, v in enumerate(x)]}
        if type(x) is bytes:
            return {"$bytes": base64.b64encode(x).decode("ascii")}
        where = ".".join(path) or "the top level"
        raise TypeError(
            f"checkpoint: cannot store a {type(x).__module__}.{type(x).__qualname__} at {where}; "
            "state_dict() must hold only arrays, tensors, numbers, strings, lists, tuples and "
            "dicts (no objects: a checkpoint is data, never code)"
        )

    def _pairs(self, x: dict, path: tuple[str, ...]) -> list[list[Any]]:
        return [[self.encode(k, path), self.encode(v, (*path, str(k)))] for k, v in x.items()]

    def _name(self, path: tuple[str, ...]) -> str:
        base = "/".join(path) or "."
        name, n = base, 1
        while name in self.arrays:
            name, n = f"{base}#{n}", n + 1
        return name

    def _array(self, a: np.ndarray, path: tuple[str, ...]) -> dict[str, Any]:
        if a.dtype.hasobject:
            where = ".".join(path) or "the top level"
            raise TypeError(f"checkpoint: cannot store an object array at {where}")
        tag: dict[str, Any] = {"$array": None, "dtype": self.encode(_descr(a.dtype), path)}
        if a.ndim > 1 and a.flags.f_contiguous and not a.flags.c_contiguous:
            a, tag["order"] = a.T, "F"  # as pickle does: Fortran arrays stay Fortran
        tag["shape"] = list(a.shape)
        a = a if a.flags.c_contiguous else a.copy(order="C")
        if a.dtype.str not in _NATIVE:
            a, tag["raw"] = a.reshape(-1).view(np.uint8), True
        tag["$array"] = name = self._name(path)
        self.arrays[name] = a
        return tag

    def _tensor(self, t: Any, path: tuple[str, ...]) -> dict[str, Any]:
        import torch

        dtype = str(t.dtype).removeprefix("torch.")
        tag: dict[str, Any] = {"$tensor": None, "dtype": dtype, "shape": list(t.shape)}
        if isinstance(t, torch.nn.Parameter):
            tag["parameter"] = True
        if t.requires_grad:
            tag["requires_grad"] = True
        t = t.detach().cpu().contiguous()
        if dtype in _TORCH_NUMPY:
            a = t.numpy()
        else:
            a, tag["raw"] = t.reshape(-1).view(torch.uint8).numpy(), True
        tag["$tensor"] = name = self._name(path)
        self.arrays[name] = a
        return tag


def _descr(dtype: np.dtype) -> Any:
    return np.lib.format.dtype_to_descr(dtype)


def _scalar(x: np.generic, path: tuple[str, ...]) -> dict[str, Any]:
    dt = x.dtype
    if dt.hasobject:
        raise TypeError(f"checkpoint: cannot store a numpy object scalar at {'.'.join(path)}")
    if dt.kind in "biu" or (dt.kind == "f" and dt.itemsize <= 8 and np.isfinite(x)):
        return {"$scalar": dt.str, "value": x.item()}
    return {"$scalar": _Encoder().encode(_descr(dt), path), "hex": x.tobytes().hex()}


class _Decoder:
    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays

    def decode(self, x: Any) -> Any:
        if isinstance(x, list):
            return [self.decode(v) for v in x]
        if not isinstance(x, dict):
            return x
        if not any(k.startswith("$") for k in x):
            return {k: self.decode(v) for k, v in x.items()}
        if "$array" in x:
            return self._array(x)
        if "$tensor" in x:
            return self._tensor(x)
        if "$scalar" in x:
            dtype = _dtype(self.decode(x["$scalar"]))
            if "hex" in x:
                return np.frombuffer(bytes.fromhex(x["hex"]), dtype=dtype)[0]
            return dtype.type(x["value"])
        if "$float" in x:
            return float.fromhex(x["$float"])
        if "$tuple" in x:
            return tuple(self.decode(v) for v in x["$tuple"])
        if "$dict" in x:
            return {self.decode(k): self.decode(v) for k, v in x["$dict"]}
        if "$odict" in x:
            return OrderedDict((self.decode(k), self.decode(v)) for k, v in x["$odict"])
        if "$bytes" in x:
            return base64.b64decode(x["$bytes"])
        if "$dtype" in x:
            return _dtype(self.decode(x["$dtype"]))
        import torch

        if "$torch_dtype" in x:
            return getattr(torch, x["$torch_dtype"])
        if "$size" in x:
            return torch.Size(x["$size"])
        raise InputError(f"unknown tag {sorted(x)}")

    def _array(self, tag: dict[str, Any]) -> np.ndarray:
        a = self.arrays[tag["$array"]]
        dtype, shape = _dtype(self.decode(tag["dtype"])), tuple(tag["shape"])
        if tag.get("raw"):
            a = a.view(dtype).reshape(shape)
        if a.dtype != dtype or a.shape != shape:
            raise InputError(f"array {tag['$array']!r} is {a.dtype}{a.shape}, want {dtype}{shape}")
        return a.T if tag.get("order") == "F" else a

    def _tensor(self, tag: dict[str, Any]) -> Any:
        import torch

        a = self.arrays[tag["$tensor"]]
        dtype, shape = getattr(torch, tag["dtype"]), tuple(tag["shape"])
        t = torch.from_numpy(a)
        if tag.get("raw"):
            t = t.view(dtype).reshape(shape)
        if t.dtype != dtype or tuple(t.shape) != shape:
            raise InputError(f"tensor {tag['$tensor']!r} is {t.dtype}{tuple(t.shape)}")
        if tag.get("parameter"):
            return torch.nn.Parameter(t, requires_grad=bool(tag.get("requires_grad")))
        return t.requires_grad_(True) if tag.get("requires_grad") else t


def _dtype(descr: Any) -> np.dtype:
    return np.lib.format.descr_to_dtype(descr)
