"""Rebuild a run's report from its directory alone: metrics, samples, theory curves, config."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console

from autophagy.analysis.stability import run_constants, run_family, stability_tables
from autophagy.errors import WriteError
from autophagy.report.html import write_report
from autophagy.report.stability import print_stability
from autophagy.report.summary import mark_unfinished, print_summary, verdict_table
from autophagy.run.cells import build_dataset
from autophagy.store import RunStore
from autophagy.store.runstate import run_state


def build_report(store: RunStore, *, console: Console | None = None) -> Path:
    """Merge the cells' metrics, print the verdict table, write figures and report.html.

    An unfinished run (interrupted, or still running) is said so first, and its partial curves'
    verdicts are marked (:func:`~autophagy.report.summary.mark_unfinished`)."""
    config = store.config()
    state = run_state(store.root)
    # another live writer: read the cells, write into no manifest (the writer owns them)
    metrics = store.results() if state.holder is not None else store.collect_metrics()
    cells = store.cells()
    verdict_metric = config.eval.verdict_metric
    theory = store.theory()
    samples = store.samples()
    real = store.real_points()
    table = verdict_table(metrics, metric=verdict_metric) if len(metrics) else pd.DataFrame()
    if len(table):
        table = mark_unfinished(table, cells)
    if console is not None and (line := state.line()):
        console.print(f"warning: {line}", markup=False, highlight=False, soft_wrap=True)
    if console is not None and len(table):
        print_summary(table, console=console, metric=verdict_metric)
    stability = []
    if len(metrics):
        stability = stability_tables(metrics, run_constants(config, build_dataset),
                                     family=run_family(config))
    if console is not None and stability:
        print_stability(stability, console=console, verdicts=table)
    try:
        return _write(store, config, metrics, cells, theory, samples, real, stability)
    except OSError as err:  # report.html or a sample grid: name the file, or the folder
        raise WriteError.of(err, err.filename or store.root) from err


def _write(store, config, metrics, cells, theory, samples, real, stability) -> Path:
    verdict_metric = config.eval.verdict_metric
    return write_report(
        store.root,
        title=f"autophagy: {config.name}",
        config_text=store.config_text,
        metrics=metrics,
        cells=cells,
        theory=theory,
        samples=samples or None,
        real=real,
        verdict_metric=verdict_metric,
        stability=stability,
    )
