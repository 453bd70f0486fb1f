"""Rebuild a run's report from its directory alone: metrics, samples, theory curves, config."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console

from autophagy.analysis.stability import run_constants, stability_tables
from autophagy.report.html import write_report
from autophagy.report.stability import print_stability
from autophagy.report.summary import print_summary, verdict_table
from autophagy.run.cells import build_dataset
from autophagy.store import RunStore


def build_report(store: RunStore, *, console: Console | None = None) -> Path:
    """Merge the cells' metrics, print the verdict table, write figures and report.html."""
    config = store.config()
    metrics = store.collect_metrics()
    cells = store.cells()
    verdict_metric = config.eval.verdict_metric
    theory = store.theory()
    samples = store.samples()
    real = store.real_points()
    table = verdict_table(metrics, metric=verdict_metric) if len(metrics) else pd.DataFrame()
    if console is not None and len(table):
        print_summary(table, console=console, metric=verdict_metric)
    stability = []
    if len(metrics):
        stability = stability_tables(metrics, run_constants(config, build_dataset))
    if console is not None and stability:
        print_stability(stability, console=console)
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
