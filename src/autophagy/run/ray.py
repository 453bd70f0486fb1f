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
from collections.abc import Callable
from typing import Any

from autophagy.config import Config, ConfigError
from autophagy.errors import ClusterError, WriteError
from autophagy.run.executors import drain, record_failure, worker
from autophagy.run.ray_cluster import check_address

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


def _explicit(address: str | None) -> bool:
    """Whether ``address`` is a head's host:port (not empty, ``auto`` or Ray Client's)."""
    return bool(address) and address != "auto" and not address.startswith("ray://")


def check_ray(config: Config) -> None:
    """Ray is importable and ``run.address`` (when host:port) is a Ray head that lets us in,
    checked within seconds (:func:`autophagy.run.ray_cluster.check_address`)."""
    _ray()
    if _explicit(config.run.address):
        check_address(config.run.address)


def _connect(config: Config, n_cells: int) -> bool:
    """Connect to (or start) Ray; returns whether this call started it (and so shuts it down).

    A cluster that cannot be reached raises :class:`ClusterError` (never Ray's
    ``ConnectionError``, an ``OSError`` that reads as a full disk)."""
    ray = _ray()
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    address = config.run.address
    if not address:
        cpus = config.run.workers or os.cpu_count() or 1
        ray.init(num_cpus=min(cpus, max(1, n_cells)), **options)
        return True
    if _explicit(address) and check_address(address):
        _send_token()
    try:
        ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, TimeoutError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ClusterError(
            f"run.address: could not connect to the Ray cluster at {address!r} ({first}); "
            "check that 'ray status --address ADDRESS' works from this machine"
        ) from None
    return True


def _send_token() -> None:
    """Send this machine's auth token with ``ray.init`` (what Ray does for ``address="auto"``):
    the head on this machine was started with it."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
        return
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without this helper reads the mode from the environment
        os.environ["RAY_AUTH_MODE"] = "token"
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


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
                    except WriteError:  # a full disk or a read-only folder: stop the run
                        raise  # (Ray re-raises a task's error as an instance of its cause)
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
