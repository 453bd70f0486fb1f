"""The mitigation presets from the command line: they validate, sweep, stop bad input in one line
before anything runs, and run end to end."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from autophagy import load_results
from autophagy.cli import app
from autophagy.config import load_config
from autophagy.run.grid import expand_grid

PRESETS = ["tail-verified", "tail-corrected", "tail-subsample", "gaussian-mitigations"]


def one_column(x, real):
    return x[:, :1]


@pytest.mark.parametrize("preset", PRESETS)
def test_each_preset_validates_and_expands(preset):
    cells = expand_grid(load_config(preset=preset))
    assert len(cells) >= 4


def test_false_accept_sweeps_from_the_command_line():
    config = load_config(preset="tail-verified",
                         overrides=["loop.policies.verified.false_accept=[0,0.1,0.3]"])
    tags = sorted({s.cell_id.rsplit("-seed", 1)[0] for s in expand_grid(config)
                   if s.cell_id.startswith("verified")})
    assert tags == [f"verified-fa{fa}-fr0-thr0.5-q0.05-laminf" for fa in ("0", "0.1", "0.3")]


BASE = ["--set", "loop.generations=1", "--set", "run.executor=inline", "--set", "seed=[0]"]


@pytest.mark.parametrize("preset, override, field", [
    ("tail-corrected", "loop.policies.self_correcting.correction=test_mitigation_presets:"
     "one_column", "loop.policies.self_correcting.correction: correction "
     "'test_mitigation_presets:one_column' must return samples of the shape it is given"),
    ("tail-verified", "loop.policies.verified.verifier=test_mitigation_presets:one_column",
     "must return one boolean per sample"),
    ("tail-verified", "loop.policies.verified.false_reject=2", "false_reject must be a number"),
    ("tail-verified", "data.name=moons", "verifier 'oracle' needs a dataset that knows its "
     "truth"),
])
def test_bad_mitigation_input_stops_before_anything_runs_in_one_line(tmp_path, preset, override,
                                                                     field):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--preset", preset, *BASE, "--set", override,
                                      "--out", str(out)])
    assert result.exit_code == 2, result.output
    line = " ".join(result.output.split())
    assert field in line, line
    assert not out.exists()


def test_tail_subsample_runs_end_to_end(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--preset", "tail-subsample", *BASE,
                                      "--set", "loop.policies={accumulate_subsample: {}}",
                                      "--set", "eval.n_samples=200", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    df = load_results(out)
    assert set(df.policy) == {"accumulate_subsample"}
    covered = df[df.metric == "modes_covered"].value.to_numpy()
    assert np.all((covered >= 1) & (covered <= 10))
