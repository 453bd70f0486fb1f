"""An experiment: the grid of cells a config describes, and the executors that run them.

Every cell (a policy with its parameters, x seed) is independent: it rebuilds its dataset and
model from the config and its own seed, and writes only to its own folder of the run directory.
So cells run in any order, inline or in worker processes, and a crashed run resumes cell by cell.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from multiprocessing.managers import SyncManager
from typing import Any

from autophagy.config import Config, ConfigError, config_field
from autophagy.data import Dataset, load_dataset
from autophagy.errors import WriteError
from autophagy.loop import CellRun, EvalSettings, LoopSettings, run_cells
from autophagy.metrics import resolve_metrics
from autophagy.models.base import check_sampling_temperature
from autophagy.models.registry import build_model
from autophagy.policies import Policy, policy_grid
from autophagy.store import RunStore
from autophagy.theory.overlay import gaussian_overlay

REAL_POINTS_SAVED = 2000
"""Held-out points kept in the run directory, drawn behind the sample scatter plots."""

Event = dict[str, Any]


@dataclass(frozen=True)
class CellSpec:
    """One cell's coordinates in the grid: a policy with its parameters, the values of the swept
    fields (``(("data.n_train", 100),)``), and a seed."""

    policy: Policy
    seed: int
    swept: tuple[tuple[str, Any], ...] = ()

    @property
    def cell_id(self) -> str:
        parts = [self.policy.cell_tag]
        parts += [f"{_short(path, self.swept)}{_id_value(v)}" for path, v in self.swept]
        return "-".join([*parts, f"seed{self.seed}"])

    @property
    def label(self) -> str:
        fields = ", ".join(
            f"{_short(path, self.swept)}={_label_value(v)}" for path, v in self.swept
        )
        return f"{self.policy.label}, {fields}" if fields else self.policy.label

    def config(self, base: Config) -> Config:
        """The cell's own config: ``base`` with the swept values set."""
        return base.with_overrides(dict(self.swept)) if self.swept else base

    def info(self) -> dict[str, Any]:
        """What the store records of the cell: every parameter and swept field becomes a column."""
        return {
            "cell": self.cell_id,
            "label": self.label,
            "policy": self.policy.name,
            "lambda": self.policy.params.get("lambda", self.policy.lam),
            "params": self.policy.params,
            "sweep": dict(self.swept),
            "seed": self.seed,
        }


def _short(path: str, swept: tuple[tuple[str, Any], ...]) -> str:
    """A swept field's name in ids and legends: its last part, unless two swept fields share it."""
    last = path.rsplit(".", 1)[-1]
    clash = sum(p.rsplit(".", 1)[-1] == last for p, _ in swept) > 1
    return path if clash else last


def _label_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "x".join(_label_value(v) for v in value)
    return str(value)


def _id_value(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9._]+", "_", _label_value(value)).strip("_") or "_"


def sweep_combinations(config: Config) -> list[tuple[tuple[str, Any], ...]]:
    """Every combination of the swept values, in the config's order (one empty one if none)."""
    combos: list[tuple[tuple[str, Any], ...]] = [()]
    for path, values in config.sweep.items():
        combos = [(*c, (path, v)) for c in combos for v in values]
    return combos


def expand_grid(config: Config) -> list[CellSpec]:
    """Policies x their parameter grids x swept fields x seeds, in the config's order, without
    repeats."""
    cells: dict[str, CellSpec] = {}
    for name, params in config.loop.policies.items():
        for policy in policy_grid(name, params):
            for swept in sweep_combinations(config):
                for seed in config.seed:
                    spec = CellSpec(policy, seed, swept)
                    cells.setdefault(spec.cell_id, spec)
    return list(cells.values())


def cell_configs(config: Config) -> list[Config]:
    """The distinct configs the cells run (one per combination of swept values)."""
    return [config.with_overrides(dict(c)) if c else config for c in sweep_combinations(config)]


def loop_settings(config: Config, seed: int) -> LoopSettings:
    return LoopSettings(
        generations=config.loop.generations,
        seed=seed,
        warm_start=config.loop.warm_start,
        temperature=config.loop.temperature,
        budget=config.model.budget,
        initial_budget=config.model.initial_budget,
    )


def build_dataset(config: Config, seed: int) -> Dataset:
    d = config.data
    n_pool = d.n_pool
    if n_pool == 0:
        n_pool = max(s.policy.pool_size(d.n_train) for s in expand_grid(config))
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


