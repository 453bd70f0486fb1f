"""GPU check of the full-scale image families: one short fine-tuning generation and a sample batch.

For each full-scale preset (cifar10-edm, cifar10-ddpm, cifar10-otcfm, ffhq64-edm) the model is
built with the preset's own network and options (random weights: no checkpoint is needed), fine-
tuned for a reduced budget on random images of the data's shape, then samples one batch in float32
and in bfloat16 autocast from the same seed. Prints step time, training images per second, peak
GPU memory, sampling images per second, and whether the bf16 samples agree with the fp32 ones
(per-image mean absolute difference, and the two batches' pixel means and standard deviations).

Runs in a few minutes on one modern GPU. Without CUDA it says so and exits 0 (no test needs a GPU).

    python benchmarks/gpu_check.py [--steps 20] [--samples 64] [--presets cifar10-edm ...]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

PRESETS = ["cifar10-edm", "cifar10-ddpm", "cifar10-otcfm", "ffhq64-edm"]
SHAPES = {"cifar10": (3, 32, 32), "image_folder": (3, 64, 64)}


def check(preset: str, steps: int, n_samples: int) -> dict[str, object]:
    from autophagy.config import load_config
    from autophagy.models import build_model

    config = load_config(preset=preset)
    shape = SHAPES[config.data.name]
    if config.data.name == "image_folder":
        shape = (3, config.data.options.get("resolution", 64), config.data.options.get(
            "resolution", 64))
    options = {**config.model.options, "init_checkpoint": None, "device": "cuda"}
    batch = int(options.get("batch_size", 128))
    x = np.random.default_rng(0).uniform(-1, 1, (max(batch * 2, 256), *shape)).astype(np.float32)
    row: dict[str, object] = {"preset": preset}
    samples = {}
    weights: dict[str, torch.Tensor] = {}
    for precision in ("fp32", "bf16"):
        model = build_model(config.model.name, {**options, "mixed_precision": precision == "bf16"})
        model.fit(x, budget=batch, rng=np.random.default_rng(0))  # build, warm up kernels
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        model.fit(x, warm_start=True, budget=batch * steps, rng=np.random.default_rng(1))
        torch.cuda.synchronize()
        train_s = time.perf_counter() - t0
        row[f"{precision} step ms"] = round(1000 * train_s / steps, 1)
        row[f"{precision} train img/s"] = round(batch * steps / train_s)
        row[f"{precision} peak GiB"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        if precision == "bf16":  # sample the same weights in both precisions
            model.eval_module.load_state_dict(weights)
        else:
            weights = {k: v.clone() for k, v in model.eval_module.state_dict().items()}
        t0 = time.perf_counter()
        samples[precision] = model.sample(n_samples, rng=np.random.default_rng(2))
        torch.cuda.synchronize()
        row[f"{precision} sample img/s"] = round(n_samples / (time.perf_counter() - t0), 1)
    a, b = samples["fp32"], samples["bf16"]
    diff = float(np.abs(a - b).mean())
    row["mean |fp32 - bf16|"] = round(diff, 4)
    row["means"] = f"{a.mean():+.3f} / {b.mean():+.3f}"
    row["stds"] = f"{a.std():.3f} / {b.std():.3f}"
    # same noise, same weights: bf16 may move samples a little, never the batch statistics
    row["agree"] = bool(abs(a.mean() - b.mean()) < 0.05 and abs(a.std() - b.std()) < 0.05
                        and diff < 0.25)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="training steps per preset")
    parser.add_argument("--samples", type=int, default=64, help="images sampled per precision")
    parser.add_argument("--presets", nargs="*", default=PRESETS)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU on this machine; nothing to check.")
        return 0
    print(f"gpu_check on {torch.cuda.get_device_name()} (torch {torch.__version__})")
    rows = []
    for preset in args.presets:
        t0 = time.perf_counter()
        row = check(preset, args.steps, args.samples)
        row["wall s"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        print("  " + ", ".join(f"{k}: {v}" for k, v in row.items()), flush=True)
    keys = list(rows[0])
    widths = [max(len(k), *(len(str(r[k])) for r in rows)) for k in keys]
    print()
    print(" | ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(str(r[k]).ljust(w) for k, w in zip(keys, widths, strict=True)))
    return 0 if all(r["agree"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
