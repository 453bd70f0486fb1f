"""Executors: where the batches of cells run. One protocol, one shared worker.

Why this is small: a batch of cells is an independent unit that rebuilds its datasets and models
from the config and writes only to its own folders (:func:`autophagy.run.cells.run_batch`). An
executor only decides *where* each batch runs and forwards progress events; failure recording,
thread limits and event draining are shared here. A Slurm or Dask executor is one more class
with a ``run`` method and one :data:`EXECUTORS` registration (and a ``run.executor`` value).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from multiprocessing.managers import SyncManager
from typing import Any, Protocol

from autophagy.config import Config
from autophagy.errors import WriteError
from autophagy.registry import Registry
from autophagy.run.cells import run_batch
from autophagy.run.grid import CellSpec
from autophagy.store import RunStore
from autophagy.threads import pinned_threads, share

Event = dict[str, Any]
Emit = Callable[[Event], None]
POLL_SECONDS = 0.1


class Executor(Protocol):
    """Runs batches of cells into a run directory; returns {cell id: status}.

    A batch that raises (a worker died, retries exhausted) is recorded with
    :func:`record_failure` and the others go on; Ctrl-C stops every batch at once (every file is
    written atomically, so the run resumes from the last checkpoints)."""

    def run(self, config: Config, batches: list[list[CellSpec]], store: RunStore,
            emit: Emit) -> dict[str, str]: ...


def limit_threads(threads: int = 1) -> None:
    """``threads`` BLAS/torch threads in this process: together the workers fill the cores
    (one each when there are as many workers as cores)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def exit_with_parent(poll: float = 0.5) -> None:
    """End this worker process when the process that started it dies.

    Why: after a ``kill -9`` of ``autophagy run`` its workers went on writing their cells for
    minutes, while the run's lock (:mod:`autophagy.store.lock`), held by the dead parent, was
    already free: a ``resume`` then ran the same cells beside them. A daemon thread watches the
    parent pid (a reparented process sees another) and exits at once, as a kill would; every
    write is atomic, so this is as safe as the kill itself.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def worker(config_json: str, specs: list[CellSpec], root: str, emit: Emit,
           threads: int | None = None) -> dict[str, str]:
    """One batch in a worker (a process or a Ray task): the config comes as JSON (it crosses a
    process boundary), the store is reopened from its path."""
    if threads is not None:
        limit_threads(threads)
    config = Config.model_validate_json(config_json)
    store = RunStore(root, keep=config.run.checkpoints)
    return run_batch(config, specs, store, best_effort(emit))


def best_effort(emit: Emit) -> Emit:
    """``emit`` that never raises: progress is best effort, the store is the record. Why: when
    the parent dies its queue's manager goes too, and a worker's next event would otherwise
    fail its cell as ``failed`` in the instant before the worker itself exits."""

    def safe(event: Event) -> None:
        try:
            emit(event)
        except Exception:
            pass

    return safe


def record_failure(store: RunStore, batch: Iterable[CellSpec], message: str, emit: Emit,
                   statuses: dict[str, str]) -> None:
    """A batch whose worker failed: each of its cells marked ``failed`` with ``message``."""
    for spec in batch:
        store.cell(spec.cell_id).set_status("failed", message)
        statuses[spec.cell_id] = "failed"
        emit({"cell": spec.cell_id, "done": "failed", "message": message})


def drain(get_nowait: Callable[[], Event], emit: Emit) -> None:
    """Forward every queued progress event (best effort: the store is the record)."""
    while True:
        try:
            event = get_nowait()
        except Exception:  # the queue's own Empty, whatever its kind
            return
        emit(event)


class InlineExecutor:
    """Every batch in this process, one after another (notebooks, debugging, one core).

    Each batch trains with the threads a worker process of the same run would get
    (:func:`autophagy.threads.share`: ``cores // workers``, one each when the batches fill the
    cores), and the caller's thread settings come back when the run ends (:attr:`threads` None
    leaves them alone, the old behaviour)."""

    def __init__(self, config: Config | None = None, n_batches: int = 1):
        workers = config.run.workers if config is not None else None
        self.threads: int | None = share(n_batches, workers)

    def run(self, config: Config, batches: list[list[CellSpec]], store: RunStore,
            emit: Emit) -> dict[str, str]:
        statuses: dict[str, str] = {}
        with pinned_threads(self.threads):
            for batch in batches:
                statuses.update(run_batch(config, batch, store, emit))
        return statuses


class ProcessExecutor:
    """Batches in ``workers`` spawned processes, each with its share of the cores."""

    def __init__(self, config: Config, n_batches: int):
        self.workers = min(config.run.workers or os.cpu_count() or 1, max(1, n_batches))

    def run(self, config: Config, batches: list[list[CellSpec]], store: RunStore,
            emit: Emit) -> dict[str, str]:
        ctx = get_context("spawn")  # fork is unsafe once torch or BLAS threads exist
        manager = SyncManager(ctx=ctx)  # ctx.Manager(), ending with this process too
        manager.start(exit_with_parent)
        queue = manager.Queue()
        statuses: dict[str, str] = {}
        threads = share(self.workers)
        payload = config.model_dump_json(by_alias=True)
        try:
            pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=exit_with_parent)
            try:
                futures = {pool.submit(worker, payload, b, str(store.root), queue.put, threads): b
                           for b in batches}
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, timeout=POLL_SECONDS,
                                         return_when=FIRST_COMPLETED)
                    drain(queue.get_nowait, emit)
                    for fut in done:
                        try:
                            statuses.update(fut.result())
                        except WriteError:  # a full disk or a read-only folder: stop the run
                            raise
                        except Exception as err:  # a worker died: record it, keep the others
                            record_failure(store, futures[fut], f"worker: {err}", emit, statuses)
                drain(queue.get_nowait, emit)
            except BaseException:
                _stop_now(pool)  # Ctrl-C: stop at once; checkpoints make the work resumable
                raise
            pool.shutdown(wait=True)
        finally:
            manager.shutdown()
        return statuses


def _stop_now(pool: ProcessPoolExecutor) -> None:
    """Kill the workers and drop queued cells. ``shutdown`` alone would wait for every running
    cell to finish its generations; a kill is safe because every file is written atomically."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        proc.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


EXECUTORS: Registry[Any] = Registry("executor")
"""Executor classes by ``run.executor``; each is built from (config, number of batches)."""
EXECUTORS.register("inline", InlineExecutor)
EXECUTORS.register("processes", ProcessExecutor)
EXECUTORS.register("ray", "autophagy.run.ray:RayExecutor",
                   description="batches as Ray tasks, on a local Ray or a cluster (run.address)")


def make_executor(config: Config, n_batches: int) -> Executor:
    """The executor ``run.executor`` names; one worker process is the same as inline."""
    executor = EXECUTORS[config.run.executor](config, n_batches)
    if isinstance(executor, ProcessExecutor) and executor.workers == 1:
        return InlineExecutor(config, n_batches)
    return executor
