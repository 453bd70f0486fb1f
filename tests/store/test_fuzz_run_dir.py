"""Property: a received run directory, however damaged, is answered in one line or recovered.

Hypothesis damages a copy of a small finished run: truncations, byte flips, missing and extra
files, JSON of the wrong types in ``cell.json`` and in the manifests (sealed again, as a sender
who rewrote them would), symbolic links to files and folders outside the directory, a FIFO.
Then ``verify``, ``report``, ``resume`` and :func:`autophagy.load_results` each either work
(``resume`` going back to the previous good checkpoint) or stop with one line, never a
traceback, and nothing outside the run directory is written.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from autophagy import load_results
from autophagy.cli import app
from autophagy.errors import AutophagyError
from autophagy.store import manifest

runner = CliRunner()

CONFIG = {
    "name": "received", "seed": [0],
    "data": {"name": "eight_gaussians", "n_train": 60, "n_test": 60},
    "model": {"name": "gmm", "options": {"n_components": 2}},
    "loop": {"policies": {"mixed": {"lambda": [0.5, 1]}}, "generations": 2},
    "eval": {"metrics": ["w2"], "n_samples": 60, "verdict_metric": "w2"},
    "run": {"executor": "inline"},
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("received")
    (root / "c.yaml").write_text(yaml.safe_dump(CONFIG))
    out = root / "run"
    result = runner.invoke(app, ["run", "--config", str(root / "c.yaml"), "--out", str(out),
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    return out


scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**20), st.floats(),
                    st.text(max_size=8))
junk = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6)
index = st.integers(0, 10**6)
damage = st.one_of(
    st.tuples(st.just("truncate"), index, st.floats(0, 1)),
    st.tuples(st.just("flip"), index, index, st.integers(1, 255)),
    st.tuples(st.just("delete"), index),
    st.tuples(st.just("extra"), index, st.text(min_size=1, max_size=10), st.binary(max_size=40)),
    st.tuples(st.just("cell.json"), index, junk, st.booleans()),
    st.tuples(st.just("manifest"), index, junk),
    st.tuples(st.just("link"), index, st.sampled_from(["file", "folder", "dangling"])),
    st.tuples(st.just("fifo"), index),
)
checkpoint_damage = st.tuples(st.just("checkpoint"), index, st.floats(0, 1))  # resume goes back


def _apply(run: Path, outside: Path, kind: str, i: int, *args) -> None:
    """One damage to ``run``; ``i`` picks the file or folder (modulo their number)."""
    files = sorted(p for p in run.rglob("*") if p.is_file() and not p.is_symlink())
    folders = sorted([run, *(p for p in run.rglob("*") if p.is_dir() and not p.is_symlink())])
    cells_folder = run / "cells"
    cells = sorted(p for p in cells_folder.iterdir() if p.is_dir() and not p.is_symlink()) if (
        cells_folder.is_dir() and not cells_folder.is_symlink()) else []
    if not files or (kind == "cell.json" and not cells):
        return
    f = files[i % len(files)]
    if kind == "checkpoint":  # a crashed cell (status running) whose checkpoint is damaged
        saved = [p for p in files if p.parent.name == "checkpoints"]
        f = saved[i % len(saved)]
        cell = f.parent.parent
        info = json.loads((cell / "cell.json").read_text())
        (cell / "cell.json").write_text(json.dumps({**info, "status": "running"}))
        manifest.seal(cell)
        kind = "truncate"
    if kind == "truncate":
        data = f.read_bytes()
        f.write_bytes(data[: int(len(data) * args[0])])
    elif kind == "flip" and f.stat().st_size:
        data = bytearray(f.read_bytes())
        data[args[0] % len(data)] ^= args[1]
        f.write_bytes(bytes(data))
    elif kind == "delete":
        f.unlink()
    elif kind == "extra":
        name = "".join(c for c in args[0] if c not in "/\0") or "x"
        try:
            (folders[i % len(folders)] / name).write_bytes(args[1])
        except OSError:  # a name the file system refuses (too long in bytes, "." or "..")
            pass
    elif kind == "cell.json":  # wrong types, sealed into the manifest as a sender would
        cell = cells[i % len(cells)]
        try:
            info = json.loads((cell / "cell.json").read_text()) if args[1] else {}
        except (OSError, ValueError):  # an earlier damage got there first
            info = {}
        value = {**info, **args[0]} if isinstance(args[0], dict) and args[1] else args[0]
        (cell / "cell.json").write_text(json.dumps(value))
        manifest.seal(cell)
    elif kind == "manifest":  # well-formed, with a true checksum, of the wrong types
        folder = [run, *cells][i % (len(cells) + 1)]
        doc = {"format": manifest.FORMAT, "checksum": manifest._checksum(args[0]),
               "files": args[0]}
        (folder / manifest.NAME).write_text(json.dumps(doc))
    elif kind == "link":
        target = {"file": outside / "secret.txt", "folder": outside,
                  "dangling": outside / "nothing"}[args[0]]
        victim = [*files, *folders[1:]][i % (len(files) + len(folders) - 1)]
        shutil.rmtree(victim) if victim.is_dir() else victim.unlink()
        victim.symlink_to(target)
    elif kind == "fifo":
        f.unlink()
        os.mkfifo(f)


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    return {str(p): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def _one_line_or_clean(result, allowed: tuple[int, ...]) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.output, result.exception)
    assert "Traceback" not in result.output
    assert result.exit_code in allowed, result.output
    if result.exit_code == 2:
        lines = result.output.strip("\n").splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.output


def _received(finished: Path, tmp_path_factory, damages) -> tuple[Path, Path, Path, dict]:
    case = tmp_path_factory.mktemp("case")
    run, outside = case / "run", case / "outside"
    shutil.copytree(finished, run)
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours")
    for d in damages:
        _apply(run, outside, *d)
    return case, run, outside, _snapshot(outside)


SEEN = {"recovered": 0, "refused": 0}
SETTINGS = dict(deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


@settings(max_examples=40, **SETTINGS)
@given(damages=st.lists(damage, min_size=1, max_size=3))
def test_verify_report_and_load_results_answer_in_one_line(finished, tmp_path_factory, damages):
    case, run, outside, before = _received(finished, tmp_path_factory, damages)
    verify = runner.invoke(app, ["verify", str(run)])
    _one_line_or_clean(verify, (0, 1, 2))
    try:
        table = load_results(run)
        assert isinstance(table, pd.DataFrame)
    except (AutophagyError, ValueError, FileNotFoundError) as err:
        assert "\n" not in str(err), str(err)
    _one_line_or_clean(runner.invoke(app, ["report", str(run)]), (0, 2))
    assert _snapshot(outside) == before
    assert sorted(p.name for p in case.iterdir()) == ["outside", "run"]


@settings(max_examples=12, **SETTINGS)
@given(damages=st.lists(st.one_of(checkpoint_damage, checkpoint_damage, damage), min_size=1,
                        max_size=2))
def test_resume_recovers_or_stops_in_one_line(finished, tmp_path_factory, damages):
    case, run, outside, before = _received(finished, tmp_path_factory, damages)
    result = runner.invoke(app, ["resume", str(run), "--quiet"])
    _one_line_or_clean(result, (0, 2))
    SEEN["recovered" if result.exit_code == 0 else "refused"] += 1
    if result.exit_code == 0:  # recovered: every generation is back; at most an old checkpoint
        problems = manifest.verify_run(run).problems  # of a finished cell is left as it was
        assert all(p.path.parent.name == "checkpoints" for p in problems), problems
        assert sorted(load_results(run)["generation"].unique()) == [0, 1, 2]
    assert _snapshot(outside) == before
    assert sorted(p.name for p in case.iterdir()) == ["outside", "run"]


@pytest.mark.parametrize("linked", ["figures", "cells/mixed-lam0.5-seed0/checkpoints"])
def test_a_folder_linked_outside_is_refused_and_never_written_through(finished, tmp_path, linked):
    """``report`` writes figures and ``resume`` checkpoints: through a link, that would be outside
    the directory; both stop in one line naming the link."""
    run, outside = tmp_path / "run", tmp_path / "outside"
    shutil.copytree(finished, run)
    shutil.copytree(run / linked, outside)
    shutil.rmtree(run / linked)
    (run / linked).symlink_to(outside)
    before = _snapshot(outside)
    for command in (["report", str(run)], ["resume", str(run), "--quiet"]):
        result = runner.invoke(app, command)
        _one_line_or_clean(result, (2,))
        assert f"{linked}: a symbolic link" in result.output
    verify = runner.invoke(app, ["verify", str(run)])
    assert verify.exit_code == 1 and "a symbolic link" in verify.output
    assert _snapshot(outside) == before