def build_config_model(config: Config) -> Any:
    """The config's model, wrapped in SIMS self-guidance when ``loop.self_guidance`` > 0."""
    model = build_model(config.model.name, config.model.options)
    if config.loop.self_guidance > 0:
        from autophagy.models.self_guidance import SelfGuided

        with config_field("loop.self_guidance"):
            model = SelfGuided(model, guidance=config.loop.self_guidance)
    return model


def check_config(config: Config) -> None:
    """Everything that can fail before training, checked before a run directory exists:
    the dataset loads, the model builds, the policies fit the data, the metrics exist. Library
    errors are named here by the config field they come from (the one place that maps them)."""
    cells = expand_grid(config)
    for cfg in cell_configs(config):  # each combination of swept values, checked on its own
        with config_field("data"):
            dataset = build_dataset(cfg, cells[0].seed)
        with config_field("model"):
            model = build_config_model(cfg)
        with config_field("loop"):
            check_sampling_temperature(model, cfg.loop.temperature)
        with config_field("data.n_pool"):
            for spec in cells:
                spec.policy.check(len(dataset.train), dataset.pool)
        for policy in {spec.policy.cell_tag: spec.policy for spec in cells}.values():
            with config_field(f"loop.policies.{policy.name}"):
                policy.bind(dataset)  # a reward is built and tried on real samples
    metrics = resolve_metrics(config.eval.metrics)
    if any(m.needs for m in metrics):
        from autophagy.metrics.feature_metrics import make_extractor

        with config_field("eval"):
            make_extractor(config.eval.features, dataset, config.eval.inception, check_only=True)
    if config.run.executor == "ray":
        from autophagy.ray_executor import check_ray

        check_ray(config)
    if config.run.tracker != "none":
        from autophagy.trackers import check_tracker

        check_tracker(config)
    if config.eval.verdict_metric not in (config.eval.metrics or [config.eval.verdict_metric]):
        raise ConfigError(
            f"eval.verdict_metric: {config.eval.verdict_metric!r} is not among eval.metrics"
        )


def run_cells_from_config(
    config: Config, specs: list[CellSpec], store: RunStore, emit: Callable[[Event], None]
) -> dict[str, str]:
    """Build and run (or resume) a batch of cells together (:func:`autophagy.loop.run_cells`:
    their fits share one batched training where the family allows); returns {cell id: status}."""
    statuses: dict[str, str] = {}
    runs, built = [], []
    for spec in specs:
        cell = store.cell(spec.cell_id)
        if cell.info().get("status") == "done":
            emit({"cell": spec.cell_id, "done": "done"})
            statuses[spec.cell_id] = "done"
            continue
        cell.write_info(**spec.info())
        cfg = spec.config(config)
        dataset = build_dataset(cfg, spec.seed)
        model = build_config_model(cfg)

        def progress(_cell: str = spec.cell_id, **event: Any) -> None:
            emit({"cell": _cell, **event})

        tracker = None
        if config.run.tracker != "none":
            from autophagy.trackers import make_tracker

            tracker = make_tracker(config, store.root, spec.info())
        runs.append(CellRun(model, dataset, spec.policy, loop_settings(cfg, spec.seed),
                            EvalSettings.from_config(cfg.eval), store=cell, progress=progress,
                            tracker=tracker))
        built.append((spec, cfg, dataset, cell))
    for (spec, cfg, dataset, cell), result in zip(built, run_cells(runs), strict=True):
        overlay = gaussian_overlay(
            result.model,
            spec.policy,
            n=len(dataset.train),
            generations=cfg.loop.generations,
            reference=result.reference,
            temperature=cfg.loop.temperature,
        )
        if overlay is None:
            from autophagy.theory.regression import regression_overlay

            overlay = regression_overlay(result.model, spec.policy, dataset=dataset,
                                         generations=cfg.loop.generations,
                                         metrics=result.metrics, temperature=cfg.loop.temperature)
        if overlay is not None:
            cell.save_theory(overlay)
        emit({"cell": spec.cell_id, "done": result.status, "message": result.message})
        statuses[spec.cell_id] = result.status
    return statuses


def run_cell_from_config(
    config: Config, spec: CellSpec, store: RunStore, emit: Callable[[Event], None]
) -> str:
    """Build and run (or resume) one cell; returns its final status."""
    return run_cells_from_config(config, [spec], store, emit)[spec.cell_id]


