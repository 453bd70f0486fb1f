"""Time the vectorised Gaussian loop against the general loop run one seed at a time.

Why: checking a closed form to a few standard errors needs thousands of independent runs. The
general loop (:func:`autophagy.loop.run_cell` with
:class:`~autophagy.models.families.gaussian.GaussianMLE`) runs one seed per call;
:func:`autophagy.theory.simulate_gaussian_loop` runs all seeds as one batch. Both produce the
same trajectories (``tests/test_theory_gaussian.py`` replays the loop draw for draw), so the
ratio of times is the speed-up of the theory checks.

The per-seed path is timed on ``--loop-seeds`` seeds and extrapolated linearly to S seeds (seeds
are independent, so the cost is linear in S); it evaluates only the two moment metrics the
simulation returns, with ``n_eval`` evaluation samples, the cheapest setting of the loop.

    python benchmarks/gaussian_loop.py --generations 20 --seeds 100 1000 10000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from autophagy.data import dataset_from_array
from autophagy.loop import EvalSettings, LoopSettings, run_cell
from autophagy.metrics import get_metric
from autophagy.models.families.gaussian import GaussianMLE
from autophagy.policies import parse_policy
from autophagy.theory import simulate_gaussian_loop


def time_simulation(
    seeds: int, *, n: int, d: int, generations: int, policy: str, repeats: int
) -> float:
    """Best wall time (s) of ``repeats`` runs of the vectorised loop over ``seeds`` seeds."""
    best = float("inf")
    for r in range(repeats):
        start = time.perf_counter()
        simulate_gaussian_loop(
            n=n,
            generations=generations,
            policy=policy,
            seeds=seeds,
            mean=np.zeros(d),
            cov=np.eye(d),
            rng_seed=r,
        )
        best = min(best, time.perf_counter() - start)
    return best


def time_loop_per_seed(
    loop_seeds: int, *, n: int, d: int, generations: int, policy: str, n_eval: int
) -> float:
    """Mean wall time (s) of one seed through ``run_cell`` (dataset building not counted)."""
    metrics = [get_metric("mean_shift_sq"), get_metric("cov_trace_ratio")]
    pol = parse_policy(policy)
    datasets = []
    for seed in range(loop_seeds):
        x = np.random.default_rng(seed).standard_normal((int(np.ceil(n / 0.8)) + 1, d))
        datasets.append(dataset_from_array(x, seed=seed))
    start = time.perf_counter()
    for seed, dataset in enumerate(datasets):
        cell = run_cell(
            GaussianMLE(), dataset, pol, LoopSettings(generations, seed=seed),
            EvalSettings(metrics=tuple(metrics), n_samples=n_eval)
        )
        assert cell.status == "done", cell.message
    return (time.perf_counter() - start) / loop_seeds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--n", type=int, default=100, help="real samples per run")
    parser.add_argument("--d", type=int, default=2, help="dimension")
    parser.add_argument("--policy", default="mixed:1")
    parser.add_argument(
        "--loop-seeds",
        type=int,
        default=20,
        help="seeds actually run through run_cell (then extrapolated)",
    )
    parser.add_argument("--n-eval", type=int, default=10, help="run_cell's evaluation samples")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    common = dict(n=args.n, d=args.d, generations=args.generations, policy=args.policy)

    per_seed = time_loop_per_seed(args.loop_seeds, n_eval=args.n_eval, **common)
    rows = []
    for seeds in args.seeds:
        sim = time_simulation(seeds, repeats=args.repeats, **common)
        loop = per_seed * seeds
        rows.append((seeds, sim, loop, loop / sim))

    title = (
        f"Gaussian MLE loop: {args.generations} generations, n={args.n}, d={args.d}, "
        f"policy {args.policy}"
    )
    note = (
        f"run_cell timed on {args.loop_seeds} seeds ({per_seed * 1e3:.2f} ms/seed, "
        f"n_eval={args.n_eval}) and extrapolated linearly; simulation: best of "
        f"{args.repeats}, measured"
    )
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain text
        print(title)
        print(f"{'seeds':>8} {'simulate (s)':>14} {'run_cell (s)':>14} {'speed-up':>10}")
        for seeds, sim, loop, ratio in rows:
            print(f"{seeds:>8} {sim:>14.3f} {loop:>14.2f} {ratio:>9.0f}x")
        print(note)
        return
    table = Table(title=title, caption=note)
    for name in (
        "seeds",
        "simulate_gaussian_loop (s)",
        "run_cell one seed at a time (s)",
        "speed-up",
    ):
        table.add_column(name, justify="right")
    for seeds, sim, loop, ratio in rows:
        table.add_row(f"{seeds:,}", f"{sim:.3f}", f"{loop:.2f} (extrapolated)", f"{ratio:,.0f}x")
    Console().print(table)


if __name__ == "__main__":
    main()
