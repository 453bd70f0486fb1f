"""Read NVlabs/edm network pickles without importing or running any of their code.

EDM publishes its models (``edm-cifar10-32x32-uncond-vp.pkl``, ``edm-ffhq-64x64-uncond-vp.pkl``)
as plain pickles of whole Python objects: a dict ``{'ema': EDMPrecond, 'loss_fn': EDMLoss,
'augment_pipe': AugmentPipe, 'dataset_kwargs': {...}}`` whose objects are saved by
``torch_utils.persistence``. Each such object pickles as a call
``torch_utils.persistence._reconstruct_persistent_obj(meta)`` with ``meta = {'type': 'class',
'version': 6, 'module_src': <the source code of its module>, 'class_name': ..., 'state': <the
object's __dict__>}``; unpickling it normally *executes* ``module_src``. Tensors inside pickle as
``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter`` over storages saved with
``torch.save`` in its legacy format (``torch.storage._load_from_bytes``).

:func:`read_edm_pickle` unpickles with an allow-list (:data:`ALLOWED`): the persistence call is
replaced by a record of ``class_name`` and ``state`` (``module_src`` is never compiled), torch
containers by inert records, storages are read by ``torch.load(weights_only=True)``; any other
callable the pickle asks for is refused with :class:`CheckpointRefused`, before it could run.
:func:`edm_network` then walks the records of the ``'ema'`` network like ``nn.Module.state_dict``
does and returns its tensors and its constructor arguments (``init_kwargs``), from which
:func:`load_songunet` builds our :class:`~autophagy.models.nets.songunet.SongUNet` and loads them.
"""

from __future__ import annotations

import collections
import functools
import io
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from autophagy.errors import (
    CheckpointRefused,  # noqa: F401
    InputError,
)
from autophagy.models.weights_only import first_line, load_weights_only
from autophagy.signatures import ArgumentError


class _Record:
    """An inert stand-in for an object of a class we do not import (its state kept as data)."""

    module = name = ""
    state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<{self.module}.{self.name}>"


@dataclass
class Persistent:
    """An object saved by ``torch_utils.persistence``: its class name and state, never its code."""

    class_name: str
    state: dict[str, Any]

    @property
    def init_kwargs(self) -> dict[str, Any]:
        return dict(self.state.get("_init_kwargs") or {})


def _persistent(meta: Any) -> Persistent:
    if not isinstance(meta, Mapping) or meta.get("type") != "class" or not isinstance(
        meta.get("class_name"), str
    ) or not isinstance(meta.get("state"), Mapping):
        raise pickle.UnpicklingError("a torch_utils.persistence record without type 'class', "
                                     "class_name and state")
    return Persistent(meta["class_name"], dict(meta["state"]))


def _record_class(module: str, name: str) -> type:
    return type(name, (_Record,), {"module": module, "name": name})


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    if not (isinstance(cls, type) and issubclass(cls, _Record)):
        raise pickle.UnpicklingError(f"copyreg._reconstructor of {cls!r}")
    return cls()


def _load_storage(data: bytes, *, path: Path | None = None) -> Any:
    """A storage saved in torch's legacy format: its bytes are a second pickle, read with torch's
    weights-only loader; a global it asks for is refused in the outer file's name."""
    if not isinstance(data, bytes):
        raise pickle.UnpicklingError("a storage that is not bytes")
    return load_weights_only(io.BytesIO(data), path or "<storage>",
                             expected="an NVlabs/edm network pickle")


def _rebuild_tensor(storage: Any, offset: int, size: Sequence[int], stride: Sequence[int],
                    *rest: Any) -> torch.Tensor:
    if not isinstance(storage, torch.storage.TypedStorage):
        raise pickle.UnpicklingError(f"a tensor over {type(storage).__name__}, not a storage")
    t = torch.empty(0, dtype=storage.dtype)
    return t.set_(storage._untyped_storage, int(offset), tuple(size), tuple(stride))


def _rebuild_parameter(data: Any, requires_grad: Any = False, *rest: Any) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError("a parameter that is not a tensor")
    return data


