"""An experiment: the grid of cells a config describes, and the executors that run them.

Every cell (policy x lambda x seed) is independent: it rebuilds its dataset and model from the
config and its own seed, and writes only to its own folder of the run directory. So cells run in
any order, inline or in worker processes, and a crashed run resumes cell by cell.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

from autophagy.config import Config
from autophagy.data import Dataset, load_dataset
from autophagy.loop import resolve_metrics, run_cell
from autophagy.models.registry import build_model
from autophagy.policies import POLICIES, Policy, make_policy
from autophagy.store import RunStore
from autophagy.theory.overlay import gaussian_overlay

FEATURE_METRIC_NAMES = frozenset({"fid", "kid", "precision", "recall", "density", "coverage"})
REAL_POINTS_SAVED = 2000
"""Held-out points kept in the run directory, drawn behind the sample scatter plots."""

Event = dict[str, Any]


@dataclass(frozen=True)
class CellSpec:
    """One cell's coordinates in the grid."""

    policy: str
    seed: int
    lam: float | None = None
    fraction: float | None = None

    def make_policy(self) -> Policy:
        return make_policy(self.policy, lam=self.lam, fraction=self.fraction)

    @property
    def cell_id(self) -> str:
        if self.lam is not None:
            return f"{self.policy}-lam{self.lam:g}-seed{self.seed}"
        if self.fraction is not None:
            return f"{self.policy}-frac{self.fraction:g}-seed{self.seed}"
        return f"{self.policy}-seed{self.seed}"

    @property
    def label(self) -> str:
        return self.make_policy().label

    def info(self) -> dict[str, Any]:
        return {
            "cell": self.cell_id,
            "label": self.label,
            "policy": self.policy,
            "lambda": math.nan if self.lam is None else self.lam,
            "seed": self.seed,
        }


def expand_grid(config: Config) -> list[CellSpec]:
    """Policies x lambdas (for the policies that take one) x seeds, in a stable order."""
    cells = []
    for name in config.loop.policy:
        cls = POLICIES[name][0]
        for seed in config.seed:
            if cls.uses_lambda:
                lams = config.loop.lam if name == "mixed" else [1.0]
                cells += [CellSpec(name, seed, lam=float(lam)) for lam in lams]
            elif name == "fresh_real":
                cells.append(CellSpec(name, seed, fraction=config.loop.fraction))
            else:
                cells.append(CellSpec(name, seed))
    return sorted(
        set(cells), key=lambda c: (config.loop.policy.index(c.policy), c.lam or 0, c.seed)
    )


def build_dataset(config: Config, seed: int) -> Dataset:
    d = config.data
    n_pool = d.n_pool
    if "fresh_real" in config.loop.policy and n_pool == 0:
        n_pool = 20 * max(1, math.floor(config.loop.fraction * d.n_train))
    extra = {"path": d.path} if d.path is not None else {}
    return load_dataset(
        d.name,
        n_train=d.n_train,
        n_test=d.n_test,
        n_pool=n_pool,
        seed=d.seed if d.seed is not None else seed,
        **extra,
        **d.options,
    )


def check_config(config: Config) -> None:
    """Everything that can fail before training, checked before a run directory exists:
    the dataset loads, the model builds, the policies fit the data, the metrics exist."""
    cells = expand_grid(config)
    try:
        dataset = build_dataset(config, cells[0].seed)
    except ValueError as err:
        raise ValueError(_name_data_field(str(err))) from None
    build_model(config.model.name, config.model.options)
    for spec in cells:
        spec.make_policy().check(len(dataset.train), dataset.pool)
    metrics = resolve_metrics(config.eval.metrics)
    if any(m.name in FEATURE_METRIC_NAMES for m in metrics):
        from autophagy.metrics.feature_metrics import make_extractor

        make_extractor(config.eval.features, dataset, config.eval.inception, check_only=True)
    if config.eval.verdict_metric not in (config.eval.metrics or [config.eval.verdict_metric]):
        raise ValueError(
            f"eval.verdict_metric: {config.eval.verdict_metric!r} is not among eval.metrics"
        )


def _name_data_field(message: str) -> str:
    """Dataset errors name their field (``data.name``, ``data.options``) for the CLI's one line."""
    if message.startswith("data"):
        return message
    if message.startswith("unknown dataset"):
        return f"data.name: {message}"
    if message.startswith("unknown option"):
        return f"data.options: {message}"
    return f"data: {message}"


