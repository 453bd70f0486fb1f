"""A sweep of NSF cells run inline (a notebook's way) against worker processes (the CLI's way).

The sweep is ``toy-flow``'s four cells (lambda in {0, 0.5, 1} and fully synthetic) over
``--seeds`` seeds (8 cells by default), shrunk to ``--generations`` generations with small
budgets, trained two cells to a batch as the preset does. It runs three ways in this process,
each into its own run directory, and every time is divided by the processes' time:

- *inline, caller's threads*: the inline executor as it was, every batch in this process with
  whatever torch and BLAS threads the caller had (torch's default: one per core);
- *inline, pinned*: the inline executor now, each batch with the threads a worker process would
  get (:func:`autophagy.threads.share`) and the caller's settings restored after;
- *processes*: ``run.executor: processes``, one worker per core (at most one per batch), each
  pinned to ``cores // workers`` threads.

Times include building the cells, sampling and evaluation (held-out NLL). "same metrics" compares
each way's metrics table with the processes' one. On a shared machine timings wander: ``--repeats``
runs the three ways that many times, in turn, and keeps each one's fastest.

    python benchmarks/inline_threads.py [--seeds 2] [--generations 1] [--budget 6400]
                                        [--repeats 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from rich.console import Console
from rich.table import Table

from autophagy.config import load_config
from autophagy.run.executors import InlineExecutor, ProcessExecutor
from autophagy.run.grid import expand_grid, make_batches
from autophagy.store import RunStore
from autophagy.threads import share


def run_once(config, how: str, root: Path) -> tuple[float, pd.DataFrame, int | None]:
    """Seconds, metrics and threads per batch of one way of running the sweep."""
    cells = expand_grid(config)
    store = RunStore.create(root, config.to_yaml(), keep=config.run.checkpoints)
    for spec in cells:
        store.cell(spec.cell_id).write_info(**spec.info(), status="pending")
    batches = make_batches(config, cells)
    if how == "processes":
        executor = ProcessExecutor(config, len(batches))
        threads = share(executor.workers)
    else:
        executor = InlineExecutor(config, len(batches))
        if how == "inline, caller's threads":
            executor.threads = None
        threads = executor.threads if executor.threads is not None else torch.get_num_threads()
    start = time.perf_counter()
    statuses = executor.run(config, batches, store, lambda event: None)
    seconds = time.perf_counter() - start
    assert set(statuses.values()) == {"done"}, statuses
    metrics = store.collect_metrics().sort_values(["cell", "generation", "metric"])
    return seconds, metrics.reset_index(drop=True)[["cell", "generation", "metric", "value"]], \
        threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=2, help="2: 8 cells")
    parser.add_argument("--generations", type=int, default=1)
    parser.add_argument("--budget", type=int, default=6400,
                        help="samples seen at generation 0 and at each later generation")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    config = load_config(preset="toy-flow", overrides=[
        f"loop.generations={args.generations}", f"seed={list(range(args.seeds))}",
        f"model.initial_budget={args.budget}", f"model.budget={args.budget}",
        "eval.n_samples=500", "data.n_test=1000"])
    ways = ["inline, caller's threads", "inline, pinned", "processes"]
    best = {way: float("inf") for way in ways}
    metrics, threads = {}, {}
    caller = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for way in ways:
                root = Path(tmp) / f"{repeat}-{way.split(',')[0]}-{len(metrics)}"
                seconds, metrics[way], threads[way] = run_once(config, way, root)
                best[way] = min(best[way], seconds)
                assert torch.get_num_threads() == caller  # the caller's settings came back
    n = len(expand_grid(config))
    reference = best["processes"]
    table = Table(title=f"toy-flow's cells x {args.seeds} seeds = {n} NSF cells, gen 0 + "
                        f"{args.generations} generation(s), {args.budget} samples a fit, "
                        f"{config.run.batch} cells a batch, {caller} cores' default threads",
                  title_justify="left")
    for col in ("way", "threads a batch", "seconds", "s / cell", "time / processes",
                "same metrics"):
        table.add_column(col, justify="right")
    for way in ways:
        diff = (metrics[way]["value"] - metrics["processes"]["value"]).abs().max()
        same = "yes" if diff == 0 else f"max diff {diff:.2g}"
        table.add_row(way, str(threads[way]), f"{best[way]:.1f}", f"{best[way] / n:.2f}",
                      f"{best[way] / reference:.2f}x", same)
    Console(width=None if sys.stdout.isatty() else 140).print(table)


if __name__ == "__main__":
    main()