def make_batches(config: Config, cells: list[CellSpec]) -> list[list[CellSpec]]:
    """The cells in groups of at most ``run.batch`` that train together: cells with the same
    swept values (so the same model shape), in grid order."""
    size = config.run.batch
    by_config: dict[tuple, list[CellSpec]] = {}
    for spec in cells:
        by_config.setdefault(spec.swept, []).append(spec)
    return [group[i : i + size] for group in by_config.values()
            for i in range(0, len(group), size)]


def _prepare_features(config: Config, cells: list[CellSpec]) -> None:
    """Train (or load) each dataset's classifier once, here, before the workers start: otherwise
    every worker would train the same classifier at the same time on a cache miss."""
    if not any(m.needs for m in resolve_metrics(config.eval.metrics)) and not any(
        c.policy.needs for c in cells
    ):
        return
    from autophagy.metrics.feature_metrics import make_extractor

    for cfg in cell_configs(config):
        seeds = {cfg.data.seed} if cfg.data.seed is not None else {c.seed for c in cells}
        for seed in sorted(seeds):
            dataset = build_dataset(cfg, seed)
            if dataset.kind == "images" and "train_labels" in dataset.params:
                make_extractor("classifier", dataset)


def _limit_threads(threads: int = 1) -> None:
    """``threads`` BLAS/torch threads per worker process: together the workers fill the cores
    (one each when there are as many workers as cores). Also: the worker ends with its parent
    (:func:`_exit_with_parent`)."""
    _exit_with_parent()
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def _exit_with_parent(poll: float = 0.5) -> None:
    """End this worker when the process that started it dies.

    Why: after a ``kill -9`` of ``autophagy run`` its workers went on writing their cells for
    minutes, while the run's lock (:mod:`autophagy.lock`), held by the dead parent, was already
    free: a ``resume`` then ran the same cells beside them. A daemon thread watches the parent
    pid (a reparented process sees another) and exits at once, as a kill would; every write is
    atomic, so this is as safe as the kill itself.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _worker(config_json: str, specs: list[CellSpec], root: str, queue) -> dict[str, str]:
    config = Config.model_validate_json(config_json)
    store = RunStore(root, keep=config.run.checkpoints)
    return run_cells_from_config(config, specs, store, best_effort(queue.put))


def best_effort(emit: Callable[[Event], None]) -> Callable[[Event], None]:
    """``emit`` that never raises: progress is best effort, the store is the record. Why: when
    the parent dies its queue's manager goes too, and a worker's next event would otherwise
    fail its cell as ``failed`` in the instant before the worker itself exits."""

    def safe(event: Event) -> None:
        try:
            emit(event)
        except Exception:
            pass

    return safe


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
    if config.run.tracker != "none":
        from autophagy.trackers import prepare_tracker

        prepare_tracker(config, store.root)
    if store.real_points() is None:
        dataset = build_dataset(cells[0].config(config), cells[0].seed)
        if dataset.kind == "points":
            store.save_real(dataset.test[:REAL_POINTS_SAVED])
    batches = make_batches(config, cells)
    workers = config.run.workers or os.cpu_count() or 1
    workers = min(workers, len(batches))
    if config.run.executor == "ray":
        from autophagy.ray_executor import run_ray

        statuses = run_ray(config, batches, store, emit)
    elif config.run.executor == "inline" or workers == 1:
        statuses = {}
        for batch in batches:
            statuses.update(run_cells_from_config(config, batch, store, emit))
    else:
        statuses = _run_processes(config, batches, store, emit, workers)
    store.collect_metrics()
    return statuses


def _run_processes(config, batches, store, emit, workers) -> dict[str, str]:
    ctx = get_context("spawn")  # fork is unsafe once torch or BLAS threads exist
    manager = SyncManager(ctx=ctx)  # ctx.Manager(), ending with this process too
    manager.start(_exit_with_parent)
    queue = manager.Queue()
    statuses: dict[str, str] = {}
    threads = max(1, (os.cpu_count() or 1) // workers)
    try:
        pool = ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_limit_threads, initargs=(threads,)
        )
        try:
            futures = {
                pool.submit(
                    _worker, config.model_dump_json(by_alias=True), b, str(store.root), queue
                ): b
                for b in batches
            }
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                _drain(queue, emit)
                for fut in done:
                    try:
                        statuses.update(fut.result())
                    except WriteError:  # a full disk or a read-only folder: stop the run
                        raise
                    except Exception as err:  # a worker died: record it, keep the others
                        for spec in futures[fut]:
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
