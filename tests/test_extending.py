"""Extending autophagy from outside the package: a policy, a metric and a model family defined
here, registered with one line each (or named as ``module:attr`` in a config), run by the CLI."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import autophagy
from autophagy.cli import app
from autophagy.metrics import METRICS, Metric, register_metric
from autophagy.models.registry import MODELS
from autophagy.policies import POLICIES, Policy, parameter

HERE = Path(__file__).parent


@dataclass(frozen=True)
class KeepHalf(Policy):
    """A random half of the real data plus floor(lambda * n) synthetic samples."""

    ratio: float = parameter(1.0, key="lambda", tag="lam")
    name: ClassVar[str] = "keep_half"

    def n_synthetic(self, n_real: int) -> int:
        return math.floor(self.ratio * n_real)

    def next_training_set(self, real, synthetic, state, *, rng, pool=None):
        kept = real[rng.permutation(len(real))[: len(real) // 2]]
        return np.concatenate([kept, synthetic]), state


SPREAD = Metric(
    name="spread",
    compute=lambda ctx: float(np.var(ctx.samples, axis=0).mean()),
    description="mean per-axis variance of the samples",
    title="sample spread",
    lower_is_better=False,
)


class BoxModel:
    """Uniform on the data's bounding box widened by ``margin`` on every side."""

    def __init__(self, margin: float = 0.0):
        self.margin = margin

    def fit(self, data, *, warm_start=False, budget=None, rng):
        x = np.asarray(data, dtype=np.float64)
        self.low_, self.high_ = x.min(axis=0) - self.margin, x.max(axis=0) + self.margin
        return self

    def sample(self, n, *, rng, temperature=1.0):
        return rng.uniform(self.low_, self.high_, size=(n, len(self.low_)))

    def state_dict(self):
        return {"low": self.low_, "high": self.high_}

    def load_state_dict(self, state):
        self.low_, self.high_ = np.asarray(state["low"]), np.asarray(state["high"])


@pytest.fixture
def registered():
    """The three registration lines a plugin would run (undone after the test)."""
    POLICIES.register("keep_half", KeepHalf)
    register_metric(SPREAD)
    MODELS.register("box", BoxModel)
    yield
    POLICIES.unregister("keep_half")
    METRICS.unregister("spread")
    MODELS.unregister("box")


def _config(tmp_path: Path, model: str, policy: str, metric: str) -> Path:
    config = {
        "name": "extended",
        "data": {"name": "moons", "n_train": 200, "n_test": 400, "seed": 0},
        "model": {"name": model, "options": {"margin": 0.1}},
        "loop": {"policies": {policy: {"lambda": [0.5, 1]}, "mixed": {"lambda": 1}},
                 "generations": 3},
        "eval": {"metrics": ["w2", metric], "verdict_metric": "w2", "n_samples": 4000},
        "run": {"executor": "inline"},
    }
    path = tmp_path / "extended.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _check_box_growth(df, real_train: np.ndarray) -> None:
    """Each generation refits the box to samples that fill the previous box, then widens it by
    the margin: the spread (variance of a uniform, width^2 / 12) must grow every generation, and
    generation 0 must match the real data's widened box."""
    spread = df[df.metric == "spread"].pivot(index="generation", columns="cell", values="value")
    assert spread.shape == (4, 3)
    assert (spread.diff().iloc[1:] > 0).all().all()
    width = real_train.max(axis=0) - real_train.min(axis=0) + 0.2
    expected = float(np.mean(width**2 / 12))
    np.testing.assert_allclose(spread.loc[0], expected, rtol=0.05)


def test_registered_extensions_run_through_the_cli(tmp_path, registered):
    out = tmp_path / "run"
    config = _config(tmp_path, "box", "keep_half", "spread")
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    df = autophagy.load_results(out)
    assert set(df.cell) == {"keep_half-lam0.5-seed0", "keep_half-lam1-seed0", "mixed-lam1-seed0"}
    assert set(df.loc[df.policy == "keep_half", "lambda"]) == {0.5, 1.0}
    real = autophagy.load_dataset("moons", n_train=200, n_test=400, seed=0).train
    _check_box_growth(df, real)
    assert "sample spread (spread)" in (out / "report.html").read_text().lower()
    listing = CliRunner().invoke(app, ["list"]).output
    assert "keep_half" in listing and "box" in listing and "spread" in listing


def test_module_names_in_a_config_need_no_registration(tmp_path):
    out = tmp_path / "run"
    module = Path(__file__).stem
    config = _config(tmp_path, f"{module}:BoxModel", f"{module}:KeepHalf", f"{module}:SPREAD")
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    proc = subprocess.run(
        [sys.executable, "-m", "autophagy", "run", "--config", str(config), "--out", str(out),
         "-q"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    df = autophagy.load_results(out)
    assert "keep_half-lam0.5-seed0" in set(df.cell)
    real = autophagy.load_dataset("moons", n_train=200, n_test=400, seed=0).train
    _check_box_growth(df, real)


def test_an_unknown_module_name_fails_in_one_line(tmp_path):
    config = _config(tmp_path, "nowhere_pkg:Box", "mixed", "w2")
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "cannot import 'nowhere_pkg'" in result.output
    assert not (tmp_path / "r").exists()


def test_an_installed_plugin_registers_through_its_entry_point(tmp_path, monkeypatch):
    """A package that declares ``[autophagy.plugins]`` in its metadata is loaded on first use."""
    import autophagy.registry as registry

    (tmp_path / "box_plugin.py").write_text(
        "from autophagy.models.registry import MODELS\n"
        "def register():\n"
        "    MODELS.register('plugin_box', 'test_extending:BoxModel', description='a plugin box')\n"
    )
    dist = tmp_path / "box_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: box-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[autophagy.plugins]\nbox = box_plugin:register\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    try:
        assert ("plugin_box", "a plugin box") in MODELS.describe()
        assert MODELS["plugin_box"].__name__ == "BoxModel"
    finally:
        MODELS.unregister("plugin_box")
