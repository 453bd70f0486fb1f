"""Faults: ``kill -9`` of a real ``autophagy run`` at random and at chosen points (inside a
checkpoint write, between a file and its manifest, inside a deletion), and a full disk. After
each, the directory verifies clean (a crash is never mistaken for damage) and ``autophagy
resume`` ends with the metrics of an uninterrupted run."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from tiny_runs import gmm_run
from typer.testing import CliRunner

import autophagy.atomic
from autophagy.cli import app
from autophagy.store import CellStore

runner = CliRunner()

RUN = gmm_run(6, "{mixed: {lambda: [0.5]}}")
KEY = ["cell", "generation", "metric"]

# The run, with os.replace / os.unlink wrapped so that at a chosen file (its n-th write) the
# process signals the test and waits to be killed: before the rename (the temporary file is
# written, the manifest already says "pending"), after it (the manifest not yet confirmed), or
# right after an unlink (the manifest still lists the file as "deleting").
DRIVER = textwrap.dedent(
    """
    import os, sys, time
    stop = os.environ.get("STOP_AT")
    if stop:
        name, when, nth = stop.split(":")
        seen = [0]
        def hit(path, moment):
            if os.path.basename(path) == name and when == moment:
                seen[0] += 1
                if seen[0] == int(nth):
                    open(os.environ["STOP_READY"], "w").close()
                    time.sleep(120)
        real_replace, real_unlink = os.replace, os.unlink
        def replace(src, dst, *a, **k):
            hit(dst, "before")
            real_replace(src, dst, *a, **k)
            hit(dst, "after")
        def unlink(path, *a, **k):
            real_unlink(path, *a, **k)
            hit(path, "unlinked")
        os.replace, os.unlink = replace, unlink
    from autophagy.cli import app
    sys.argv[0] = "autophagy"
    app()
    """
)

CHOSEN = {
    "inside a checkpoint write": ("gen_0003.safetensors:before:1", []),
    "checkpoint written, manifest not confirmed": ("gen_0002.safetensors:after:1", []),
    "inside a keep-last deletion": (
        "gen_0002.safetensors:unlinked:1", ["--set", "run.checkpoints=last"]),
}  # fmt: skip
RANDOM_SEEDS = [0, 1]


def _launch(out: Path, stop: str | None, extra: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if stop:
        env |= {"STOP_AT": stop, "STOP_READY": str(out.parent / "ready")}
    with open(out.parent / "stderr.txt", "wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-c", DRIVER, "run", *RUN, *extra, "--out", str(out)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def _kill_when(proc: subprocess.Popen, ready, delay: float = 0.0, timeout: float = 90) -> str:
    """SIGKILL ``proc`` once ``ready()`` holds (plus ``delay``); what happened, in words."""
    start = time.monotonic()
    while not ready():
        if proc.poll() is not None:
            return f"exited {proc.returncode} first"
        if time.monotonic() - start > timeout:
            break
        time.sleep(0.02)
    time.sleep(delay)
    if proc.poll() is not None:
        return "finished before the kill"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return "killed"


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """Every scenario, started at once (two at a time would double the wall time) and killed."""
    base = tmp_path_factory.mktemp("killed")
    jobs, outcome = {}, {}
    for name, (stop, extra) in CHOSEN.items():
        folder = base / name.replace(" ", "-").replace(",", "")
        folder.mkdir()
        out = folder / "run"
        ready = folder / "ready"
        jobs[name] = (out, _launch(out, stop, extra), ready.exists, 0.0)
    for seed in RANDOM_SEEDS:
        folder = base / f"random-{seed}"
        folder.mkdir()
        out = folder / "run"
        delay = random.Random(seed).uniform(0.0, 1.5)
        started = (out / "cells").exists
        jobs[f"random kill {seed}"] = (out, _launch(out, None, []), started, delay)

    def control(name, proc, ready, delay):
        outcome[name] = _kill_when(proc, ready, delay)

    threads = [
        threading.Thread(target=control, args=(name, proc, ready, delay))
        for name, (_, proc, ready, delay) in jobs.items()
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    listing = {
        name: sorted(p.relative_to(job[0]).as_posix() for p in job[0].rglob("*"))
        for name, job in jobs.items()
    }  # before any test resumes the directories
    return {name: (job[0], outcome[name], listing[name]) for name, job in jobs.items()}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "run"
    result = runner.invoke(app, ["run", *RUN, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def metrics(root: Path) -> pd.DataFrame:
    return pd.read_parquet(root / "metrics.parquet").sort_values(KEY).reset_index(drop=True)


@pytest.mark.parametrize("scenario", [*CHOSEN, *(f"random kill {s}" for s in RANDOM_SEEDS)])
def test_after_kill_9_the_directory_verifies_clean_and_resume_equals_an_uninterrupted_run(
    killed, uninterrupted, scenario
):
    out, what, _ = killed[scenario]
    if scenario in CHOSEN:
        assert what == "killed", (what, (out.parent / "stderr.txt").read_text()[-2000:])
    result = runner.invoke(app, ["verify", str(out)])
    assert result.exit_code == 0, result.output  # a crash is never reported as damage
    result = runner.invoke(app, ["resume", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
    pd.testing.assert_frame_equal(metrics(uninterrupted), metrics(out))
    assert runner.invoke(app, ["verify", str(out)]).exit_code == 0


def test_kill_inside_a_checkpoint_write_leaves_only_a_hidden_temporary_file(killed):
    _, _, files = killed["inside a checkpoint write"]
    folder = "cells/mixed-lam0.5-seed0/checkpoints/"
    names = [f.removeprefix(folder) for f in files if f.startswith(folder)]
    done = [n for n in names if not n.startswith(".")]
    assert done == [f"gen_000{g}.safetensors" for g in range(3)]
    (tmp,) = [n for n in names if n.startswith(".")]
    assert tmp.startswith(".gen_0003.safetensors.") and tmp.endswith(".tmp")


class Full:
    """``os.replace`` as on a disk that fills up at the ``nth`` write of file ``name``: that
    write and every later one into the run directory fail with ENOSPC (as a full disk fails the
    write itself: no file name in the error; the temporary file is removed)."""

    def __init__(self, root: Path, at: str):
        self.root, (self.name, nth), self.full = str(root), at.split(":"), False
        self.left = int(nth)
        self.replace = os.replace

    def __call__(self, src, dst, *args, **kwargs):
        if str(dst).startswith(self.root):
            self.left -= Path(dst).name == self.name
            self.full = self.full or self.left == 0
            if self.full:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.replace(src, dst, *args, **kwargs)


@pytest.mark.parametrize("at", ["gen_0003.safetensors:1", "manifest.json:20"])
def test_a_full_disk_stops_with_one_line_and_loses_nothing_finished(
    tmp_path, monkeypatch, uninterrupted, at
):
    out = tmp_path / "run"
    full = Full(out / "cells", at)
    monkeypatch.setattr(autophagy.atomic.os, "replace", full)
    result = runner.invoke(app, ["run", *RUN, "--out", str(out)])
    monkeypatch.undo()
    assert result.exit_code == 2, result.output  # one line, as every error we name
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    assert "No space left on device" in errors[0] and "autophagy resume" in errors[0]
    assert str(out / "cells") in errors[0]  # names the file it could not write
    cell = CellStore(out / "cells" / "mixed-lam0.5-seed0")
    last, payload = cell.latest()  # what finished is on disk, checkpoint and metrics
    assert 0 <= last < 6 and {r["generation"] for r in payload["rows"]} == set(range(last + 1))
    assert set(range(last + 1)) <= set(cell.metrics().generation)
    assert runner.invoke(app, ["verify", str(out)]).exit_code == 0
    result = runner.invoke(app, ["resume", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(metrics(uninterrupted), metrics(out))
