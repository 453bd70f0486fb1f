"""The manifest as a reproducibility check: a checkpoint's bytes depend only on its state (not on
the process that wrote it), so two identical runs have identical manifests; and ``cell.json`` is
strict JSON that any parser reads."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_runs import gmm_run
from typer.testing import CliRunner

from autophagy.cli import app
from autophagy.store import open_run
from autophagy.store.manifest import seal

runner = CliRunner()

RUN = gmm_run(2)

DUMP = """
import hashlib, sys
import numpy as np
from autophagy.store import statefile
state = {"model": {"w": np.arange(6.0).reshape(2, 3), "n": np.int64(3)}, "rng": {"s": 2**70},
         "rows": [(0, "w2", 0.5)], "x": float("inf"), "names": {1: "a"}}
sys.stdout.write(hashlib.sha256(statefile.dumps(state)).hexdigest())
"""


def test_a_checkpoint_has_the_same_bytes_in_every_process():
    # safetensors writes its header metadata from a Rust HashMap, seeded per process: before the
    # canonical header, about half of the processes wrote the two keys the other way round
    hashes = {subprocess.run([sys.executable, "-c", DUMP], capture_output=True, text=True,
                             check=True).stdout for _ in range(6)}
    assert len(hashes) == 1, hashes


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The same config run twice, in two processes at once."""
    base = tmp_path_factory.mktemp("twice")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "autophagy", "run", *RUN, "--out",
                               str(base / name)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
    return base / "a", base / "b"


def _manifests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("manifest.json")}


def test_two_identical_runs_have_identical_manifests(two_runs):
    a, b = two_runs
    manifests = _manifests(a)
    assert len(manifests) == 3  # the run's and each cell's
    assert manifests == _manifests(b)
    files = json.loads(manifests["cells/mixed-lam0.5-seed0/manifest.json"])["files"]
    assert sum(name.startswith("checkpoints/") for name in files) == 3  # checkpoints included


def _strict(text: str):
    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_cell_json_is_strict_json_and_reads_back_infinite_lambda(two_runs):
    a, _ = two_runs
    cell = a / "cells" / "fully_synthetic-seed0" / "cell.json"
    assert _strict(cell.read_text())["lambda"] == "inf"
    cells = open_run(a).cells().set_index("cell")
    assert cells.loc["fully_synthetic-seed0", "lambda"] == math.inf
    assert cells.loc["mixed-lam0.5-seed0", "lambda"] == 0.5
    for path in a.rglob("*.json"):
        _strict(path.read_text())  # manifests too


def test_an_old_cell_json_with_a_bare_infinity_still_reads(two_runs, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(two_runs[0], old)
    cell = old / "cells" / "fully_synthetic-seed0"
    text = (cell / "cell.json").read_text().replace('"lambda": "inf"', '"lambda": Infinity')
    assert "Infinity" in text
    (cell / "cell.json").write_text(text)
    seal(cell)
    cells = open_run(old).cells().set_index("cell")
    assert cells.loc["fully_synthetic-seed0", "lambda"] == math.inf
    result = runner.invoke(app, ["report", str(old)])
    assert result.exit_code == 0, result.output
