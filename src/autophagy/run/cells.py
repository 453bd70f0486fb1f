"""Building a cell from its config, and running a batch of cells into the run directory.

Every cell rebuilds its dataset and model from the config and its own seed and writes only to its
own folder, so a batch runs the same way on any executor, and a crashed run resumes cell by cell.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from autophagy.analysis.overlay import theory_overlay
from autophagy.config import Config, ConfigError, config_field
from autophagy.data import Dataset, load_dataset
from autophagy.loop import CellRun, EvalSettings, LoopSettings, run_cells
from autophagy.metrics.fixed_point import STABILITY_METRICS
from autophagy.models.registry import build_model
from autophagy.run.grid import CellSpec, expand_grid
from autophagy.store import RunStore

Event = dict[str, Any]
TRACKER_RUN = "mlflow_run_id"
"""The ``cell.json`` field that keeps the cell's MLflow run, so a moved run directory resumes it."""


def loop_settings(config: Config, seed: int) -> LoopSettings:
    """How the cell of ``seed`` retrains, from the config's loop and model sections."""
    return LoopSettings(
        generations=config.loop.generations,
        seed=seed,
        warm_start=config.loop.warm_start,
        temperature=config.loop.temperature,
        budget=config.model.budget,
        initial_budget=config.model.initial_budget,
    )


def build_dataset(config: Config, seed: int) -> Dataset:
    """The config's dataset for the cell of ``seed`` (``data.seed`` fixes one for all cells)."""
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
        from autophagy.models.families.self_guidance import SelfGuided

        if getattr(model, "class_conditional", False):
            raise ConfigError("loop.self_guidance: not for a class-conditional model (its "
                              "samples carry labels that self-guidance does not); set it to 0")

        with config_field("loop.self_guidance"):
            model = SelfGuided(model, guidance=config.loop.self_guidance)
    return model


def eval_settings(cfg: Any, policy: Any) -> EvalSettings:
    """The cell's evaluation settings: its config's, plus the distances to the fixed point
    (:data:`~autophagy.metrics.fixed_point.STABILITY_METRICS`) when its policy declares a
    mixing scheme, whatever ``eval.metrics`` lists: every run with mixed cells gets its
    stability table."""
    settings = EvalSettings.from_config(cfg.eval)
    if settings.metrics is None or policy.mixing() is None:
        return settings
    extra = tuple(m for m in STABILITY_METRICS if m not in settings.metrics)
    return dataclasses.replace(settings, metrics=settings.metrics + extra)


def run_batch(
    config: Config, specs: list[CellSpec], store: RunStore, emit: Callable[[Event], None]
) -> dict[str, str]:
    """Build and run (or resume) a batch of cells together (:func:`autophagy.loop.run_cells`:
    their fits share one batched training where the family allows); returns {cell id: status}.
    Every executor runs this, in its own process or the caller's."""
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
            from autophagy.run.trackers import make_tracker

            kept = cell.info().get(TRACKER_RUN)
            tracker = make_tracker(config, store.root, spec.info(), run_id=kept)
            run_id = getattr(tracker, "run_id", None)
            if run_id is not None and run_id != kept:  # before any generation is sent
                cell.write_info(**{TRACKER_RUN: run_id})
        runs.append(CellRun(model, dataset, spec.policy, loop_settings(cfg, spec.seed),
                            eval_settings(cfg, spec.policy), store=cell, progress=progress,
                            tracker=tracker))
        built.append((spec, cfg, dataset, cell))
    for (spec, cfg, dataset, cell), result in zip(built, run_cells(runs), strict=True):
        overlay = theory_overlay(result.model, spec.policy, dataset=dataset,
                                 generations=cfg.loop.generations, reference=result.reference,
                                 metrics=result.metrics, temperature=cfg.loop.temperature)
        if overlay is not None:
            cell.save_theory(overlay)
        emit({"cell": spec.cell_id, "done": result.status, "message": result.message})
        statuses[spec.cell_id] = result.status
    return statuses
