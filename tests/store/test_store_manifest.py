"""Integrity of a run directory: manifests, ``verify``, refusals in one line, checkpoint fallback,
old pickle directories (never unpickled by resume/report/verify) and ``migrate``."""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import struct
from pathlib import Path

import pandas as pd
import pytest
from tiny_runs import gmm_run
from typer.testing import CliRunner

from autophagy.cli import app
from autophagy.store import CellStore, load_results, manifest, statefile

runner = CliRunner()

TINY = gmm_run(3)
CELL = "mixed-lam0.5-seed0"
KEY = ["cell", "generation", "metric"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    result = runner.invoke(app, ["run", *TINY, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def run(tiny_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    return copy


def metrics(root):
    return pd.read_parquet(root / "metrics.parquet").sort_values(KEY).reset_index(drop=True)


def flip(path, offset):
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x20
    path.write_bytes(bytes(data))


def header_length(path):
    return struct.unpack("<Q", path.read_bytes()[:8])[0]


def one_error_line(result):
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


def crash_after(root, cell, generation):
    """A cell as a kill after ``generation`` leaves it: status running (through the store)."""
    CellStore(root / "cells" / cell).set_status("running", generation=generation)


def test_a_fresh_run_verifies_clean_with_every_data_file_in_a_manifest(run):
    result = runner.invoke(app, ["verify", str(run)])
    assert result.exit_code == 0, result.output
    assert "clean" in result.output and "2 cells" in result.output
    listed = set(manifest.Manifest(run / "cells" / CELL).entries())
    assert {
        "cell.json",
        "metrics.parquet",
        "checkpoints/gen_0003.safetensors",
        "samples/gen_0000.npy",
    } <= listed
    assert set(manifest.Manifest(run).entries()) == {"config.yaml", "metrics.parquet", "real.npy"}


DAMAGE = {
    "config": ("config.yaml", 10),
    "run metrics": ("metrics.parquet", 200),
    "real points": ("real.npy", -9),
    "cell.json": (f"cells/{CELL}/cell.json", 20),
    "cell metrics": (f"cells/{CELL}/metrics.parquet", 300),
    "samples": (f"cells/{CELL}/samples/gen_0001.npy", -5),
    "manifest": (f"cells/{CELL}/manifest.json", 120),
}


@pytest.mark.parametrize("kind", DAMAGE)
def test_a_flipped_byte_is_named_by_verify_and_stops_resume_and_report_in_one_line(run, kind):
    rel, offset = DAMAGE[kind]
    flip(run / rel, offset)
    result = runner.invoke(app, ["verify", str(run)])
    assert result.exit_code == 1
    assert f"{rel}: " in result.output and "1 problem" in result.output
    assert "corrupted" in result.output or "damaged" in result.output
    for command in (["resume", str(run), "--quiet"], ["report", str(run)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        line = one_error_line(result)
        assert str(run / rel) in line and "autophagy verify" in line
    with pytest.raises(ValueError, match=rel.rsplit("/", 1)[-1]):
        load_results(run)


def test_truncated_missing_and_foreign_files_each_get_their_own_line(run):
    cell = run / "cells" / CELL
    (cell / "metrics.parquet").write_bytes((cell / "metrics.parquet").read_bytes()[:100])
    (cell / "samples" / "gen_0002.npy").unlink()
    other = run / "cells" / "fully_synthetic-seed0"
    shutil.copy(other / "samples" / "gen_0001.npy", cell / "samples" / "gen_0001.npy")
    shutil.copy(other / "samples" / "gen_0001.npy", cell / "samples" / "gen_0007.npy")
    (cell / ".gen_0004.safetensors.0a1b2c.tmp").write_bytes(b"half a write")  # a kill's leftover
    result = runner.invoke(app, ["verify", str(run)])
    assert result.exit_code == 1
    out = result.output
    assert f"cells/{CELL}/metrics.parquet: truncated (100 of " in out
    assert f"cells/{CELL}/samples/gen_0002.npy: missing" in out
    assert f"cells/{CELL}/samples/gen_0001.npy: corrupted" in out
    assert f"cells/{CELL}/samples/gen_0007.npy: not in the manifest" in out
    assert ".tmp" not in out and "4 problems" in out


@pytest.mark.parametrize("part", ["tensors", "json header"])
def test_a_damaged_newest_checkpoint_falls_back_with_a_warning_to_the_same_numbers(
    run, tiny_run, caplog, part
):
    crash_after(run, CELL, 3)
    ckpt = run / "cells" / CELL / "checkpoints" / "gen_0003.safetensors"
    n = header_length(ckpt)
    flip(ckpt, 8 + n + 5 if part == "tensors" else 8 + n // 2)
    result = runner.invoke(app, ["verify", str(run)])
    assert result.exit_code == 1
    assert f"cells/{CELL}/checkpoints/gen_0003.safetensors: corrupted" in result.output
    assert runner.invoke(app, ["report", str(run)]).exit_code == 0  # report reads no checkpoint
    with caplog.at_level(logging.WARNING, logger="autophagy.store"):
        result = runner.invoke(app, ["resume", str(run), "--quiet"])
    assert result.exit_code == 0, result.output
    (warning,) = [r.getMessage() for r in caplog.records if r.name.startswith("autophagy.store")]
    assert str(ckpt) in warning and "goes back to generation 2" in warning
    pd.testing.assert_frame_equal(metrics(tiny_run), metrics(run))
    assert runner.invoke(app, ["verify", str(run)]).exit_code == 0  # rewritten, clean again


def test_a_foreign_checkpoint_is_never_loaded(run, tiny_run, caplog):
    crash_after(run, CELL, 2)
    folder = run / "cells" / CELL / "checkpoints"
    shutil.copy(
        run / "cells" / "fully_synthetic-seed0" / "checkpoints" / "gen_0003.safetensors",
        folder / "gen_0003.safetensors",
    )
    with caplog.at_level(logging.WARNING, logger="autophagy.store"):
        result = runner.invoke(app, ["resume", str(run), "--quiet"])
    assert result.exit_code == 0, result.output
    # "corrupted", or "truncated" when the other cell's checkpoint happens to be shorter
    (warning,) = [r.getMessage() for r in caplog.records if r.name.startswith("autophagy.store")]
    assert "gen_0003.safetensors: " in warning and "goes back to generation 2" in warning
    pd.testing.assert_frame_equal(metrics(tiny_run), metrics(run))


class Crash(BaseException):
    """A kill at an exact point of a write (BaseException: nothing catches it)."""


@pytest.mark.parametrize(
    "point", ["in the checkpoint write", "before the unlink", "at the confirm"]
)
def test_a_kill_at_each_step_of_a_manifest_update_leaves_a_clean_directory(
    tmp_path, monkeypatch, point
):
    cell = CellStore(tmp_path / "cells" / "c", keep="last")
    rows = [{"generation": 0, "metric": "w2", "value": 0.5}]
    cell.set_status("running")
    cell.save(0, {"rows": rows}, rows)
    save, write, unlink = manifest.Manifest.save, manifest.atomic_write_bytes, Path.unlink
    calls = []

    def crashing_save(self, files, **kw):  # the update saves twice: pending, then confirm
        calls.append(1)
        if point == "at the confirm" and len(calls) == 2:
            raise Crash
        return save(self, files, **kw)

    def crashing_write(path, data, **kw):  # metrics written, checkpoint pending, half on disk
        if point == "in the checkpoint write" and path.suffix == ".safetensors":
            (path.parent / f".{path.name}.0a1b2c.tmp").write_bytes(data[: len(data) // 2])
            raise Crash
        return write(path, data, **kw)

    def crashing_unlink(path, *args, **kw):  # the new checkpoint in place, the old one not gone
        if point == "before the unlink" and path.name == "gen_0000.safetensors":
            raise Crash
        return unlink(path, *args, **kw)

    monkeypatch.setattr(manifest.Manifest, "save", crashing_save)
    monkeypatch.setattr(manifest, "atomic_write_bytes", crashing_write)
    monkeypatch.setattr(Path, "unlink", crashing_unlink)
    calls.clear()
    with pytest.raises(Crash):
        cell.save(1, {"rows": rows * 2}, rows * 2)
    monkeypatch.undo()
    problems, _, _ = manifest.check_folder(cell.root)
    assert problems == []
    assert cell.latest()[0] == (0 if point == "in the checkpoint write" else 1)
    assert len(cell.metrics()) == 2  # the metrics are written before the checkpoint


def test_a_damaged_manifest_or_a_missing_one_is_a_problem_not_a_pass(run):
    cell = run / "cells" / CELL
    doc = json.loads((cell / "manifest.json").read_text())
    doc["files"]["metrics.parquet"]["size"] += 1  # a plausible edit: the checksum catches it
    (cell / "manifest.json").write_text(json.dumps(doc))
    (run / "cells" / "fully_synthetic-seed0" / "manifest.json").unlink()
    result = runner.invoke(app, ["verify", str(run)])
    assert result.exit_code == 1
    assert f"cells/{CELL}/manifest.json: damaged" in result.output
    assert "cells/fully_synthetic-seed0/manifest.json: missing" in result.output


def test_verify_refuses_a_folder_that_is_not_a_run(tmp_path):
    result = runner.invoke(app, ["verify", str(tmp_path)])
    assert result.exit_code == 2 and "is it a run directory" in result.output


# -- old pickle directories -------------------------------------------------------------------


class Marker:
    """Unpickling this creates a file: what a hostile checkpoint could do instead."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def to_old_format(root):
    """The directory as autophagy before #14 wrote it: gen_*.pkl checkpoints, no manifests."""
    for path in root.glob("cells/*/checkpoints/gen_*.safetensors"):
        payload = statefile.loads(path.read_bytes())
        path.with_suffix(".pkl").write_bytes(pickle.dumps(payload))
        path.unlink()
    for path in root.glob("**/manifest.json"):
        path.unlink()


def test_resume_report_and_verify_refuse_an_old_directory_without_unpickling(run, tmp_path):
    to_old_format(run)
    marker = tmp_path / "marker"
    hostile = run / "cells" / CELL / "checkpoints" / "gen_0003.pkl"
    hostile.write_bytes(pickle.dumps(Marker(marker)))
    for command in (["resume", str(run), "--quiet"], ["report", str(run)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        assert f"autophagy migrate {run}" in one_error_line(result)
    result = runner.invoke(app, ["verify", str(run)])
    assert result.exit_code == 1 and "old-format run directory" in result.output
    result = runner.invoke(app, ["migrate", str(run)])  # no terminal to ask on: refuses
    assert result.exit_code == 2 and "--yes" in one_error_line(result)
    assert "unpickle" in result.output and hostile.exists()
    assert not marker.exists()
    # --yes unpickles, which is why it asks: the code runs, and its result is refused as not data
    result = runner.invoke(app, ["migrate", str(run), "--yes"])
    assert marker.exists()
    assert result.exit_code == 2 and "gen_0003.pkl: cannot convert" in one_error_line(result)


def test_migrate_converts_an_old_directory_that_then_resumes_to_the_same_numbers(run, tiny_run):
    folder = run / "cells" / CELL
    for g in (2, 3):  # a crash after generation 1, in the old format
        (folder / "checkpoints" / f"gen_000{g}.safetensors").unlink()
    to_old_format(run)
    info = json.loads((folder / "cell.json").read_text())
    (folder / "cell.json").write_text(json.dumps({**info, "status": "running"}))
    result = runner.invoke(app, ["migrate", str(run), "--yes"])
    assert result.exit_code == 0, result.output
    assert "converted 6 checkpoints" in result.output and "verifies clean" in result.output
    assert not list(run.glob("cells/*/checkpoints/*.pkl"))
    result = runner.invoke(app, ["resume", str(run), "--quiet"])
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(metrics(tiny_run), metrics(run))
    assert "nothing to migrate" in runner.invoke(app, ["migrate", str(run)]).output


def test_migrate_never_vouches_for_a_damaged_current_directory(run):
    flip(run / "cells" / CELL / "metrics.parquet", 300)
    result = runner.invoke(app, ["migrate", str(run), "--yes"])
    assert result.exit_code == 0 and "nothing to migrate" in result.output
    assert runner.invoke(app, ["verify", str(run)]).exit_code == 1
