"""Experiment trackers against the real libraries writing to a local folder: what TensorBoard's
event files and MLflow's runs hold equals the run's metrics table, a resumed cell sends each
generation once, and a tracker that is not installed stops the run before it starts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from autophagy.cli import app
from autophagy.config import ConfigError, load_config
from autophagy.run.checks import check_config
from autophagy.run.experiment import run_experiment
from autophagy.store import RunStore

GENERATIONS = 3
TINY = [
    "seed=[0, 1]",
    "data.n_train=100",
    "data.n_test=200",
    f"loop.generations={GENERATIONS}",
    "loop.policies={mixed: {lambda: [0.5]}}",
    "eval.n_samples=100",
    "eval.metrics=[w2, energy, nll]",
    "model.options.n_components=2",
    "run.executor=inline",
]


def _run(tmp_path: Path, *overrides: str, emit=lambda e: None) -> tuple[RunStore, pd.DataFrame]:
    config = load_config(preset="toy-gmm", overrides=[*TINY, *overrides])
    check_config(config)
    store = RunStore.create(tmp_path / "run", config.to_yaml(), keep=config.run.checkpoints)
    run_experiment(config, store, emit)
    return store, store.metrics()


def _interrupted_then_resumed(tmp_path: Path, tracker: str) -> tuple[RunStore, pd.DataFrame]:
    """Stop the run when the first cell starts generation 2, then resume it (as after Ctrl-C)."""

    def stop(event):
        if event.get("generation") == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, f"run.tracker={tracker}", emit=stop)
    store = RunStore.open(tmp_path / "run")
    run_experiment(store.config(), store)
    return store, store.metrics()


def _tensorboard_scalars(logdir: Path) -> pd.DataFrame:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rows = []
    for folder in sorted(p for p in logdir.iterdir() if p.is_dir()):
        acc = EventAccumulator(str(folder))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            rows += [(folder.name, e.step, tag, e.value) for e in acc.Scalars(tag)]
    return pd.DataFrame(rows, columns=["cell", "generation", "metric", "value"])


def _mlflow_runs(uri: str, experiment: str) -> tuple[list, pd.DataFrame]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    rows = []
    for run in runs:
        for key in run.data.metrics:
            rows += [(run.info.run_name, m.step, key, m.value)
                     for m in client.get_metric_history(run.info.run_id, key)]
    return runs, pd.DataFrame(rows, columns=["cell", "generation", "metric", "value"])


def _same_rows(tracked: pd.DataFrame, table: pd.DataFrame, *, float32: bool) -> None:
    key = ["cell", "generation", "metric"]
    tracked = tracked.sort_values(key).reset_index(drop=True)
    table = table[[*key, "value"]].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(tracked[key], table[key], check_dtype=False)
    expected = table["value"].to_numpy()
    if float32:  # a TensorBoard scalar is a float32
        expected = expected.astype(np.float32)
    np.testing.assert_array_equal(tracked["value"].to_numpy(), expected)


def test_tracker_is_off_by_default_and_writes_nothing(tmp_path):
    store, _ = _run(tmp_path)
    assert store.config().run.tracker == "none"
    assert not (store.root / "tensorboard").exists() and not (store.root / "mlruns").exists()


def test_tensorboard_event_files_hold_the_metrics_table_one_folder_per_cell(tmp_path):
    store, table = _run(tmp_path, "run.tracker=tensorboard")
    scalars = _tensorboard_scalars(store.root / "tensorboard")
    assert sorted(set(scalars.cell)) == ["mixed-lam0.5-seed0", "mixed-lam0.5-seed1"]
    _same_rows(scalars, table, float32=True)


def test_tensorboard_resumed_cell_sends_each_generation_once(tmp_path):
    store, table = _interrupted_then_resumed(tmp_path, "tensorboard")
    scalars = _tensorboard_scalars(store.root / "tensorboard")
    _same_rows(scalars, table, float32=True)


def test_mlflow_runs_hold_the_metrics_table_and_the_cell_coordinates(tmp_path):
    store, table = _run(tmp_path, "run.tracker=mlflow")
    runs, metrics = _mlflow_runs((store.root / "mlruns").as_uri(), "toy-gmm")
    _same_rows(metrics, table, float32=False)
    by_cell = {r.info.run_name: r for r in runs}
    assert sorted(by_cell) == ["mixed-lam0.5-seed0", "mixed-lam0.5-seed1"]
    run = by_cell["mixed-lam0.5-seed1"]
    assert run.data.params == {"policy": "mixed", "lambda": "0.5", "seed": "1"}
    assert run.data.tags["autophagy.cell"] == "mixed-lam0.5-seed1"
    assert run.info.status == "FINISHED"


def test_mlflow_resumed_cell_continues_its_run_and_sends_each_generation_once(tmp_path):
    store, table = _interrupted_then_resumed(tmp_path, "mlflow")
    runs, metrics = _mlflow_runs((store.root / "mlruns").as_uri(), "toy-gmm")
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    _same_rows(metrics, table, float32=False)


def test_mlflow_tracker_uri_and_swept_fields_become_params(tmp_path):
    uri = (tmp_path / "elsewhere").as_uri()
    store, table = _run(tmp_path, "run.tracker=mlflow", f"run.tracker_uri={uri}", "seed=0",
                        "loop.generations=1", "sweep={data.n_train: [60, 80]}")
    runs, metrics = _mlflow_runs(uri, "toy-gmm")
    _same_rows(metrics, table, float32=False)
    assert sorted(r.data.params["data.n_train"] for r in runs) == ["60", "80"]
    assert not (store.root / "mlruns").exists()


@pytest.mark.parametrize(("tracker", "module", "pip"), [
    ("tensorboard", "tensorboard", 'pip install -e ".[tensorboard]"'),
    ("mlflow", "mlflow", 'pip install -e ".[mlflow]"'),
])
def test_tracker_not_installed_is_one_line_naming_the_field_and_pip_before_the_run(
    tmp_path, monkeypatch, tracker, module, pip
):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == module else find_spec(name, *a))
    config = load_config(preset="toy-gmm", overrides=[*TINY, f"run.tracker={tracker}"])
    with pytest.raises(ConfigError, match=r"^run\.tracker: .*pip install"):
        check_config(config)
    out = tmp_path / "run"
    args = ["run", "--preset", "toy-gmm", "--set", f"run.tracker={tracker}", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--quiet"])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert text.startswith("error: run.tracker:") and pip in text and "Traceback" not in text
    assert not out.exists()
