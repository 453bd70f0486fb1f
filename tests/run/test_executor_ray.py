"""The Ray executor on a real local Ray: same numbers as inline, a killed worker retried into the
same result, and resume of a run started under Ray."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import autophagy
from autophagy.cli import app
from autophagy.models.families.mixture import GaussianMixture

ray = pytest.importorskip("ray")
HERE = Path(__file__).parent
MARKER = "AUTOPHAGY_TEST_DIE_MARKER"
GRID = ["--preset", "toy-gmm", "--set", "seed=[0]", "--set", "loop.generations=3",
        "--set", "loop.policies={mixed: {lambda: 0.5}, fully_synthetic: {}}",
        "--set", "eval.n_samples=300", "--set", "eval.metrics=[w2,energy]", "-q"]


class DieOnce(GaussianMixture):
    """A Gaussian mixture whose worker process dies at its third fit, once per marker file."""

    def fit(self, data, *, warm_start=False, budget=None, rng):
        self.fits = getattr(self, "fits", 0) + 1
        marker = Path(os.environ[MARKER])
        if self.fits == 3 and not marker.exists():
            marker.write_text("died")
            os._exit(1)
        return super().fit(data, warm_start=warm_start, budget=budget, rng=rng)


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """One local Ray for the module. Its workers can import this file (as a user's module) and
    see the marker path, both set before Ray starts them; yields the marker (absent)."""
    marker = tmp_path_factory.mktemp("ray") / "died"
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", MARKER)}
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), saved["PYTHONPATH"] or ""])
    os.environ[MARKER] = str(marker)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield marker
    ray.shutdown()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _run(out: Path, *extra: str) -> None:
    result = CliRunner().invoke(app, ["run", *GRID, *extra, "--out", str(out)])
    assert result.exit_code == 0, result.output


def test_ray_equals_inline(tmp_path, local_ray):
    _run(tmp_path / "inline", "--set", "run.executor=inline")
    _run(tmp_path / "ray", "--set", "run.executor=ray")
    pd.testing.assert_frame_equal(
        autophagy.load_results(tmp_path / "ray"), autophagy.load_results(tmp_path / "inline")
    )


def test_a_killed_worker_is_retried_and_the_run_equals_an_uninterrupted_one(tmp_path, local_ray):
    local_ray.unlink(missing_ok=True)
    model = ["--set", "model.name=test_executor_ray:DieOnce",
             "--set", "loop.policies={mixed: {lambda: 0.5}}"]
    _run(tmp_path / "ray", "--set", "run.executor=ray",
         "--set", "run.max_retries=1", *model)
    assert local_ray.exists()  # the worker did die once
    _run(tmp_path / "inline", "--set", "run.executor=inline",
         "--set", "loop.policies={mixed: {lambda: 0.5}}")
    ray_df = autophagy.load_results(tmp_path / "ray")
    inline_df = autophagy.load_results(tmp_path / "inline")
    pd.testing.assert_frame_equal(ray_df, inline_df)


def test_resume_continues_a_run_started_under_ray(tmp_path, local_ray):
    local_ray.unlink(missing_ok=True)
    model = ["--set", "model.name=test_executor_ray:DieOnce",
             "--set", "loop.policies={mixed: {lambda: 0.5}}"]
    out = tmp_path / "ray"
    result = CliRunner().invoke(
        app, ["run", *GRID, "--set", "run.executor=ray", "--set", "run.max_retries=0", *model,
              "--out", str(out)])
    assert result.exit_code == 1  # its only cell failed: the worker died, no retry allowed
    (cell,) = autophagy.open_run(out).cell_ids()
    assert autophagy.open_run(out).cell(cell).info()["status"] == "failed"
    assert CliRunner().invoke(app, ["resume", str(out), "-q"]).exit_code == 0
    _run(tmp_path / "inline", "--set", "run.executor=inline",
         "--set", "loop.policies={mixed: {lambda: 0.5}}")
    pd.testing.assert_frame_equal(
        autophagy.load_results(out), autophagy.load_results(tmp_path / "inline")
    )


def test_an_unreachable_address_fails_before_the_run(tmp_path):
    out = tmp_path / "r"
    result = CliRunner().invoke(
        app, ["run", *GRID, "--set", "run.executor=ray", "--set", "run.address=127.0.0.1:9",
              "--out", str(out)])
    assert result.exit_code == 2
    assert "run.address: cannot reach a Ray cluster at '127.0.0.1:9'" in result.output
    assert not out.exists()
