"""An experiment: every cell of a config, prepared once and run by the configured executor.

Every cell (a policy with its parameters, x swept values, x seed) is independent: it rebuilds its
dataset and model from the config and its own seed, and writes only to its own folder of the run
directory. So cells run in any order, on any executor, and a crashed run resumes cell by cell.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from autophagy.config import Config
from autophagy.metrics import resolve_metrics
from autophagy.run.cells import build_dataset
from autophagy.run.executors import make_executor
from autophagy.run.grid import CellSpec, cell_configs, expand_grid, make_batches
from autophagy.store import RunStore

REAL_POINTS_SAVED = 2000
"""Held-out points kept in the run directory, drawn behind the sample scatter plots."""

Event = dict[str, Any]


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
                if "train_groups" in dataset.params and any(
                        "groups" in m.needs for m in resolve_metrics(config.eval.metrics)):
                    from autophagy.metrics.labelling import prepare_annotators

                    prepare_annotators(dataset)  # the downstream metrics' group annotator


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
        from autophagy.run.trackers import prepare_tracker

        prepare_tracker(config, store.root)
    if store.real_points() is None and store.tokenizer() is None:
        dataset = build_dataset(cells[0].config(config), cells[0].seed)
        if dataset.kind == "points":
            store.save_real(dataset.test[:REAL_POINTS_SAVED])
        if isinstance(dataset.params.get("tokenizer"), str):  # a text run keeps its tokenizer
            store.save_tokenizer(dataset.params["tokenizer"])
    batches = make_batches(config, cells)
    statuses = make_executor(config, len(batches)).run(config, batches, store, emit)
    store.collect_metrics()
    return statuses
