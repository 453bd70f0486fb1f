"""Checkpoint format: data only (safetensors + tagged JSON), exact round trip of every family."""

from __future__ import annotations

import ast
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from autophagy.data import load_dataset
from autophagy.models import build_model
from autophagy.store import statefile

torch.set_num_threads(1)

NET = {"device": "cpu", "batch_size": 32, "lr": 3e-3, "ema": 0.9, "warmup": 64}
MLP = {**NET, "hidden_features": [16, 16], "time_features": 8}
UNET = {
    **NET,
    "network": "unet",
    "network_options": {"block_out_channels": [8, 16], "layers_per_block": 1, "norm_num_groups": 4},
}
FAMILIES = {
    "gaussian": {},
    "gmm": {"n_components": 3},
    "kde": {},
    "nsf": {"transforms": 1, "hidden_features": [8], "bins": 4, **NET},
    "maf": {"transforms": 1, "hidden_features": [8], **NET},
    "cfm": {"steps": 3, **MLP},
    "otcfm": {"steps": 3, **MLP},
    "ddpm": {"timesteps": 20, "sampler": "ddim", "steps": 4, **MLP},
    "edm": {"steps": 3, **MLP},
    "ddpm-unet": {"timesteps": 20, "sampler": "ddim", "steps": 2, **UNET},
}


