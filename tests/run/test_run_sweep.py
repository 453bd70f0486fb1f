"""Sweeps over any config field: validation, the grid they make, and cells that really run with
their own value (checked against the Gaussian closed form each cell's n implies)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

import autophagy
from autophagy.cli import app
from autophagy.config import ConfigError, load_config, validate
from autophagy.run.grid import expand_grid


@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        ({"data.n_trian": [10]}, "sweep.data.n_trian: unknown field"),
        ({"data.n_train": []}, "sweep.data.n_train: needs a non-empty list of values"),
        ({"data.n_train": [1]}, "sweep.data.n_train: Input should be greater than or equal to 2"),
        ({"seed": [0, 1]}, "sweep.seed: cannot be swept here; list seeds in seed: [...]"),
        ({"loop.policies.mixed.lambda": [0]}, "sweep.loop.policies.mixed.lambda: cannot be"),
    ],
)
def test_bad_sweeps_fail_in_one_line_naming_the_field(sweep, message):
    with pytest.raises(ConfigError, match=f"^{message}".replace("[", r"\[").replace("]", r"\]")):
        validate({"sweep": sweep})


def test_the_sweep_flag_needs_a_list():
    with pytest.raises(ConfigError, match=r"^--sweep: 'data.n_train' needs a list of values"):
        load_config(preset="toy-gmm", sweeps=["data.n_train=100"])


def test_grid_is_policies_times_sweeps_times_seeds_with_named_values():
    config = validate({
        "seed": [0, 1],
        "loop": {"policies": {"mixed": {"lambda": [0, 1]}, "fully_synthetic": {}}},
        "sweep": {"data.n_train": [100, 250], "model.options.n_components": [2, 8]},
    })
    cells = expand_grid(config)
    assert len(cells) == 3 * 4 * 2
    assert cells[0].cell_id == "mixed-lam0-n_train100-n_components2-seed0"
    assert cells[0].label == "mixed λ=0, n_train=100, n_components=2"
    own = cells[-1].config(config)
    assert (own.data.n_train, own.model.options["n_components"], own.sweep) == (250, 8, {})


def test_a_swept_unknown_model_option_stops_before_the_run(tmp_path):
    result = CliRunner().invoke(app, [
        "run", "--preset", "toy-gmm", "--sweep", "model.options.n_comp=[2,4]",
        "--out", str(tmp_path / "r"),
    ])
    assert result.exit_code == 2
    assert "model.options: unknown option 'n_comp'" in result.output
    assert not (tmp_path / "r").exists()


def test_each_swept_cell_runs_with_its_own_value(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "run", "--preset", "gaussian-theory", "--set", "seed=[0]", "--set", "loop.generations=3",
        "--set", "loop.policies={fully_synthetic: {}}", "--set", "run.executor=inline",
        "--set", "eval.metrics=[cov_trace_ratio]", "--set", "eval.verdict_metric=cov_trace_ratio",
        "--sweep", "data.n_train=[10,1000]", "--out", str(out), "-q",
    ])
    assert result.exit_code == 0, result.output
    df = autophagy.load_results(out)
    assert sorted(set(df["data.n_train"])) == [10, 1000]
    run = autophagy.open_run(out)
    for n in (10, 1000):
        (cell,) = set(df.loc[df["data.n_train"] == n, "cell"])
        assert len(run.cell(cell).info()) and cell.endswith(f"n_train{n}-seed0")
        theory = run.cell(cell).theory()
        expected = theory[theory.metric == "cov_trace_ratio"].sort_values("generation")
        # fully synthetic biased MLE: E tr(Sigma_t) / tr(Sigma_0) = ((n - 1) / n)^t
        np.testing.assert_allclose(expected.value, ((n - 1) / n) ** np.arange(4), rtol=1e-12)
