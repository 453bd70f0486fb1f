"""Cells as Ray tasks, for grids that outgrow one machine.

Why it is this small: a cell is already an independent unit that rebuilds its dataset and model
from the config and writes only to its own folder, resuming from its last checkpoint. So a Ray
task is just "run (or resume) this cell into the run directory", which must be on storage every
node sees (a shared filesystem). A worker that dies mid-cell is retried by Ray
(``run.max_retries``) and the retry resumes from the cell's checkpoint, so the run equals an
uninterrupted one, as resume does on one machine.

Ray is an optional extra: ``pip install -e ".[ray]"``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

from autophagy.config import Config, ConfigError
from autophagy.run.executors import drain, record_failure, worker

Event = dict[str, Any]
POLL_SECONDS = 0.2



def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "run.executor: 'ray' needs Ray, which is not installed; pip install -e \".[ray]\" "
            "(or pip install ray), or use run.executor=processes"
        ) from None
    return ray


def check_ray(config: Config) -> None:
    """Ray is importable and ``run.address`` (when given as host:port) accepts connections."""
    _ray()
    address = config.run.address
    if not address or address == "auto" or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=3):
            pass
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"run.address: cannot reach a Ray cluster at {address!r} ({err}); start one with "
            "'ray start --head' and give its address, or leave run.address empty for a local Ray"
        ) from None


def _connect(config: Config, n_cells: int) -> bool:
    """Connect to (or start) Ray; returns whether this call started it (and so shuts it down)."""
    ray = _ray()
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if config.run.address:
        ray.init(address=config.run.address, **options)
    else:
        cpus = config.run.workers or os.cpu_count() or 1
        ray.init(num_cpus=min(cpus, max(1, n_cells)), **options)
    return True


def _cell_task(config_json: str, specs: list[Any], root: str, queue: Any) -> dict[str, str]:
    """A batch of cells on a Ray worker: as many torch/BLAS threads as the CPUs it reserved."""
    config = Config.model_validate_json(config_json)

    def emit(event: Event) -> None:
        try:
            queue.put_nowait(event)
        except Exception:  # progress is best effort; the store is the record
            pass

    return worker(config_json, specs, root, emit, threads=max(1, int(config.run.num_cpus)))


class RayExecutor:
    """Each batch of cells as a Ray task, on a local Ray or the cluster at ``run.address``."""

    def __init__(self, config: Config, n_batches: int):
        self.n_batches = n_batches

    def run(self, config: Config, batches: list[list[Any]], store: Any,
            emit: Callable[[Event], None]) -> dict[str, str]:
        ray = _ray()
        from ray.util.queue import Queue

        started = _connect(config, len(batches))
        queue = Queue()
        task = ray.remote(_cell_task).options(
            num_cpus=config.run.num_cpus,
            num_gpus=config.run.num_gpus,
            max_retries=config.run.max_retries,
            retry_exceptions=False,
        )
        payload = config.model_dump_json(by_alias=True)
        refs = {task.remote(payload, batch, str(store.root), queue): batch for batch in batches}
        statuses: dict[str, str] = {}
        try:
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=POLL_SECONDS)
                drain(queue.get_nowait, emit)
                for ref in done:
                    try:
                        statuses.update(ray.get(ref))
                    except Exception as err:  # retries exhausted: record it, keep the others
                        message = f"ray: {type(err).__name__}: {str(err).splitlines()[0]}"
                        record_failure(store, refs[ref], message, emit, statuses)
            drain(queue.get_nowait, emit)
        except BaseException:
            for ref in refs:  # Ctrl-C: stop at once; checkpoints make the work resumable
                ray.cancel(ref, force=True)
            raise
        finally:
            ray.kill(queue.actor)
            if started:
                ray.shutdown()
        return statuses
