"""The command line: a tiny run end to end, report rebuild, resume, list, and every error path."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from autophagy.cli import app
from autophagy.data import load_dataset
from autophagy.models.registry import build_model
from autophagy.store.manifest import seal

runner = CliRunner()

TINY = [
    "--preset",
    "toy-gmm",
    "--set",
    "data.n_train=120",
    "--set",
    "data.n_test=300",
    "--set",
    "loop.generations=2",
    "--set",
    "seed=[0, 1]",
    "--set",
    "loop.lambda=[0.5]",
    "--set",
    "eval.n_samples=200",
    "--set",
    "eval.metrics=[w2, energy, nll]",
    "--set",
    "model.options.n_components=4",
    "--set",
    "run.executor=inline",
    "--quiet",
]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    result = runner.invoke(app, ["run", *TINY, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_run_writes_config_metrics_checkpoints_figures_and_report(tiny_run):
    out, output = tiny_run
    assert "Verdicts on w2" in output
    assert (out / "config.yaml").exists() and (out / "report.html").exists()
    metrics = pd.read_parquet(out / "metrics.parquet")
    # 2 policies' cells (mixed 0.5, fully_synthetic) x 2 seeds x 3 generations x 3 metrics,
    # + theta_distance and theta_step, which every mixing policy measures
    assert len(metrics) == 2 * 2 * 3 * (3 + 2)
    assert set(metrics.label) == {"mixed λ=0.5", "fully_synthetic"}
    assert np.isfinite(metrics.value).all()
    cells = sorted(p.name for p in (out / "cells").iterdir())
    assert cells == [
        "fully_synthetic-seed0",
        "fully_synthetic-seed1",
        "mixed-lam0.5-seed0",
        "mixed-lam0.5-seed1",
    ]
    ckpts = sorted(p.name for p in (out / "cells" / cells[0] / "checkpoints").iterdir())
    assert ckpts == [f"gen_000{g}.safetensors" for g in range(3)]
    figures = {p.name for p in (out / "figures").iterdir()}
    assert {"w2.png", "energy.png", "nll.png", "samples.png"} <= figures
    html = (out / "report.html").read_text()
    assert "data:image/png;base64" in html and "fully_synthetic" in html


def test_report_rebuilds_every_figure_from_the_run_directory_alone(tiny_run, tmp_path):
    out, _ = tiny_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / "figures")
    (copy / "report.html").unlink()
    result = runner.invoke(app, ["report", str(copy)])
    assert result.exit_code == 0, result.output
    assert (copy / "report.html").exists()
    assert {p.name for p in (copy / "figures").iterdir()} == {
        p.name for p in (out / "figures").iterdir()
    }


def test_resume_continues_a_crashed_run_to_the_same_numbers(tiny_run, tmp_path):
    out, _ = tiny_run
    crashed = tmp_path / "crashed"
    shutil.copytree(out, crashed)
    # simulate a crash after generation 0 of one cell and before any generation of another
    for cell, keep in (("mixed-lam0.5-seed1", 0), ("fully_synthetic-seed0", -1)):
        folder = crashed / "cells" / cell
        for sub in ("checkpoints", "samples"):
            for p in (folder / sub).iterdir():
                if int(p.stem.split("_")[1]) > keep:
                    p.unlink()
        rows = pd.read_parquet(folder / "metrics.parquet")
        rows[rows.generation <= keep].to_parquet(folder / "metrics.parquet")
        info = (folder / "cell.json").read_text().replace('"done"', '"running"')
        (folder / "cell.json").write_text(info)
        seal(folder)  # vouch for the hand edits, which a real crash would not make
    (crashed / "metrics.parquet").unlink()
    seal(crashed)
    result = runner.invoke(app, ["resume", str(crashed), "--quiet"])
    assert result.exit_code == 0, result.output
    key = ["cell", "generation", "metric"]
    before = pd.read_parquet(out / "metrics.parquet").sort_values(key).reset_index(drop=True)
    after = pd.read_parquet(crashed / "metrics.parquet").sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(before, after)


def test_list_shows_every_registry():
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    for word in (
        "eight_gaussians",
        "gmm",
        "fully_synthetic",
        "w2",
        "toy-flow",
        "toy-gmm",
        "gaussian-theory",
    ):
        assert word in result.output


def _bad_file(tmp_path, kind):
    if kind == "nan":
        x = np.ones((50, 2))
        x[3, 1] = np.nan
        np.save(tmp_path / "nan.npy", x)
        return tmp_path / "nan.npy"
    if kind == "shape":
        np.save(tmp_path / "cube.npy", np.ones((10, 4, 4, 2)))
        return tmp_path / "cube.npy"
    return tmp_path / "missing.npy"


ERRORS = [
    (["--set", "data.name=moon"], "data.name", "moons"),
    (["--set", "model.name=vae"], "model.name", "gmm"),
    (["--set", "loop.policy=[mixed, synthetic]"], "loop.policy", "fully_synthetic"),
    (["--set", "eval.metrics=[w3]"], "eval.metrics", "w2"),
    (["--set", "loop.lambda=[0.5, -1]"], "loop.lambda", ">= 0"),
    (["--set", "loop.generations=2.5"], "loop.generations", "integer"),
    (["--set", "loop.generations=ten"], "loop.generations", "integer"),
    (["--set", "loop.generatons=3"], "loop.generatons", "unknown field"),
    (["--set", "model.options.n_comps=3"], "model.options", "n_components"),
    (["--preset", "nope"], "--preset", "toy-flow"),
    (["--config", "missing.yaml"], "--config", "no such file"),
    (["--set", "data.name=file", "--set", "data.path=FILE:missing"], "data.path", "no such file"),
    (["--set", "data.name=file", "--set", "data.path=FILE:nan"], "data.path", "NaN/inf"),
    (["--set", "data.name=file", "--set", "data.path=FILE:shape"], "data.path", "shape"),
]


@pytest.mark.parametrize(("args", "field", "hint"), ERRORS, ids=[e[1] + "-" + e[2] for e in ERRORS])
def test_bad_input_is_one_clear_line_exit_2_and_no_run_directory(tmp_path, args, field, hint):
    args = [
        f"data.path={_bad_file(tmp_path, a.split(':', 1)[1])}" if "=FILE:" in a else a for a in args
    ]
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", "--preset", "toy-gmm", *args, "--out", str(out), "--quiet"])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "Traceback" not in text
    assert text.startswith("error: "), text
    assert field in text and hint in text, text
    assert not out.exists()


def test_out_must_not_be_an_existing_run(tiny_run):
    out, _ = tiny_run
    result = runner.invoke(app, ["run", *TINY, "--out", str(out)])
    assert result.exit_code == 2
    assert "--out" in result.output and "autophagy resume" in " ".join(result.output.split())


def test_report_of_a_folder_that_is_not_a_run_fails_cleanly(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "config.yaml" in result.output


def test_worker_processes_give_the_same_numbers_as_inline(tiny_run, tmp_path):
    out, _ = tiny_run
    args = [a.replace("run.executor=inline", "run.executor=processes") for a in TINY]
    result = runner.invoke(
        app, ["run", *args, "--set", "run.workers=2", "--out", str(tmp_path / "p")]
    )
    assert result.exit_code == 0, result.output
    key = ["cell", "generation", "metric"]
    inline = pd.read_parquet(out / "metrics.parquet").sort_values(key).reset_index(drop=True)
    procs = pd.read_parquet(tmp_path / "p" / "metrics.parquet").sort_values(key)
    pd.testing.assert_frame_equal(inline, procs.reset_index(drop=True))


def test_theory_gaussian_prints_closed_form_beside_simulation():
    result = runner.invoke(
        app,
        ["theory", "gaussian", "--n", "40", "--generations", "4", "--seeds", "400", "--dim", "1"],
    )
    assert result.exit_code == 0, result.output
    # fully synthetic MLE: E Sigma_t / sigma^2 = ((n - 1) / n) ** (t + 1) from the truth
    assert f"{(39 / 40) ** 5:.4g}" in result.output
    assert "inside the 99% interval" in result.output


def test_theory_stability_reports_largest_lambda_and_refuses_bad_constants():
    result = runner.invoke(
        app, ["theory", "stability", "--lambda", "0.2", "--lambda", "0.9", "--eps", "0.5"]
    )
    assert result.exit_code == 0, result.output
    assert "largest stable lambda: 0.6667" in result.output
    assert "no guarantee" in result.output  # 0.9 * 1.5 >= 1
    bad = runner.invoke(app, ["theory", "stability", "--alpha", "0"])
    assert bad.exit_code == 2 and "alpha" in bad.output


def test_inception_features_without_the_file_stop_before_the_run(tmp_path, monkeypatch):
    monkeypatch.delenv("AUTOPHAGY_INCEPTION", raising=False)
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "run",
            "--set",
            "eval.metrics=[fid]",
            "--set",
            "eval.features=inception",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "eval.inception" in text and "AUTOPHAGY_INCEPTION" in text
    assert "inception-2015-12-05.pt" in text
    assert not out.exists()


@pytest.mark.parametrize(
    ("section", "raise_", "message"),
    [
        ("model", lambda: build_model("nope"), "model.name: unknown model 'nope'"),
        ("model", lambda: build_model("gmm", {"n_comp": 3}), "model.options: unknown option"),
        ("model", lambda: build_model("nsf", {"device": "cuda"}) if not torch.cuda.is_available()
         else build_model("nsf", {"device": "tpu"}), "model.options.device: "),
        ("data", lambda: load_dataset("moons", path="x.npy"), "data.path: dataset 'moons'"),
        ("data", lambda: load_dataset("moons", noize=1), "data.options: unknown option 'noize'"),
        ("data", lambda: load_dataset("moons", noise=-1), "data: dataset 'moons': noise must"),
    ],
)
def test_library_errors_become_config_fields_in_one_place(section, raise_, message):
    from autophagy.config import ConfigError, config_field

    with pytest.raises(ConfigError, match=f"^{re.escape(message)}"), config_field(section):
        raise_()
