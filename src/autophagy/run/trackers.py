"""Experiment trackers: each cell's metrics sent to TensorBoard or MLflow as generations finish.

Why optional and this thin: the run store is the record (every number, checkpointed, resumable);
a tracker is a second view of it in a tool a researcher already has open. So a tracker only
receives what the store has just saved, one generation of rows at a time, with the cell's
coordinates (policy, its parameters, swept fields, seed) as tags and params; nothing reads it
back. Each is an optional extra, off by default (``run.tracker: none``):

- ``tensorboard`` (``pip install -e ".[tensorboard]"``): one event-file folder per cell,
  ``<run dir>/tensorboard/<cell id>`` unless ``run.tracker_uri`` names another folder; one
  scalar per metric, its step the generation. ``tensorboard --logdir <run dir>/tensorboard``.
- ``mlflow`` (``pip install -e ".[mlflow]"``, the ``mlflow-skinny`` client): one MLflow run per
  cell in the experiment named by the config's ``name``, at ``run.tracker_uri`` (any tracking
  URI: a server's ``http://...``, ``sqlite:///...``); by default the file store
  ``file:<run dir>/mlruns``, which needs no database. MLflow 3 keeps the file store behind
  ``MLFLOW_ALLOW_FILE_STORE``; it is set for ``file:`` URIs only.

A resumed cell goes on in the same MLflow run and the same TensorBoard folder, and sends only
the generations it computes now: each generation reaches the tracker once, after its checkpoint
is written. The MLflow run's id is kept in the cell's own ``cell.json`` (written atomically,
in the manifest), so a run directory moved or copied elsewhere still continues its runs.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path
from typing import Any

from autophagy.config import Config, ConfigError
from autophagy.loop import Tracker  # noqa: F401  (the protocol every tracker here implements)

INSTALL = {
    "tensorboard": ("tensorboard", "TensorBoard", 'pip install -e ".[tensorboard]"',
                    "pip install tensorboard"),
    "mlflow": ("mlflow", "MLflow", 'pip install -e ".[mlflow]"', "pip install mlflow-skinny"),
}
"""Tracker name: (module it needs, what it is called, the extra, the plain pip command)."""

CELL_TAG, RUN_DIR_TAG = "autophagy.cell", "autophagy.run_dir"


def check_tracker(config: Config) -> None:
    """The tracker ``run.tracker`` names is installed (checked without importing it)."""
    name = config.run.tracker
    if name == "none":
        return
    module, title, extra, plain = INSTALL[name]
    if importlib.util.find_spec(module) is None:
        raise ConfigError(
            f"run.tracker: {name!r} needs {title}, which is not installed; {extra} "
            f"(or {plain}), or set run.tracker=none"
        )


def tracker_uri(config: Config, run_root: Path) -> str:
    """Where the tracker writes: ``run.tracker_uri``, or a folder inside the run directory."""
    if config.run.tracker_uri:
        return config.run.tracker_uri
    root = Path(run_root).resolve()
    if config.run.tracker == "mlflow":
        return (root / "mlruns").as_uri()
    return str(root / "tensorboard")


def prepare_tracker(config: Config, run_root: Path) -> None:
    """Once per run, before the cells start: what the cells' trackers share (MLflow's
    experiment, which two worker processes must not both create)."""
    check_tracker(config)
    if config.run.tracker == "mlflow":
        _mlflow_experiment(_mlflow_client(tracker_uri(config, run_root)), config.name)


def make_tracker(
    config: Config, run_root: Path, cell: dict[str, Any], *, run_id: str | None = None
) -> Tracker | None:
    """The tracker of one cell (``None`` for ``run.tracker: none``); ``cell`` is the cell's
    coordinates as the store records them (:meth:`autophagy.run.grid.CellSpec.info`), and
    ``run_id`` the MLflow run the cell's own files name (``cell.json``), to continue it."""
    if config.run.tracker == "none":
        return None
    check_tracker(config)
    uri = tracker_uri(config, run_root)
    if config.run.tracker == "tensorboard":
        return TensorBoardTracker(Path(uri) / cell["cell"], cell)
    own = not config.run.tracker_uri  # the file store inside the run directory: ours alone
    return MLflowTracker(uri, config.name, cell, run_dir=str(Path(run_root).resolve()),
                         run_id=run_id, own_store=own)


