"""An MLflow-tracked run directory moved (or copied) elsewhere and resumed continues the same
MLflow runs, one per cell, read back with mlflow's own client: the run id lives in each cell's
``cell.json``, not in the absolute path the run was first written at."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from autophagy.config import load_config
from autophagy.run.cells import TRACKER_RUN
from autophagy.run.checks import check_config
from autophagy.run.experiment import run_experiment
from autophagy.store import RunStore

pytest.importorskip("mlflow")
TINY = ["seed=[0, 1]", "data.n_train=100", "data.n_test=200", "loop.generations=3",
        "loop.policies={mixed: {lambda: [0.5]}}", "eval.n_samples=100",
        "eval.metrics=[w2, energy]", "model.options.n_components=2", "run.executor=inline",
        "run.tracker=mlflow"]


def _interrupted(root) -> RunStore:
    """A run stopped when its second cell starts generation 2 (as after Ctrl-C): one cell
    done, one halfway."""

    def stop(event):
        if event.get("generation") == 2 and event["cell"].endswith("seed1"):
            raise KeyboardInterrupt

    config = load_config(preset="toy-gmm", overrides=TINY)
    check_config(config)
    store = RunStore.create(root, config.to_yaml(), keep=config.run.checkpoints)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, store, stop)
    return store


def _mlflow(uri: str) -> tuple[list, pd.DataFrame]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("toy-gmm").experiment_id])
    rows = [(run.info.run_name, m.step, key, m.value)
            for run in runs for key in run.data.metrics
            for m in client.get_metric_history(run.info.run_id, key)]
    return runs, pd.DataFrame(rows, columns=["cell", "generation", "metric", "value"])


@pytest.mark.parametrize("how", ["move", "copy"])
def test_a_moved_or_copied_run_resumes_its_mlflow_runs(tmp_path, how):
    first = _interrupted(tmp_path / "first")
    kept = {c: first.cell(c).info()[TRACKER_RUN] for c in first.cell_ids()}
    assert len(set(kept.values())) == 2
    (shutil.move if how == "move" else shutil.copytree)(first.root, tmp_path / "elsewhere")
    store = RunStore.open(tmp_path / "elsewhere")
    run_experiment(store.config(), store)
    runs, tracked = _mlflow((store.root / "mlruns").as_uri())
    assert len(runs) == 2  # no new runs beside the old ones
    assert {r.info.run_name: r.info.run_id for r in runs} == kept
    assert {r.info.status for r in runs} == {"FINISHED"}
    key = ["cell", "generation", "metric"]
    table = store.metrics()[[*key, "value"]].sort_values(key).reset_index(drop=True)
    tracked = tracked.sort_values(key).reset_index(drop=True)  # each generation once, whole
    pd.testing.assert_frame_equal(tracked, table, check_dtype=False)
    for cell, run_id in kept.items():  # the id stays in the cell's own, manifested file
        assert json.loads((store.root / "cells" / cell / "cell.json").read_text())[
            TRACKER_RUN] == run_id
