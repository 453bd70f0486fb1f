"""``autophagy compare``: one page across runs, every label prefixed by its run, runs untouched."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

import autophagy
from autophagy.cli import app

FAST = ["--set", "seed=[0]", "--set", "loop.generations=1", "--set", "run.executor=inline",
        "--set", "eval.n_samples=200", "-q"]


def _run(tmp_path, name, *extra):
    out = tmp_path / name
    result = CliRunner().invoke(
        app, ["run", "--preset", "toy-gmm", "--set", f"name={name}", *FAST, *extra, "--out",
              str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_compare_puts_two_runs_in_one_report(tmp_path):
    a = _run(tmp_path, "gmm")
    b = _run(tmp_path, "kde", "--set", "model.name=kde", "--set", "model.options={}")
    before = (a / "metrics.parquet").read_bytes()
    out = tmp_path / "cmp"
    result = CliRunner().invoke(app, ["compare", str(a), str(b), "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text()
    assert "gmm: mixed λ=0.5" in page and "kde: fully_synthetic" in page
    assert (a / "metrics.parquet").read_bytes() == before
    # the verdict rows are each run's own numbers, relabelled
    merged = pd.concat([autophagy.load_results(a), autophagy.load_results(b)])
    w2 = merged[(merged.metric == "w2") & (merged.generation == 0)]
    for value in w2.value:
        assert f"{value:.4g}" in result.output


def test_compare_needs_two_runs(tmp_path):
    a = _run(tmp_path, "gmm")
    result = CliRunner().invoke(app, ["compare", str(a), "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 2 and "at least two run directories" in result.output
