"""Time per cell of the default job's cells trained one after another and as one batch.

Rows per neural family on points, at its preset's sizes: ``nsf`` and ``maf`` (``toy-flow``:
500 points of 8 gaussians), ``cfm`` and ``otcfm`` (``toy-otcfm``, two moons), ``ddpm``
(``toy-ddpm``) and ``edm`` (``toy-ddpm``'s MLP, batch size, lr and EMA); every one of them trains
stacked (:class:`~autophagy.models.training.batched.StackedLinear`). The cells are a preset's
default job (lambda in {0, 0.5, 1} and fully synthetic: 4 cells) over each of ``--seeds``
seeds (default 1 and 3: one row at 4 cells, one at 12). Each is run through the loop
(:func:`autophagy.loop.run_cells`) for a few generations with the preset's budgets, once cell by
cell (as ``run.batch: 1`` does inside a worker) and once in lockstep, fits batched
(``run.batch`` = every cell), in the same process with the same torch threads; sampling and
metrics are in both times (they run per cell both ways). The "fits only" column times the
training steps alone: one cold fit of each cell's real training set for the preset's
per-generation budget, one after another against one
:func:`~autophagy.models.families.neural.fit_batched`. The batched cells are checked to give the
same metrics as the sequential ones. Times are this process's CPU seconds
(``time.process_time``): with one torch thread that is the wall time on an idle machine, and
other users of a shared machine do not count in it (they still slow it a little, through the
caches). They wander by 10-30% all the same: ``--repeats`` alternates the two ways that many
times and keeps each one's fastest.

    python benchmarks/batched_cells.py [--families nsf maf cfm otcfm ddpm edm] [--seeds 1 3]
                                       [--generations 2] [--threads 1] [--repeats 1]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd
import torch
from rich.console import Console
from rich.table import Table

from autophagy.config import load_config
from autophagy.loop import CellRun, EvalSettings, run_cells
from autophagy.models.families.neural import fit_batched
from autophagy.run.cells import build_config_model, build_dataset, loop_settings
from autophagy.run.grid import expand_grid

MLP = "{hidden_features: [64, 64, 64], batch_size: 256, lr: 0.002, ema: 0.99, device: cpu}"
FAMILIES = {  # family: (preset, overrides)
    "nsf": ("toy-flow", []),
    "maf": ("toy-flow", ["model.name=maf"]),
    "cfm": ("toy-otcfm", ["model.name=cfm"]),
    "otcfm": ("toy-otcfm", []),
    "ddpm": ("toy-ddpm", []),
    "edm": ("toy-ddpm", ["model.name=edm", f"model.options={MLP}"]),
}


def make_runs(config):
    runs = []
    metrics = ("nll",) if config.model.name in ("nsf", "maf") else ("w2",)
    for spec in expand_grid(config):
        runs.append(CellRun(build_config_model(config), build_dataset(config, spec.seed),
                            spec.policy, loop_settings(config, spec.seed),
                            EvalSettings(metrics=metrics, n_samples=500)))
    return runs


def timed(config, batched: bool) -> tuple[float, list[pd.DataFrame]]:
    runs = make_runs(config)
    start = time.process_time()
    results = run_cells(runs) if batched else [run_cells([r])[0] for r in runs]
    return time.process_time() - start, [r.metrics for r in results]


def timed_fits(config, batched: bool) -> float:
    """Seconds for one cold fit per cell (the real training set, ``model.budget`` samples)."""
    specs = expand_grid(config)
    models = [build_config_model(config) for _ in specs]
    datas = [build_dataset(config, spec.seed).train for spec in specs]
    budget = int(config.model.budget)
    rngs = [np.random.default_rng(spec.seed) for spec in specs]
    start = time.process_time()
    if batched:
        errors = fit_batched(models, datas, warm_start=False, budgets=[budget] * len(specs),
                             rngs=rngs)
        assert not any(errors), errors
    else:
        for model, data, rng in zip(models, datas, rngs, strict=True):
            model.fit(data, warm_start=False, budget=budget, rng=rng)
    return time.process_time() - start


def measure(family: str, seeds: int, generations: int, repeats: int) -> list[str]:
    """One row of the table: the family's default job over ``seeds`` seeds, both ways."""
    preset, overrides = FAMILIES[family]
    config = load_config(preset=preset, overrides=[
        *overrides, f"loop.generations={generations}", f"seed={list(range(seeds))}"])
    n = len(expand_grid(config))
    alone = together = fit_alone = fit_together = float("inf")
    same = True
    for _ in range(repeats):
        seconds, a = timed(config, batched=False)
        alone = min(alone, seconds)
        seconds, b = timed(config, batched=True)
        together = min(together, seconds)
        same = same and all(x.equals(y) for x, y in zip(a, b, strict=True))
        fit_alone = min(fit_alone, timed_fits(config, batched=False))
        fit_together = min(fit_together, timed_fits(config, batched=True))
    return [family, preset, str(n), f"{alone / n:.2f}", f"{together / n:.2f}",
            f"{alone / together:.2f}x", f"{fit_alone / fit_together:.2f}x",
            "yes" if same else "NO"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", nargs="+", choices=list(FAMILIES), default=list(FAMILIES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 3],
                        help="seeds of a row: 1 is the default job's 4 cells, 3 its 12")
    parser.add_argument("--generations", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1,
                        help="alternate the two ways this many times, keep each one's fastest")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    table = Table(title=f"default job's cells (x seeds), gen 0 + {args.generations} "
                        f"generations, {args.threads} torch thread(s)", title_justify="left")
    for col in ("family", "preset", "cells", "one after another (s/cell)", "batched (s/cell)",
                "speed-up per cell", "fits only: speed-up", "same metrics"):
        table.add_column(col, justify="right")
    for family in args.families:
        for seeds in args.seeds:
            row = measure(family, seeds, args.generations, args.repeats)
            print(" | ".join(row), file=sys.stderr, flush=True)  # progress: a row at a time
            table.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 140).print(table)


if __name__ == "__main__":
    main()
