"""Hostile checkpoints a user may receive, given to ``autophagy run`` as ``init_checkpoint``.

Each file is built here, from pickle opcodes or a class with ``__reduce__``, with a payload that
would create a marker file; what is checked is what a new user sees: one line naming the file and
the global it asked for, exit 2, no run directory, no torch advice to turn the check off, no
warning torch would print first, and the marker never created (the code did not run).
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import pytest
import torch
from test_models_checkpoints import SONG, write_edm_pickle
from typer.testing import CliRunner

from autophagy.cli import app
from autophagy.models.nets.songunet import SongUNet
from autophagy.models.weights_only import pickle_globals

runner = CliRunner()


def _system(marker: Path):
    class Payload:  # unpickling it would run a shell command
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    return Payload()


def _exec(marker: Path):
    class Payload:  # protocol 4 spells this STACK_GLOBAL 'builtins' 'exec', memoised
        def __reduce__(self):
            return exec, (f"open({str(marker)!r}, 'w').close()",)

    return Payload()


def craft(kind: str, folder: Path, marker: Path, monkeypatch) -> tuple[Path, str]:
    """A file of ``kind`` in ``folder`` and the global its refusal must name."""
    if kind == "pkl-system":
        path = folder / "net.pkl"
        path.write_bytes(pickle.dumps({"ema": _system(marker)}))
        return path, "system"
    if kind == "pkl-storage-pickle":  # an allowed call whose bytes are a second, hostile pickle
        inner = pickle.dumps(_system(marker), protocol=2)

        class Storage:
            def __reduce__(self):
                return torch.storage._load_from_bytes, (inner,)

        path = folder / "net.pkl"
        path.write_bytes(pickle.dumps({"ema": Storage()}, protocol=4))
        return path, "system"
    if kind == "pt-protocol0-opcodes":  # written by hand: GLOBAL os system, a string, REDUCE
        path = folder / "weights.pt"
        path.write_bytes(b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
        return path, "system"
    if kind == "pt-stack-global-exec":
        path = folder / "weights.pt"
        path.write_bytes(pickle.dumps({"w": _exec(marker)}, protocol=4))
        return path, "builtins.exec"
    if kind == "pt-torch-save-zip":  # torch.save's zip format around a payload
        path = folder / "weights.pt"
        torch.save({"w": torch.zeros(2), "x": _system(marker)}, path)
        return path, "system"
    if kind == "pt-renamed-edm-pickle":  # loading it with EDM's code would run module_src
        path = folder / "edm.pkl"
        write_edm_pickle(path, SongUNet((1, 8, 8), **SONG), (1, 8, 8), monkeypatch,
                         module_src=f"open({str(marker)!r}, 'w').close()")
        return path.rename(folder / "edm.pt"), "torch_utils.persistence._reconstruct_persistent_obj"
    if kind == "diffusers-bin":  # a diffusers folder whose pickled weights ask for code
        path = folder / "unet"
        path.mkdir()
        (path / "config.json").write_text('{"_class_name": "UNet2DModel", "sample_size": 8}')
        torch.save({"x": _system(marker)}, path / "diffusion_pytorch_model.bin")
        return path, "system"
    raise AssertionError(kind)


KINDS = ["pkl-system", "pkl-storage-pickle", "pt-protocol0-opcodes", "pt-stack-global-exec",
         "pt-torch-save-zip", "pt-renamed-edm-pickle", "diffusers-bin"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_hostile_checkpoint_is_refused_in_one_line_before_anything_runs(
    kind, tmp_path, monkeypatch
):
    marker = tmp_path / "ran"
    path, asked = craft(kind, tmp_path, marker, monkeypatch)
    preset = {"pkl": ["--preset", "digits-edm", "--set", "model.options.network=songunet"],
              "pt-": ["--preset", "toy-ddpm"],
              "dif": ["--preset", "digits-ddpm"]}[kind[:3]]
    if kind[:3] != "pt-":
        preset += ["--set", "model.options.network_options=null", "--set", "data.n_train=100"]
    out = tmp_path / "run"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = runner.invoke(app, ["run", *preset,
                                     "--set", f"model.options.init_checkpoint={path}",
                                     "--out", str(out), "--quiet"])
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert "\n" not in text, text  # one line, however wide
    assert text.startswith("error: model.init_checkpoint: refused"), text
    named = path / "diffusion_pytorch_model.bin" if path.is_dir() else path
    assert repr(str(named)) in text and asked in text and "nothing was run" in text
    assert "weights_only" not in text and "Traceback" not in text
    assert not any("pickle protocol" in str(w.message) for w in caught)
    assert not marker.exists() and not out.exists()


def test_an_edm_pickle_named_pt_is_refused_with_the_name_that_reads_it(tmp_path, monkeypatch):
    path, _ = craft("pt-renamed-edm-pickle", tmp_path, tmp_path / "ran", monkeypatch)
    result = runner.invoke(app, ["run", "--preset", "toy-ddpm",
                                 "--set", f"model.options.init_checkpoint={path}",
                                 "--out", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 2 and "name it .pkl" in result.output


def test_a_damaged_state_dict_is_one_line_too_and_not_called_hostile(tmp_path):
    good = tmp_path / "good.pt"
    torch.save({"w": torch.zeros(3)}, good)
    for name, data in [("junk.pt", b"not a torch file"),
                       ("short.pt", good.read_bytes()[:100])]:
        (tmp_path / name).write_bytes(data)
        result = runner.invoke(app, ["run", "--preset", "toy-ddpm",
                                     "--set", f"model.options.init_checkpoint={tmp_path / name}",
                                     "--out", str(tmp_path / "run"), "--quiet"])
        text = result.output.strip()
        assert result.exit_code == 2 and "\n" not in text, text
        assert name in text and "refused" not in text and "weights_only" not in text


def test_a_refused_checkpoint_is_read_once_not_once_per_cell(tmp_path, monkeypatch):
    """The full grid has many cells; the refusal comes from the one check before the run."""
    from autophagy.models.nets import edm_pickle

    calls = []
    original = edm_pickle.read_edm_pickle
    monkeypatch.setattr(edm_pickle, "read_edm_pickle",
                        lambda p: calls.append(p) or original(p))
    path, _ = craft("pkl-storage-pickle", tmp_path, tmp_path / "ran", monkeypatch)
    result = runner.invoke(app, ["run", "--preset", "digits-edm",
                                 "--set", "model.options.network=songunet",
                                 "--set", "model.options.network_options=null",
                                 "--set", "loop.policies={mixed: {lambda: [0, 0.5, 1]}}",
                                 "--set", "seed=[0, 1]",
                                 "--set", f"model.options.init_checkpoint={path}",
                                 "--out", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 2 and result.output.count("error:") == 1
    assert len(calls) == 1 and not (tmp_path / "run").exists()


def test_pickle_globals_reads_opcodes_without_running_them(tmp_path):
    marker = tmp_path / "ran"
    assert pickle_globals(pickle.dumps(_exec(marker), protocol=4)) == ["builtins.exec"]
    assert pickle_globals(pickle.dumps(_system(marker), protocol=0))[0].endswith(".system")
    assert pickle_globals(b"\x80\x04garbage") == []
    assert not marker.exists()


def test_resume_checks_a_received_runs_checkpoint_before_any_cell(tmp_path):
    """A received run directory whose config names a hostile checkpoint: one line, no cell."""
    from autophagy.store import RunStore

    marker = tmp_path / "ran"
    path, _ = craft("pt-torch-save-zip", tmp_path, marker, None)
    store = RunStore.create(tmp_path / "run", "name: received\nseed: [0]\nmodel:\n  name: ddpm\n"
                            f"  options: {{init_checkpoint: {path}}}\n")
    result = runner.invoke(app, ["resume", str(store.root), "--quiet"])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert "refused" in result.output and not marker.exists()
    assert not (store.root / "cells").exists()
