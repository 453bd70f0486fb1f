"""``run.address`` against a real Ray head started with ``ray start --head`` (token auth on, as a
token file left by any earlier local Ray turns it on), and against a port that is not Ray.

Every socket stays on loopback: ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` makes Ray advertise and
bind 127.0.0.1 instead of this machine's network address (its single-machine mode). The head
runs in a temp dir of its own and is stopped by ending the ``ray start --block`` process this
module started (never ``ray stop``, which ends every Ray process on the machine)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

import autophagy
from autophagy.config import load_config
from autophagy.errors import ClusterError
from autophagy.run.experiment import run_experiment
from autophagy.run.ray_cluster import check_address
from autophagy.store import RunStore

pytest.importorskip("ray")
SRC = str(Path(autophagy.__file__).resolve().parents[1])
SETS = ["seed=[0]", "loop.generations=2",
        "loop.policies={mixed: {lambda: 0.5}, fully_synthetic: {}}",
        "eval.n_samples=200", "eval.metrics=[w2,energy]"]
GRID = ["--preset", "toy-gmm", *(a for s in SETS for a in ("--set", s)), "-q"]
LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    """This environment with our sources first, Ray on loopback, no auth settings of the user's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env["PYTHONPATH"] = os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])
    return {**env, **LOOPBACK, **extra}


@pytest.fixture(scope="module")
def head():
    """A Ray head (``ray start --head --block``) on a free loopback port, asking for a token;
    yields (address, token file)."""
    temp = Path(tempfile.mkdtemp(prefix="ar", dir="/tmp"))  # short: Ray's socket paths
    token = temp / "token"
    token.write_text("autophagy-test-token-0123456789abcdef")
    port = _free_port()
    ray_cli = Path(sys.executable).with_name("ray")
    log = (temp / "head.log").open("w")
    proc = subprocess.Popen(
        [str(ray_cli), "start", "--head", "--block", f"--port={port}",
         f"--temp-dir={temp / 'ray'}", "--num-cpus=2", "--include-dashboard=false",
         "--disable-usage-stats", f"--ray-client-server-port={_free_port()}",
         f"--dashboard-agent-listen-port={_free_port()}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env=_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token)),
    )
    try:
        deadline = time.monotonic() + 60
        while "Ray runtime started" not in (temp / "head.log").read_text():
            assert proc.poll() is None, (temp / "head.log").read_text()
            assert time.monotonic() < deadline, (temp / "head.log").read_text()
            time.sleep(0.2)
        yield f"127.0.0.1:{port}", token
    finally:
        proc.send_signal(signal.SIGTERM)  # --block: ray start ends the processes it started
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: only what it started
            proc.wait()
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def _cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autophagy", *args], env=env, timeout=timeout,
                          capture_output=True, text=True)


def test_a_run_on_a_ray_start_head_through_run_address_equals_inline(tmp_path, head):
    address, token = head
    # As on a machine where a local Ray left its token: the mode is not set, only the token.
    done = _cli("run", *GRID, "--set", "run.executor=ray", "--set", f"run.address={address}",
                "--out", str(tmp_path / "ray"), env=_env(RAY_AUTH_TOKEN_PATH=str(token)))
    assert done.returncode == 0, done.stderr[-3000:]
    config = load_config(preset="toy-gmm", overrides=[*SETS, "run.executor=inline"])
    store = RunStore.create(tmp_path / "inline", config.to_yaml())
    run_experiment(config, store)
    pd.testing.assert_frame_equal(autophagy.load_results(tmp_path / "ray"), store.results())


def test_a_head_asking_for_a_token_names_what_is_missing_or_wrong(head, monkeypatch, tmp_path):
    address, token = head
    for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ray/auth_token
    with pytest.raises(ClusterError, match=r"run.address: .* asks for an auth token; give"):
        check_address(address)
    monkeypatch.setenv("RAY_AUTH_TOKEN", "not-the-head-token")
    with pytest.raises(ClusterError, match="refuses the auth token in RAY_AUTH_TOKEN"):
        check_address(address)
    monkeypatch.setenv("RAY_AUTH_TOKEN", token.read_text())
    assert check_address(address) is True  # send the token with ray.init


def test_a_port_that_is_not_ray_fails_in_one_line_within_seconds(tmp_path):
    """A listener that accepts and never answers (Ray's client blocked on it for minutes)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        out = tmp_path / "r"
        # The timeout bounds the test; the check itself waits at most PROBE_SECONDS a step.
        done = _cli("run", *GRID, "--set", "run.executor=ray", "--set", f"run.address={address}",
                    "--out", str(out), env=_env(), timeout=90)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"run.address: '{address}' accepts connections but does not answer as Ray" in lines[0]
    assert not out.exists()


def test_a_malformed_address_is_one_line():
    with pytest.raises(ClusterError, match="run.address: '127.0.0.1' is not host:port"):
        check_address("127.0.0.1")