def coordinates(cell: dict[str, Any]) -> dict[str, str]:
    """A cell's coordinates flattened to strings: policy, each parameter, each swept field,
    seed (the params of an MLflow run, the text of a TensorBoard run)."""
    out = {"cell": cell["cell"], "policy": cell["policy"]}
    out.update({k: _text(v) for k, v in (cell.get("params") or {}).items()})
    out.update({k: _text(v) for k, v in (cell.get("sweep") or {}).items()})
    out["seed"] = _text(cell["seed"])
    return out


def _text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class TensorBoardTracker:
    """A cell's metrics as TensorBoard scalars (``torch.utils.tensorboard``), step =
    generation; its coordinates as a text summary ``cell``."""

    def __init__(self, logdir: Path, cell: dict[str, Any]):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(logdir))
        table = "\n".join(f"| {k} | {v} |" for k, v in coordinates(cell).items())
        self.writer.add_text("cell", f"| field | value |\n|---|---|\n{table}")
        self.writer.flush()

    def log(self, generation: int, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self.writer.add_scalar(row["metric"], float(row["value"]), generation)
        self.writer.flush()

    def close(self, status: str) -> None:
        self.writer.add_text("status", status)
        self.writer.close()


def _mlflow_client(uri: str) -> Any:
    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _mlflow_experiment(client: Any, name: str) -> str:
    """The id of the experiment ``name``, created if it does not exist."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name)
    except Exception:  # created meanwhile by another process
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


class MLflowTracker:
    """A cell as one MLflow run (named by the cell id): its coordinates as params and tags,
    each metric logged with step = generation. A resumed cell continues its run."""

    def __init__(
        self,
        uri: str,
        experiment: str,
        cell: dict[str, Any],
        *,
        run_dir: str,
        run_id: str | None = None,
        own_store: bool = False,
    ):
        from mlflow.entities import Param

        self.client = _mlflow_client(uri)
        experiment_id = _mlflow_experiment(self.client, experiment)
        found = self._find(experiment_id, cell["cell"], run_dir, run_id, own_store)
        if found is not None:
            self.run_id = found
            self.client.update_run(self.run_id, status="RUNNING")
            return
        tags = {CELL_TAG: cell["cell"], RUN_DIR_TAG: run_dir, "label": cell.get("label", "")}
        run = self.client.create_run(experiment_id, run_name=cell["cell"], tags=tags)
        self.run_id = run.info.run_id
        params = [Param(k, v) for k, v in coordinates(cell).items() if k != "cell"]
        self.client.log_batch(self.run_id, params=params)

    def _find(
        self, experiment_id: str, cell: str, run_dir: str, run_id: str | None, own_store: bool
    ) -> str | None:
        """The cell's earlier run: the id its ``cell.json`` keeps (still there after the run
        directory moved), else, for runs written before ids were kept, the run tagged with the
        cell and this directory (any directory in the run's own file store)."""
        if run_id is not None:
            try:
                run = self.client.get_run(run_id)
            except Exception:  # not in this store (run.tracker_uri changed): a new run
                run = None
            if run is not None and run.info.experiment_id == experiment_id:
                return run_id
        runs = self.client.search_runs(
            [experiment_id], filter_string=f"tags.`{CELL_TAG}` = '{cell}'"
        )
        runs = [r for r in runs if own_store or r.data.tags.get(RUN_DIR_TAG) == run_dir]
        return runs[0].info.run_id if runs else None

    def log(self, generation: int, rows: list[dict[str, Any]]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(r["metric"], float(r["value"]), now, generation) for r in rows]
        self.client.log_batch(self.run_id, metrics=metrics)

    def close(self, status: str) -> None:
        self.client.set_terminated(self.run_id, "FINISHED" if status == "done" else "FAILED")
