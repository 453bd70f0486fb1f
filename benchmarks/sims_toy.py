"""SIMS self-guidance (Alemohammad et al. 2024) on two moons, fully synthetic: does guidance away
from the model's own samples change the trajectory? Prints W2 / energy / precision-free numbers per
generation for w = 0 (plain loop) and w > 0, through the project's DDPM and loop.

    python benchmarks/sims_toy.py [--generations 5] [--seeds 2] [--w 0 1.5]
"""

from __future__ import annotations

import argparse
import time

from autophagy.data import load_dataset
from autophagy.loop import EvalSettings, LoopSettings, run_cell
from autophagy.models.families.self_guidance import SelfGuided
from autophagy.models.registry import build_model
from autophagy.policies import make_policy

OPTIONS = dict(sampler="ddim", steps=25, hidden_features=[64, 64, 64], batch_size=256, lr=2e-3,
               ema=0.99, device="cpu", initial_budget=256_000, budget=25_600)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--generations", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--w", type=float, nargs="+", default=[0.0, 1.5])
    ap.add_argument("--policy", default="fully_synthetic")
    args = ap.parse_args()
    rows = {}
    for w in args.w:
        for seed in range(args.seeds):
            start = time.perf_counter()
            ds = load_dataset("moons", n_train=500, n_test=2000, seed=seed)
            model = SelfGuided(build_model("ddpm", dict(OPTIONS)), guidance=w)
            result = run_cell(model, ds, make_policy(args.policy),
                              LoopSettings(args.generations, seed),
                              EvalSettings(metrics=("w2", "energy", "cov_trace_ratio"),
                                           n_samples=1000))
            df = result.metrics.pivot(index="generation", columns="metric", values="value")
            rows[(w, seed)] = df
            print(f"w={w:g} seed={seed} ({time.perf_counter() - start:.0f} s, {result.status})")
            print(df.round(4).to_string(), flush=True)
    for w in args.w:
        mean = sum(rows[(w, s)] for s in range(args.seeds)) / args.seeds
        print(f"\nmean over {args.seeds} seeds, w={w:g}\n{mean.round(4).to_string()}")


if __name__ == "__main__":
    main()
