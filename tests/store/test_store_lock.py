"""One writer per run directory, and runs that stopped: real ``autophagy`` processes held at a
chosen write, a second writer refused while the first lives and let in once it is killed
(``kill -9``: a stale lock), ``verify`` and ``report`` saying the run is unfinished, and SIGTERM
leaving exactly the state Ctrl-C leaves."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from tiny_runs import gmm_run
from typer.testing import CliRunner

from autophagy.cli import app
from autophagy.store.lock import RunLock, RunLocked, holder, last_writer

runner = CliRunner()

RUN = gmm_run(2)

# ``autophagy`` with os.replace wrapped: at the first write of file STOP_AT it touches
# STOP_READY and sleeps, so the test acts on a writer held at a known point. SIGINT gets
# Python's own handler even where the test runner ignores it (a background job).
DRIVER = textwrap.dedent(
    """
    import os, signal, sys, time
    signal.signal(signal.SIGINT, signal.default_int_handler)
    stop, real_replace = os.environ["STOP_AT"], os.replace
    def replace(src, dst, *a, **k):
        if os.path.basename(dst) == stop and not os.path.exists(os.environ["STOP_READY"]):
            open(os.environ["STOP_READY"], "w").close()
            time.sleep(120)
        real_replace(src, dst, *a, **k)
    os.replace = replace
    from autophagy.cli import app
    sys.argv[0] = "autophagy"
    app()
    """
)


STOP = "gen_0001.safetensors"


def _launch(out: Path) -> subprocess.Popen:
    """``autophagy run`` into ``out``, to be held inside its first write of :data:`STOP`."""
    ready = out.parent / f"{out.name}.ready"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "STOP_AT": STOP, "STOP_READY": str(ready)}
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, "run", *RUN, "--out", str(out)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_held(proc: subprocess.Popen, out: Path) -> subprocess.Popen:
    ready, start = out.parent / f"{out.name}.ready", time.monotonic()
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() - start > 120:
            proc.kill()
            pytest.fail(f"the writer did not reach {STOP}: {proc.communicate()}")
        time.sleep(0.05)
    return proc


def _held(out: Path) -> subprocess.Popen:
    return _wait_held(_launch(out), out)


def _autophagy(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autophagy", *args], capture_output=True,
                          text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)


def test_a_second_writer_is_refused_while_the_first_lives_and_let_in_after_kill_9(tmp_path):
    out = tmp_path / "run"
    first = _held(out)
    try:
        second = _autophagy("resume", str(out), "--quiet")
        assert second.returncode == 2, second
        (line,) = second.stderr.strip().splitlines()  # one line, naming the holder
        assert f"pid {first.pid} on {socket.gethostname()}" in line and "'autophagy run'" in line
        assert "one writer per run directory" in line, line
        assert not (out / "cells" / "mixed-lam0.5-seed0" / "checkpoints" / "gen_0001.safetensors"
                    ).exists()  # the refused writer wrote nothing
        alive = runner.invoke(app, ["verify", str(out)])
        assert alive.exit_code == 0 and "still running" in alive.output, alive.output
        assert holder(out).pid == first.pid
        manifests = {p: p.read_bytes() for p in out.rglob("manifest.json")}
        snapshot = runner.invoke(app, ["report", str(out)])  # a report of a live run
        assert snapshot.exit_code == 0, snapshot.output
        assert snapshot.output.startswith(f"warning: {out}: still running"), snapshot.output
        assert manifests == {p: p.read_bytes() for p in out.rglob("manifest.json")}  # not its own
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert holder(out) is None and last_writer(out).pid == first.pid  # stale: the kernel let go
    result = runner.invoke(app, ["resume", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert f"the previous writer, 'autophagy run' pid {first.pid}" in result.output
    result = runner.invoke(app, ["verify", str(out)])
    assert result.exit_code == 0 and "clean" in result.output
    assert "interrupted" not in result.output and "running" not in result.output
    assert last_writer(out) is None  # a writer that finished leaves no record


def test_verify_and_report_say_a_killed_run_is_unfinished(tmp_path):
    out = tmp_path / "run"
    first = _held(out)
    first.send_signal(signal.SIGKILL)
    first.wait()
    statuses = {json.loads(p.read_text())["status"] for p in out.glob("cells/*/cell.json")}
    assert statuses == {"running", "pending"}  # what the dead writer left on disk
    result = runner.invoke(app, ["verify", str(out)])
    assert result.exit_code == 0, result.output  # intact files: no damage
    assert "clean" in result.output
    assert "interrupted (2 of 2 cells unfinished" in result.output
    assert f"pid {first.pid}" in result.output and f"autophagy resume {out}" in result.output
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"warning: {out}: interrupted"), result.output
    verdicts = [line for line in result.output.splitlines() if "mixed" in line]
    assert any("*" in line for line in verdicts), result.output  # the partial curve is marked
    assert "* unfinished curve" in result.output
    html = (out / "report.html").read_text()
    assert "2 cells: 2 interrupted." in html and "unfinished curve" in html
    assert "running" not in html.split("<table")[-1]  # the cells table
    result = runner.invoke(app, ["verify", str(out)])  # report wrote; still the dead writer named
    assert f"pid {first.pid}" in result.output
    # a report holding the lock runs no cell: the run still reads as interrupted, not running
    code = (f"from autophagy.store.lock import RunLock; RunLock({str(out)!r}, 'report')"
            ".acquire(); print('held', flush=True); import time; time.sleep(60)")
    reporter = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert reporter.stdout.readline().strip() == "held"
        result = runner.invoke(app, ["verify", str(out)])
        assert "interrupted" in result.output and "running" not in result.output, result.output
    finally:
        reporter.kill()
        reporter.wait()


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """Two runs held at the same write: one gets SIGTERM, the other SIGINT (Ctrl-C)."""
    base = tmp_path_factory.mktemp("signals")
    procs = {sig: (base / sig.name, _launch(base / sig.name)) for sig in (signal.SIGTERM,
                                                                          signal.SIGINT)}
    done = {}
    for sig, (out, proc) in procs.items():
        _wait_held(proc, out)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
        done[sig] = (out, proc.returncode, stderr)
    return done


def test_sigterm_exits_143_with_the_resume_hint_as_ctrl_c_does(stopped):
    for sig, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        out, returncode, stderr = stopped[sig]
        assert returncode == code, (sig, returncode, stderr)
        assert stderr.strip() == (f"interrupted; finished generations are saved; continue with "
                                  f"'autophagy resume {out}'"), stderr


def _state(out: Path) -> dict[str, str]:
    """Every file but the lock, by content (manifests, cell.json, checkpoints, ...)."""
    files = (p for p in out.rglob("*") if p.is_file() and p.name != ".lock")
    return {p.relative_to(out).as_posix(): p.read_bytes().hex() for p in files}


def test_sigterm_leaves_the_state_ctrl_c_leaves_and_both_resume_to_the_same_numbers(stopped):
    term, _, _ = stopped[signal.SIGTERM]
    interrupt, _, _ = stopped[signal.SIGINT]
    assert _state(term) == _state(interrupt)  # byte for byte, manifests included
    for out in (term, interrupt):
        result = runner.invoke(app, ["verify", str(out)])
        assert result.exit_code == 0 and "interrupted" in result.output, result.output
        result = runner.invoke(app, ["resume", str(out), "--quiet"])
        assert result.exit_code == 0, result.output
    metrics = [pd.read_parquet(out / "metrics.parquet") for out in (term, interrupt)]
    pd.testing.assert_frame_equal(*metrics)


def test_the_lock_refuses_a_second_holder_in_one_line_and_is_free_after_release(tmp_path):
    first = RunLock(tmp_path, "run").acquire()
    with pytest.raises(RunLocked, match=rf"pid {os.getpid()} on .*one writer per run"):
        RunLock(tmp_path, "resume").acquire(attempts=2, wait=0.01)
    assert holder(tmp_path) is None  # this process itself is not "another writer"
    first.release()
    again = RunLock(tmp_path, "resume").acquire()
    assert again.stale is None  # a clean release leaves no record to take over
    again.release()


def _children(pid: int) -> set[int]:
    """Processes whose parent is ``pid`` (Linux /proc; the test skips elsewhere)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_worker_processes_end_with_a_killed_parent_so_its_free_lock_is_safe(tmp_path):
    # before: after kill -9 of 'autophagy run' its workers went on writing their cells for
    # minutes while the lock was free, so a 'resume' would run beside them
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "autophagy", "run", *RUN, "--set", "loop.generations=200",
         "--set", "run.executor=processes", "--set", "run.workers=2", "--out", str(out)],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    first = out / "cells" / "mixed-lam0.5-seed0" / "checkpoints" / "gen_0001.safetensors"
    start = time.monotonic()
    while not first.exists() and time.monotonic() - start < 120 and proc.poll() is None:
        time.sleep(0.05)
    children = _children(proc.pid)
    assert len(children) >= 3  # two workers and the progress queue's manager
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    start = time.monotonic()
    while any(Path(f"/proc/{c}").exists() for c in children) and time.monotonic() - start < 20:
        time.sleep(0.1)
    left = [c for c in children if Path(f"/proc/{c}").exists()]
    for pid in left:  # do not leave them running if this test fails
        os.kill(pid, signal.SIGKILL)
    assert not left
    assert holder(out) is None
    result = runner.invoke(app, ["verify", str(out)])
    assert result.exit_code == 0 and "interrupted" in result.output, result.output
