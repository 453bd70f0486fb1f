"""Time per cell of the default job's cells trained one after another and as one batch.

The cells are those of ``toy-flow`` (NSF, 500 points of 8 gaussians, lambda in {0, 0.5, 1} and
fully synthetic): 4 cells, and the same grid over 3 seeds (12 cells). Each is run through the
loop (:func:`autophagy.loop.run_cells`) for a few generations with the preset's budgets, once
cell by cell (as ``run.batch: 1`` does inside a worker) and once in lockstep, fits batched
(``run.batch`` = every cell), in the same process with the same torch threads. The batched
cells are checked to give the same metrics as the sequential ones.

    python benchmarks/batched_cells.py [--generations 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
from rich.console import Console
from rich.table import Table

from autophagy.config import load_config
from autophagy.experiment import build_config_model, build_dataset, expand_grid, loop_settings
from autophagy.loop import CellRun, EvalSettings, run_cells


def make_runs(config):
    runs = []
    for spec in expand_grid(config):
        runs.append(CellRun(build_config_model(config), build_dataset(config, spec.seed),
                            spec.policy, loop_settings(config, spec.seed),
                            EvalSettings(metrics=("nll",), n_samples=500)))
    return runs


def timed(config, batched: bool) -> tuple[float, list[pd.DataFrame]]:
    runs = make_runs(config)
    start = time.perf_counter()
    results = run_cells(runs) if batched else [run_cells([r])[0] for r in runs]
    return time.perf_counter() - start, [r.metrics for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generations", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    table = Table(title=f"toy-flow cells, gen 0 + {args.generations} generations, "
                        f"{args.threads} torch thread(s)", title_justify="left")
    for col in ("grid", "cells", "one after another (s/cell)", "batched (s/cell)", "speed-up",
                "same metrics"):
        table.add_column(col, justify="right")
    for label, seeds in (("default job", [0]), ("3 seeds", [0, 1, 2])):
        config = load_config(preset="toy-flow", overrides=[
            f"loop.generations={args.generations}", f"seed={seeds}"])
        n = len(expand_grid(config))
        alone, a = timed(config, batched=False)
        together, b = timed(config, batched=True)
        same = all(x.equals(y) for x, y in zip(a, b, strict=True))
        table.add_row(label, str(n), f"{alone / n:.2f}", f"{together / n:.2f}",
                      f"{alone / together:.2f}x", "yes" if same else "NO")
    Console().print(table)


if __name__ == "__main__":
    main()
