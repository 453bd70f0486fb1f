"""Time per training step and per 1,000 samples of every neural family, at its preset's size.

Points: nsf and maf (toy-flow), cfm and otcfm (toy-otcfm), ddpm (toy-ddpm) and edm (toy-ddpm's
network and batch) on 500 two-moons points. Images: ddpm, edm and otcfm with the UNet of the
digits-* presets on 1,500 8x8 digits. One process, one torch thread (as each worker of the
``processes`` executor), after a warm-up; ratios are against the NSF step time.

    python benchmarks/model_families.py [--steps 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from autophagy.config import load_config
from autophagy.data import load_dataset
from autophagy.models import build_model

CASES = [  # (label, family, preset whose options and data size are used)
    ("nsf (points)", "nsf", "toy-flow"),
    ("maf (points)", "maf", "toy-flow"),
    ("cfm (points)", "cfm", "toy-otcfm"),
    ("otcfm (points)", "otcfm", "toy-otcfm"),
    ("ddpm (points)", "ddpm", "toy-ddpm"),
    ("edm (points)", "edm", "toy-ddpm"),
    ("ddpm (unet, digits)", "ddpm", "digits-ddpm"),
    ("edm (unet, digits)", "edm", "digits-edm"),
    ("otcfm (unet, digits)", "otcfm", "digits-otcfm"),
]
DDPM_ONLY = ("schedule", "timesteps", "sampler", "clip", "eta")


def options_for(family: str, preset: str) -> tuple[dict, dict]:
    """The preset's model options for ``family`` (dropping another family's options)."""
    config = load_config(preset=preset)
    options = dict(config.model.options)
    if family == "maf":
        options.pop("bins", None)
    if family == "edm" and config.model.name == "ddpm":
        for key in DDPM_ONLY:
            options.pop(key, None)
        options["steps"] = 18
    if family == "cfm":
        options["coupling"] = "independent"
    data = {"name": config.data.name, "n_train": config.data.n_train, "n_test": config.data.n_test}
    return options, data


def measure(family: str, preset: str, steps: int) -> tuple[float, float, int]:
    """(seconds per training step, seconds per 1,000 samples, batch size)."""
    options, data = options_for(family, preset)
    ds = load_dataset(data["name"], n_train=data["n_train"], n_test=min(data["n_test"], 297),
                      seed=0)
    model = build_model(family, {**options, "device": "cpu"})
    bs = int(options.get("batch_size", 256))
    model.fit(ds.train, budget=bs * 3, rng=np.random.default_rng(0))  # warm-up
    model.fit(ds.train, warm_start=True, budget=bs * steps, rng=np.random.default_rng(1))
    per_step = model.last_train_.seconds / model.last_train_.steps
    model.sample(100, rng=np.random.default_rng(2))  # warm-up
    t0 = time.perf_counter()
    model.sample(1000, rng=np.random.default_rng(3))
    return per_step, time.perf_counter() - t0, bs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per family")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for label, family, preset in CASES:
        step, sample, bs = measure(family, preset, args.steps)
        rows.append((label, preset, bs, step, sample))
    ref_step, ref_sample = rows[0][3], rows[0][4]
    table = Table(title="Neural families on this machine (1 torch thread)")
    for col in ("family", "preset", "batch", "ms / step", "x nsf step", "s / 1k samples",
                "x nsf sample"):
        table.add_column(col, justify="left" if col in ("family", "preset") else "right")
    for label, preset, bs, step, sample in rows:
        table.add_row(label, preset, str(bs), f"{1000 * step:.1f}", f"{step / ref_step:.1f}",
                      f"{sample:.2f}", f"{sample / ref_sample:.1f}")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
