"""Memory across generations of one `mixed` cell: is it flat, apart from the run store?

Why: a study runs hundreds of generations per cell, so anything a cell keeps per generation (rows,
samples, references to old models, metric caches) grows with the run. This runs one cell of the
``toy-gmm`` preset (a Gaussian mixture on 8 gaussians, 250 real points, ``mixed`` lambda 0.5)
inline for ``--generations`` generations through the same path as ``autophagy run`` and prints,
after every ``--every`` generations: the process's resident memory (RSS) now and at its peak,
and Python's traced heap (tracemalloc, numpy arrays included) now, at its peak since the last
line, and its growth per generation. What must grow
is only the cell's metric rows (a few per generation, also written to the run store); the heap
column shows whether anything else does.

    python benchmarks/memory_generations.py --generations 50 --every 10
"""

from __future__ import annotations

import argparse
import gc
import resource
import tempfile
import tracemalloc
from pathlib import Path

from autophagy.config import load_config
from autophagy.run.experiment import run_experiment
from autophagy.store import RunStore

MiB = 1024 * 1024


def rss_now() -> int:
    """Resident memory of this process now, in bytes (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def rss_peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=50)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--lambda", dest="lam", type=float, default=0.5)
    parser.add_argument("--no-tracemalloc", action="store_true",
                        help="RSS only (tracemalloc slows the run and adds its own memory)")
    args = parser.parse_args()

    overrides = [
        "seed=0",
        f"loop.generations={args.generations}",
        f"loop.policies={{mixed: {{lambda: {args.lam}}}}}",
        "run.executor=inline",
    ]
    config = load_config(preset="toy-gmm", overrides=overrides)
    marks = set(range(0, args.generations + 1, args.every)) | {args.generations}
    lines: list[tuple[int, float, float, float, float]] = []

    def measure(generation: int) -> None:
        gc.collect()
        heap, heap_peak = tracemalloc.get_traced_memory() if tracemalloc.is_tracing() else (0, 0)
        lines.append((generation, rss_now() / MiB, rss_peak() / MiB, heap / MiB, heap_peak / MiB))
        if tracemalloc.is_tracing():
            tracemalloc.reset_peak()

    def emit(event: dict) -> None:
        # generation g starts (its progress event) once generation g - 1 is recorded
        if "done" in event:  # the cell finished: generation `generations` is recorded
            measure(args.generations)
        g = event.get("generation")
        if g is not None and g - 1 in marks and g - 1 not in {line[0] for line in lines}:
            measure(g - 1)

    if not args.no_tracemalloc:
        tracemalloc.start()
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore.create(Path(tmp) / "run", "name: memory\n", keep=config.run.checkpoints)
        run_experiment(config, store, emit)
        on_disk = sum(p.stat().st_size for p in store.root.rglob("*") if p.is_file()) / MiB

    print(f"one mixed cell (lambda={args.lam:g}) of toy-gmm, {args.generations} generations, "
          f"inline; run store on disk at the end: {on_disk:.1f} MiB")
    print(f"{'generation':>10} {'RSS MiB':>9} {'peak RSS':>9} {'heap MiB':>9} {'heap peak':>10}"
          f" {'heap KiB/gen':>13}")
    previous = None
    for generation, rss, peak, heap, heap_peak in lines:
        growth = "" if previous is None else (
            f"{(heap - previous[1]) * 1024 / (generation - previous[0]):.1f}")
        traced = f"{heap:>9.2f} {heap_peak:>10.2f} {growth:>13}"
        if args.no_tracemalloc:
            traced = f"{'-':>9} {'-':>10} {'-':>13}"
        print(f"{generation:>10} {rss:>9.1f} {peak:>9.1f} {traced}")
        previous = (generation, heap)


if __name__ == "__main__":
    main()
