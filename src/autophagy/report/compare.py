"""One report across runs: the same grid under two model families, two dataset sizes, ...

Why a separate page: each run directory stays as it was written (its own report, its own
checkpoints); the comparison only reads their results and writes a new folder. Every label is
prefixed with its run's name, so curves of the same policy in two runs sit in one figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from rich.console import Console

from autophagy.errors import InputError
from autophagy.report.html import write_report
from autophagy.report.summary import print_summary, verdict_table
from autophagy.store import RunStore


def _run_names(stores: Sequence[RunStore]) -> list[str]:
    """Each run's config name, or its folder name where two runs share a config name."""
    names = [s.config().name for s in stores]
    return [s.root.name if names.count(n) > 1 else n for s, n in zip(stores, names, strict=True)]


def _prefixed(frame: pd.DataFrame, run: str) -> pd.DataFrame:
    frame = frame.copy()
    frame["label"] = f"{run}: " + frame["label"].astype(str)
    frame["cell"] = f"{run}/" + frame["cell"].astype(str)
    frame.insert(0, "run", run)
    return frame


def compare_runs(
    run_dirs: Sequence[str | Path],
    out: str | Path,
    *,
    verdict_metric: str | None = None,
    console: Console | None = None,
) -> Path:
    """Write ``out/report.html`` (and figures) comparing ``run_dirs``; returns the page's path.

    ``verdict_metric`` defaults to the first run's ``eval.verdict_metric``.
    """
    if len(run_dirs) < 2:
        raise InputError("compare needs at least two run directories")
    stores = [RunStore.open(Path(d)) for d in run_dirs]
    names = _run_names(stores)
    if len(set(names)) < len(names):
        raise InputError("two of the run directories have the same name; give distinct folders")
    metrics = pd.concat(
        [_prefixed(s.results(), n) for s, n in zip(stores, names, strict=True)], ignore_index=True
    )
    cells = pd.concat(
        [_prefixed(s.cells(), n) for s, n in zip(stores, names, strict=True)], ignore_index=True
    )
    metric = verdict_metric or stores[0].config().eval.verdict_metric
    if console is not None and len(metrics):
        table = verdict_table(metrics, metric=metric)
        if len(table):
            print_summary(table, console=console, metric=metric)
    config_text = "\n".join(
        f"# {n} ({s.root})\n{s.config_text}" for s, n in zip(stores, names, strict=True)
    )
    return write_report(
        Path(out),
        title=f"autophagy: {' vs '.join(names)}",
        config_text=config_text,
        metrics=metrics,
        cells=cells,
        verdict_metric=metric,
    )