def _latin1(text: Any, encoding: Any = "latin1") -> bytes:
    """``_codecs.encode``, as protocol-2 pickles spell bytes: only str to latin-1 bytes."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode other than str to latin-1 bytes")
    return text.encode("latin1")


class _DType(_Record):
    """``numpy.dtype(code, align, copy)`` as a record: only the code of a number type."""

    def __init__(self, code: Any = "", *args: Any):
        if not isinstance(code, str) or code.lstrip("<>=|") not in _NUMBER_CODES:
            raise pickle.UnpicklingError(f"numpy.dtype({code!r})")
        self.code = code


_NUMBER_CODES = {"b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8"}


def _np_scalar(dtype: Any, data: Any = b"") -> int | float | bool:
    """A numpy scalar (EDM stores ``np.sqrt(0.5)`` and the like) as the Python number it holds."""
    import numpy as np

    if not isinstance(dtype, _DType) or not isinstance(data, bytes):
        raise pickle.UnpicklingError("numpy scalar of something other than a number dtype")
    order = dtype.state[1] if isinstance(dtype.state, tuple) and len(dtype.state) > 1 else "="
    code = dtype.code.lstrip("<>=|")
    return np.frombuffer(data, dtype=np.dtype(code).newbyteorder(order))[0].item()


class _EasyDict(dict):
    """dnnlib's ``EasyDict`` (a dict with attribute access) read as a plain dict."""