def assert_identical(a, b, where="state"):
    """Same Python types everywhere, and arrays/tensors equal bit for bit (dtype, shape, order)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} came back as {type(b).__name__}"
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            assert_identical(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert (a.dtype, a.shape) == (b.dtype, b.shape), where
        assert a.tobytes(order="A") == b.tobytes(order="A"), where
        assert a.flags.f_contiguous == b.flags.f_contiguous and b.flags.writeable, where
    elif isinstance(a, torch.Tensor):
        assert (a.dtype, a.shape, a.requires_grad) == (b.dtype, b.shape, b.requires_grad), where
        raw = [t.detach().reshape(-1).view(torch.uint8) for t in (a, b)]
        assert torch.equal(*raw), where
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), where
    elif isinstance(a, float):
        assert a.hex() == b.hex(), where
    else:
        assert a == b, where


def _data(name):
    if name.endswith("unet"):
        return load_dataset("digits", n_train=64, n_test=16, seed=0).train
    return load_dataset("moons", n_train=128, n_test=16, seed=0).train


def _fitted(name):
    family = name.removesuffix("-unet")
    model = build_model(family, FAMILIES[name])
    x = _data(name)
    model.fit(x, budget=64, rng=np.random.default_rng(0))
    model.fit(x, warm_start=True, budget=64, rng=np.random.default_rng(1))
    return model, x


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_state_round_trips_exactly_and_resumes_bit_for_bit(name):
    model, x = _fitted(name)
    state = model.state_dict()
    back = statefile.loads(statefile.dumps(state))
    assert_identical(state, back)
    twin = build_model(name.removesuffix("-unet"), FAMILIES[name])
    twin.load_state_dict(back)
    for m in (model, twin):  # the next generation: refit warm, then sample, same rng
        m.fit(x, warm_start=True, budget=64, rng=np.random.default_rng(2))
    a = model.sample(16, rng=np.random.default_rng(3))
    b = twin.sample(16, rng=np.random.default_rng(3))
    assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_loop_payload_kinds_round_trip_with_their_types():
    lin = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(lin.parameters(), lr=1e-3, betas=(0.8, 0.99))
    lin(torch.randn(4, 3)).sum().backward()
    opt.step()
    state = {
        "model": {
            "module": OrderedDict(lin.state_dict()),
            "optimizer": opt.state_dict(),  # int keys, the betas tuple, None, bools
            "generator": torch.Generator().manual_seed(3).get_state(),  # a ByteTensor
            "bf16": torch.randn(3, dtype=torch.bfloat16),
            "complex": torch.randn(2, dtype=torch.complex64),
            "parameter": torch.nn.Parameter(torch.ones(2)),
            "dtypes": (np.dtype("<f4"), torch.bfloat16, torch.Size([2, 3])),
        },
        "rng": np.random.default_rng(5).bit_generator.state,  # 128-bit ints
        "mt19937": np.random.MT19937(1).state,  # a uint32 key array
        "policy_state": {"synthetic": np.ones((3, 2), np.float32)},
        "reference": {"mean": np.zeros(2), "cov": np.asfortranarray(np.eye(2) * 1.5)},
        "rows": [
            {"generation": 0, "metric": "w2", "value": np.float64(0.1)},
            {"generation": 1, "metric": "nll", "value": float("-inf")},
        ],
        "odd": {
            "arrays": [
                np.ones(2, np.complex128),
                np.ones(3, np.longdouble) / 3,
                np.arange(3, dtype=">f8"),
                np.array(["ab", "c"]),
                np.zeros((0, 3)),
                np.array(2.5),
                np.zeros(2, [("a", "<f4"), ("b", "<i8", (2,))]),
            ],
            "scalars": (np.float32(np.nan), np.int64(-7), np.bool_(True), np.uint64(2**64 - 1)),
            "values": (2**80, None, True, -0.0, float("nan"), b"\x00\xff", "λ"),
            "keys": {"$dollar": 1, 3: "int", (1, 2): "tuple", None: 0.5, 1.5: "float"},
        },
    }
    assert_identical(state, statefile.loads(statefile.dumps(state)))


def test_a_checkpoint_is_safetensors_with_its_tree_as_json_in_the_header(tmp_path):
    from safetensors import safe_open

    path = tmp_path / "gen_0000.safetensors"
    path.write_bytes(statefile.dumps({"model": {"w": torch.arange(4.0)}, "rows": [(0, "w2")]}))
    with safe_open(str(path), "np") as f:
        assert f.metadata()["format"] == statefile.FORMAT
        assert '"$tuple"' in f.metadata()["state"]
        assert list(f.keys()) == ["model/w"]


@pytest.mark.parametrize(
    "value, where",
    [
        ({"model": {"sampler": object()}}, "model.sampler"),
        ({"rng": np.random.default_rng(0)}, "rng"),
        ({"rows": [{1, 2}]}, "rows.0"),
        ({"a": np.array([object()])}, "a"),
    ],
)
def test_state_that_is_not_data_is_refused_naming_where(value, where):
    with pytest.raises(TypeError, match=rf"at {where}\b.*never code|object array at {where}"):
        statefile.dumps(value)


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[:5],  # shorter than the length prefix
        lambda b: b[:40],  # the header cut off
        lambda b: b[:9] + b"!" + b[10:],  # the header not JSON any more
        lambda b: b[:-3],  # tensor bytes missing
        lambda b: pickle.dumps({"model": 1}),  # another format
    ],
)
def test_damaged_checkpoint_bytes_raise_state_file_error_not_anything_else(damage):
    blob = statefile.dumps({"model": {"w": np.arange(10.0)}})
    with pytest.raises(statefile.StateFileError):
        statefile.loads(damage(blob))


def test_src_unpickles_only_in_migrate_or_through_an_allow_list():
    """A run directory is data: ``pickle.load(s)`` only in ``migrate`` (which asks first), every
    ``Unpickler`` subclass overrides ``find_class`` (an allow-list: the CIFAR reader, the EDM
    weights reader), and no ``allow_pickle=True``."""
    src = Path(__file__).parents[2] / "src" / "autophagy"
    found = []
    for path in sorted(src.rglob("*.py")):
        where = path.relative_to(src).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("load", "loads"):
                if getattr(node.value, "id", "") == "pickle" and where != "store/migrate.py":
                    found.append(f"{where}: pickle.{node.attr}")
            if isinstance(node, ast.ClassDef) and any(
                ast.unparse(base) == "pickle.Unpickler" for base in node.bases
            ):
                methods = {f.name for f in node.body if isinstance(f, ast.FunctionDef)}
                if "find_class" not in methods:
                    found.append(f"{where}: {node.name} unpickles without an allow-list")
            if isinstance(node, ast.keyword) and node.arg == "allow_pickle":
                if not (isinstance(node.value, ast.Constant) and node.value.value is False):
                    found.append(f"{where}: allow_pickle={ast.unparse(node.value)}")
    assert found == []