def run_cell_from_config(
    config: Config, spec: CellSpec, store: RunStore, emit: Callable[[Event], None]
) -> str:
    """Build and run (or resume) one cell; returns its final status."""
    cell = store.cell(spec.cell_id)
    if cell.info().get("status") == "done":
        emit({"cell": spec.cell_id, "done": "done"})
        return "done"
    cell.write_info(**spec.info())
    dataset = build_dataset(config, spec.seed)
    model = build_model(config.model.name, config.model.options)

    def progress(**event: Any) -> None:
        emit({"cell": spec.cell_id, **event})

    result = run_cell(
        model,
        dataset,
        spec.make_policy(),
        config.loop.generations,
        seed=spec.seed,
        metrics=resolve_metrics(config.eval.metrics),
        warm_start=config.loop.warm_start,
        temperature=config.loop.temperature,
        n_eval=config.eval.n_samples,
        budget=config.model.budget,
        initial_budget=config.model.initial_budget,
        store=cell,
        progress=progress,
        features=config.eval.features,
        inception=config.eval.inception,
    )
    overlay = gaussian_overlay(
        model,
        spec.make_policy(),
        n=len(dataset.train),
        generations=config.loop.generations,
        reference=result.reference,
        temperature=config.loop.temperature,
    )
    if overlay is not None:
        cell.save_theory(overlay)
    emit({"cell": spec.cell_id, "done": result.status, "message": result.message})
    return result.status


def _prepare_features(config: Config, cells: list[CellSpec]) -> None:
    """Train (or load) each dataset's classifier once, here, before the workers start: otherwise
    every worker would train the same classifier at the same time on a cache miss."""
    names = {m.name for m in resolve_metrics(config.eval.metrics)}
    if not names & (FEATURE_METRIC_NAMES | {"class_kl", "classes_covered"}):
        return
    from autophagy.metrics.feature_metrics import make_extractor

    seeds = {config.data.seed} if config.data.seed is not None else {c.seed for c in cells}
    for seed in sorted(seeds):
        dataset = build_dataset(config, seed)
        if dataset.kind == "images" and "train_labels" in dataset.params:
            make_extractor("classifier", dataset)


def _limit_threads() -> None:
    """One BLAS/torch thread per worker process: the workers already fill the cores."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    os.environ["OMP_NUM_THREADS"] = "1"


def _worker(config_json: str, spec: CellSpec, root: str, queue) -> str:
    config = Config.model_validate_json(config_json)
    store = RunStore(root, keep=config.run.checkpoints)
    return run_cell_from_config(config, spec, store, queue.put)


def run_experiment(
    config: Config, store: RunStore, emit: Callable[[Event], None] = lambda e: None
) -> dict[str, str]:
    """Run every cell of ``config`` into ``store``; returns {cell id: status}."""
    cells = expand_grid(config)
    for spec in cells:
        cell = store.cell(spec.cell_id)
        if not cell.info():
            cell.write_info(**spec.info(), status="pending")
    _prepare_features(config, cells)
    if store.real_points() is None:
        dataset = build_dataset(config, cells[0].seed)
        if dataset.kind == "points":
            store.save_real(dataset.test[:REAL_POINTS_SAVED])
    workers = config.run.workers or os.cpu_count() or 1
    workers = min(workers, len(cells))
    if config.run.executor == "inline" or workers == 1:
        statuses = {s.cell_id: run_cell_from_config(config, s, store, emit) for s in cells}
    else:
        statuses = _run_processes(config, cells, store, emit, workers)
    store.collect_metrics()
    return statuses


def _run_processes(config, cells, store, emit, workers) -> dict[str, str]:
    ctx = get_context("spawn")  # fork is unsafe once torch or BLAS threads exist
    manager = ctx.Manager()
    queue = manager.Queue()
    statuses: dict[str, str] = {}
    try:
        pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_limit_threads)
        try:
            futures = {
                pool.submit(
                    _worker, config.model_dump_json(by_alias=True), s, str(store.root), queue
                ): s
                for s in cells
            }
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                _drain(queue, emit)
                for fut in done:
                    spec = futures[fut]
                    try:
                        statuses[spec.cell_id] = fut.result()
                    except Exception as err:  # a worker died: record it, keep the others
                        store.cell(spec.cell_id).set_status("failed", f"worker: {err}")
                        statuses[spec.cell_id] = "failed"
                        emit({"cell": spec.cell_id, "done": "failed", "message": str(err)})
            _drain(queue, emit)
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


def _drain(queue, emit) -> None:
    while True:
        try:
            event = queue.get_nowait()
        except Exception:
            return
        emit(event)
