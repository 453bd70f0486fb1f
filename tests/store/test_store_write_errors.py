"""Disks that refuse writes: a read-only ``--out`` and a disk that fills up mid-run (real tmpfs
mounts when the tests run as root, patched writes otherwise) each stop with one line naming the
path, exit 2, no verdicts on half the data, and the resume hint once a generation finished."""

from __future__ import annotations

import errno
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_runs import gmm_run
from typer.testing import CliRunner

import autophagy.atomic
from autophagy.cli import app
from autophagy.errors import DiskFullError, NotWritableError, WriteError

runner = CliRunner()

RUN = gmm_run(None, inline=False)


@pytest.fixture
def tmpfs(tmp_path):
    """``mount(options)``: a fresh tmpfs under ``tmp_path`` (skips unless root may mount)."""
    mounted = []

    def mount(options: str) -> Path:
        if os.geteuid() != 0 or shutil.which("mount") is None:
            pytest.skip("mounting a tmpfs needs root")
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                              capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def _one_error_line(output: str) -> str:
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    return errors[0]


@pytest.mark.parametrize(
    ("code", "kind"),
    [(errno.ENOSPC, DiskFullError), (errno.EDQUOT, DiskFullError),
     (errno.EROFS, NotWritableError), (errno.EACCES, NotWritableError),
     (errno.EIO, WriteError)],
)
def test_write_errors_are_classified_by_errno_and_survive_a_worker_process(code, kind):
    err = WriteError.of(OSError(code, os.strerror(code)), "/run/cells/x/cell.json")
    assert type(err) is kind and err.errno == code and isinstance(err, OSError)
    assert str(err).startswith(f"/run/cells/x/cell.json: {os.strerror(code)} (")
    back = pickle.loads(pickle.dumps(err))  # how a worker's error reaches the parent
    assert type(back) is kind and str(back) == str(err)


def test_a_read_only_out_is_one_line_naming_it_exit_2(tmpfs):
    out = tmpfs("ro,size=64k") / "run"
    result = runner.invoke(app, ["run", *RUN, "--set", "loop.generations=2", "--out", str(out)])
    assert result.exit_code == 2, result.output
    line = _one_error_line(result.output)
    assert str(out) in line and "Read-only file system" in line and "not writable" in line
    assert "autophagy resume" not in line  # nothing finished: nothing to resume


def test_an_out_without_permission_is_one_line_naming_it_exit_2(tmp_path, monkeypatch):
    out = tmp_path / "locked" / "run"
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):  # as for a user without write permission on the parent
        if str(path).startswith(str(tmp_path / "locked")):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    result = runner.invoke(app, ["run", *RUN, "--set", "loop.generations=2", "--out", str(out)])
    monkeypatch.undo()
    assert result.exit_code == 2, result.output
    line = _one_error_line(result.output)
    assert str(out) in line and "Permission denied" in line and "not writable" in line
    assert not out.exists()


def test_a_disk_filling_up_mid_run_stops_in_one_line_with_the_resume_hint(tmpfs):
    out = tmpfs("size=128k") / "run"
    # worker processes: the error has to cross from a worker to the parent
    args = [*RUN, "--set", "loop.generations=20", "--set", "run.executor=processes",
            "--set", "run.workers=2"]
    done = subprocess.run([sys.executable, "-m", "autophagy", "run", *args, "--out", str(out)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2, done
    line = _one_error_line(done.stderr)
    assert "No space left on device" in line and "disk is full" in line
    assert line.startswith(f"error: {out}/"), line  # names the file it could not write
    assert line.endswith(f"continue with 'autophagy resume {out}'"), line
    assert "Verdicts" not in done.stdout and "report:" not in done.stdout  # nothing half-reported
    result = runner.invoke(app, ["verify", str(out)])
    assert result.exit_code == 0, result.output  # what finished is intact
    assert "interrupted" in result.output


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    result = runner.invoke(app, ["run", *RUN, "--set", "loop.generations=2", "--set",
                                 "run.executor=inline", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_a_full_disk_while_drawing_the_report_is_one_line_naming_the_figure(
    finished, monkeypatch
):
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):  # as a full disk fails the write of a figure
        if "figures" in Path(dst).parts:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(autophagy.atomic.os, "replace", replace)
    result = runner.invoke(app, ["report", str(finished)])
    monkeypatch.undo()
    assert result.exit_code == 2, result.output
    line = _one_error_line(result.output)
    assert line.startswith(f"error: {finished / 'figures'}/") and ".png" in line, line
    assert "No space left on device" in line
    assert not list((finished / "figures").glob(".*.tmp"))  # nothing half-written left
