"""Benchmark: autophagy.metrics.prdc vs prdc.compute_prdc, frechet_distance vs the sqrtm formula.

Usage: ``python benchmarks/metrics_prdc_fid.py [--sizes 2000 10000 20000] [--dim 64]``

Each measurement runs in a fresh subprocess, so its peak memory is its own: "peak MB" is the
process's peak resident set size (``ru_maxrss``) minus its resident size just before the call.
RSS is used rather than ``tracemalloc`` because tracemalloc sees numpy's allocations but not
torch's. Features are standard normal (real) and shifted, scaled normal (fake), float32 by
default (the dtype ``prdc`` documents; Inception features are float32). Times are wall-clock
seconds of one call, after a warm-up call on 50 points; on a shared machine expect noise of
tens of percent. ``--threads N`` sets OMP/MKL/OpenBLAS threads in both workers alike.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

KEYS = ("precision", "recall", "density", "coverage")


def make_features(n: int, dim: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(n * 1000 + dim)
    real = rng.standard_normal((n, dim)).astype(dtype)
    fake = (1.1 * rng.standard_normal((n, dim)) + 0.1).astype(dtype)
    return real, fake


def sqrtm_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """pytorch-fid's calculate_frechet_distance on the moments of two feature sets."""
    import scipy.linalg

    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(s1.dot(s2))
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((s1 + offset).dot(s2 + offset))
    covmean = covmean.real
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker(method: str, n: int, dim: int, dtype: str, k: int) -> None:
    """Run one measurement and print a JSON line."""
    real, fake = make_features(n, dim, dtype)
    if method == "autophagy.prdc":
        import torch  # noqa: F401  (imported before the baseline, like sklearn for prdc)

        from autophagy.metrics import prdc

        def call():
            return prdc(real, fake, k=k)
    elif method == "prdc.compute_prdc":
        import prdc as reference

        def call():
            with contextlib.redirect_stdout(io.StringIO()):
                out = reference.compute_prdc(real, fake, k)
            return {key: float(v) for key, v in out.items()}
    elif method == "autophagy.frechet_distance":
        from autophagy.metrics import frechet_distance

        def call():
            return {"value": frechet_distance(real, fake)}
    elif method == "sqrtm formula":
        import scipy.linalg  # noqa: F401

        def call():
            return {"value": sqrtm_frechet(real.astype(np.float64), fake.astype(np.float64))}
    else:
        raise SystemExit(f"unknown method {method}")
    warm_real, warm_fake = real, fake
    real, fake = real[:50], fake[:50]
    call()  # warm-up on 50 points: thread pools, lazy imports, LAPACK / MKL initialisation
    real, fake = warm_real, warm_fake
    before = rss_mb()
    start = time.perf_counter()
    values = call()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": max(peak - before, 0.0), "values": values}))


def measure(method: str, n: int, dim: int, args: argparse.Namespace) -> dict | str:
    cmd = [sys.executable, __file__, "--worker", method, str(n), str(dim), args.dtype]
    cmd.append(str(args.k))
    try:
        env = dict(os.environ)
        if args.threads:
            for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                env[var] = str(args.threads)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env)
    except subprocess.TimeoutExpired:
        return f"timed out after {args.timeout} s"
    if out.returncode != 0:
        return f"failed: {out.stderr.strip().splitlines()[-1] if out.stderr else out.returncode}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def available_gb() -> float:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    return float("inf")


def max_rel_diff(a: dict, b: dict) -> float:
    return max(abs(a[key] - b[key]) / max(abs(b[key]), 1e-300) for key in b)


def row(cells: list[str], widths: list[int]) -> str:
    pairs = enumerate(zip(cells, widths, strict=True))
    return "  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000, 20000])
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--threads", type=int, default=0, help="0: the libraries' defaults")
    parser.add_argument(
        "--frechet-wide",
        type=int,
        default=2048,
        help="also time the Fréchet distance at this dimension (n=5000), as for Inception; 0: no",
    )
    args = parser.parse_args()

    import torch

    print(
        f"{args.dim}-dim {args.dtype} features, n real = n fake, k = {args.k}; "
        f"{os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"threads: {args.threads or 'library defaults'}; load average {os.getloadavg()[0]:.1f}"
    )
    widths = [10, 27, 9, 9, 9, 9, 13]
    header = ["n", "method", "time s", "peak MB", "speedup", "mem x", "max rel diff"]
    print(row(header, widths))
    print(row(["-" * w for w in widths], widths))
    pairs = [
        ("autophagy.prdc", "prdc.compute_prdc"),
        ("autophagy.frechet_distance", "sqrtm formula"),
    ]
    cases = {
        "autophagy.prdc": [(n, args.dim) for n in args.sizes],
        "autophagy.frechet_distance": [(n, args.dim) for n in args.sizes]
        + ([(5000, args.frechet_wide)] if args.frechet_wide else []),
    }
    for ours_name, ref_name in pairs:
        for n, dim in cases[ours_name]:
            ours = measure(ours_name, n, dim, args)
            # prdc keeps three n x n matrices and int64 argpartition indices: ~ 6 n^2 words.
            need_gb = 6 * n * n * (4 if args.dtype == "float32" else 8) / 2**30
            if ref_name == "prdc.compute_prdc" and need_gb > 0.8 * available_gb():
                ref: dict | str = f"skipped: needs ~{need_gb:.0f} GB"
            else:
                ref = measure(ref_name, n, dim, args)
            label = str(n) if dim == args.dim else f"{n}x{dim}d"
            for name, res in ((ours_name, ours), (ref_name, ref)):
                if isinstance(res, str):
                    print(row([label, name, res, "", "", "", ""], widths))
                    continue
                cells = [label, name, f"{res['seconds']:.3f}", f"{res['peak_mb']:.0f}"]
                if name == ours_name and isinstance(ref, dict):
                    cells.append(f"{ref['seconds'] / res['seconds']:.1f}x")
                    cells.append(f"{res['peak_mb'] / max(ref['peak_mb'], 1e-9):.3f}")
                    cells.append(f"{max_rel_diff(res['values'], ref['values']):.1e}")
                else:
                    cells += ["", "", ""]
                print(row(cells, widths), flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        method, n, dim, dtype, k = sys.argv[2:7]
        worker(method, int(n), int(dim), dtype, int(k))
    else:
        main()