_CONTAINERS = ("ModuleDict", "ModuleList", "Sequential", "ParameterDict", "ParameterList")
ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("_codecs", "encode"): _latin1,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("numpy", "dtype"): _DType,
    ("numpy.core.multiarray", "scalar"): _np_scalar,
    ("numpy._core.multiarray", "scalar"): _np_scalar,
    **{("torch.nn.modules.container", c): _record_class("torch.nn.modules.container", c)
       for c in _CONTAINERS},
}
"""What an EDM network pickle may ask for, and the harmless thing each name stands for."""


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: Any, path: Path):
        super().__init__(file)
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        module = "builtins" if module == "__builtin__" else module
        try:
            value = ALLOWED[(module, name)]
            return functools.partial(value, path=self.path) if value is _load_storage else value
        except KeyError:
            raise CheckpointRefused(
                "init_checkpoint",
                f"refused {str(self.path)!r}: its pickle asks for {module}.{name}, which an "
                "NVlabs/edm network pickle does not need (allowed: persistence records, torch "
                "tensors and containers); nothing was run",
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not used by EDM pickles")


def read_edm_pickle(path: str | Path) -> Any:
    """Unpickle ``path`` with the allow-list; persistence objects come back as :class:`Persistent`.

    Raises:
        CheckpointRefused: the pickle asks for a callable outside :data:`ALLOWED`.
        ArgumentError: the file is missing or not a readable pickle.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise ArgumentError("init_checkpoint", f"no such file {str(path)!r}; expected an "
                            "NVlabs/edm network pickle (.pkl)")
    try:
        with p.open("rb") as f:
            return _Unpickler(f, p).load()
    except ArgumentError:  # a refusal (CheckpointRefused), or a storage torch cannot read
        raise
    except Exception as err:  # a truncated or foreign file: one line, naming it
        raise ArgumentError("init_checkpoint", f"{str(path)!r} is not a readable NVlabs/edm "
                            f"pickle ({type(err).__name__}: {first_line(err)})") from None


def _state(obj: Any) -> Mapping[str, Any] | None:
    if isinstance(obj, Persistent):
        return obj.state
    if isinstance(obj, _Record) and isinstance(obj.state, Mapping):
        return obj.state
    return None


def module_tensors(obj: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """The ``state_dict`` of a recorded module: parameters, persistent buffers, recursively."""
    state = _state(obj)
    if state is None:
        raise InputError(f"{prefix or 'the network'} is a {type(obj).__name__}, not a module")
    out: dict[str, torch.Tensor] = {}
    skip = set(state.get("_non_persistent_buffers_set") or ())
    for group in ("_parameters", "_buffers"):
        for name, t in (state.get(group) or {}).items():
            if t is not None and not (group == "_buffers" and name in skip):
                out[prefix + name] = t
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            out.update(module_tensors(child, f"{prefix}{name}."))
    return out


@dataclass
class EDMNetwork:
    """The EMA network of an EDM pickle: preconditioning class, its arguments and tensors."""

    precond: str
    init_kwargs: dict[str, Any]
    model_type: str
    tensors: dict[str, torch.Tensor]  # keys of the inner network (without "model.")


def edm_network(path: str | Path, key: str = "ema") -> EDMNetwork:
    """Read ``path`` and return the network under ``key`` (``'ema'``, as EDM's generate.py)."""
    data = read_edm_pickle(path)
    net = data.get(key) if isinstance(data, Mapping) else data
    if not isinstance(net, Persistent):
        found = sorted(data) if isinstance(data, Mapping) else type(data).__name__
        raise ArgumentError("init_checkpoint", f"{str(path)!r} has no EDM network under "
                            f"{key!r} (found {found}); expected a pickle written by NVlabs/edm")
    kwargs = net.init_kwargs
    model = (net.state.get("_modules") or {}).get("model")
    if model is None:
        raise ArgumentError("init_checkpoint", f"{str(path)!r}: the {net.class_name} has no "
                            "inner 'model' network")
    model_type = model.class_name if isinstance(model, Persistent) else type(model).__name__
    tensors = module_tensors(model)
    return EDMNetwork(net.class_name, kwargs, str(kwargs.get("model_type", model_type)), tensors)


# SongUNet arguments of EDM that our SongUNet takes under the same name.
_SONGUNET_ARGS = ("model_channels", "channel_mult", "channel_mult_emb", "num_blocks",
                  "attn_resolutions", "dropout", "augment_dim", "embedding_type",
                  "channel_mult_noise", "encoder_type", "decoder_type", "resample_filter")


def songunet_options(net: EDMNetwork, path: str | Path) -> dict[str, Any]:
    """Our :class:`SongUNet` options from an EDM network's constructor arguments."""
    if net.precond != "EDMPrecond":
        raise ArgumentError("init_checkpoint", f"{str(path)!r} holds a {net.precond}; only "
                            "EDMPrecond networks (the edm-*.pkl models) load, since our EDM "
                            "applies EDM's preconditioning")
    if net.model_type != "SongUNet":
        raise ArgumentError("init_checkpoint", f"{str(path)!r} holds a {net.model_type}; "
                            "only SongUNet (DDPM++ / NCSN++) networks load")
    if int(net.init_kwargs.get("label_dim", 0) or 0):
        raise ArgumentError("init_checkpoint", f"{str(path)!r} is class-conditional "
                            f"(label_dim={net.init_kwargs['label_dim']}); only unconditional "
                            "networks load")
    return {k: net.init_kwargs[k] for k in _SONGUNET_ARGS if k in net.init_kwargs}


def load_songunet(
    path: str | Path,
    shape: Sequence[int],
    *,
    sigma_data: float | None = None,
    options: Mapping[str, Any] | None = None,
) -> torch.nn.Module:
    """A :class:`~autophagy.models.nets.songunet.SongUNet` with the EMA weights of an EDM pickle.

    The architecture comes from the pickle; ``options`` (the config's ``network_options``) must
    agree with it where both name a setting, and ``sigma_data`` with the pickle's.
    """
    from autophagy.models.nets.songunet import SongUNet

    net = edm_network(path)
    found = songunet_options(net, path)
    kw = net.init_kwargs
    res, ch = kw.get("img_resolution"), kw.get("img_channels")
    dims = tuple(int(s) for s in shape)
    if (ch, res, res) != dims:
        raise ArgumentError("init_checkpoint", f"{str(path)!r} is a network for {ch}x{res}x{res}"
                            f" images, the data are {'x'.join(map(str, dims))}")
    if sigma_data is not None and "sigma_data" in kw and float(kw["sigma_data"]) != sigma_data:
        raise ArgumentError("sigma_data", f"{str(path)!r} was trained with sigma_data="
                            f"{kw['sigma_data']}, the model has {sigma_data}")
    for name, value in dict(options or {}).items():
        if name in found and _norm(found[name]) != _norm(value):
            raise ArgumentError("network_options", f"{name}={value!r} disagrees with "
                                f"{str(path)!r}, which has {name}={found[name]!r}")
    module = SongUNet(dims, **found)
    expected = module.state_dict()
    missing = sorted(set(expected) - set(net.tensors))
    unexpected = sorted(set(net.tensors) - set(expected))
    wrong = [k for k in expected if k in net.tensors
             and tuple(net.tensors[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        raise ArgumentError("init_checkpoint", f"{str(path)!r} does not fit a SongUNet{found}: "
                            f"{len(missing)} missing keys (e.g. {missing[:2]}), {len(unexpected)}"
                            f" unexpected (e.g. {unexpected[:2]}), {len(wrong)} of another shape"
                            f" (e.g. {wrong[:2]})")
    module.load_state_dict({k: t.float() for k, t in net.tensors.items()})
    return module


def _norm(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_norm(v) for v in value)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
