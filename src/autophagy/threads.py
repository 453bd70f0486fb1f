"""Torch, OpenMP and BLAS threads for the cells this process trains, and the caller's back after.

Why: a worker process of ``autophagy run`` pins its threads to its share of the cores
(:func:`autophagy.run.executors.limit_threads`, ``cores // workers``: one each when the workers
fill the cores). A cell run in the caller's process, by :func:`autophagy.run_loop` or the inline
executor, got whatever the caller had, by default every core for torch and for BLAS; the point
families train small networks, for which extra threads cost more in synchronisation than they
give, and far more on a busy machine (``benchmarks/inline_threads.py``). :func:`pinned_threads`
sets the same limits for a block and restores the caller's settings (torch's threads, the
OpenMP and BLAS pools threadpoolctl sees, ``OMP_NUM_THREADS``) when it ends, so a notebook is left
as it was.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from autophagy.errors import InputError


def cores() -> int:
    """The cores the thread shares are cut from (``os.cpu_count()``, as the workers count)."""
    return os.cpu_count() or 1


def share(cells_at_once: int, workers: int | None = None) -> int:
    """Threads per cell when ``cells_at_once`` batches could run side by side: ``cores //
    min(workers or cores, cells_at_once)``, at least 1 (what each worker process gets)."""
    at_once = min(workers or cores(), max(1, int(cells_at_once)))
    return max(1, cores() // at_once)


@contextmanager
def pinned_threads(threads: int | None) -> Iterator[None]:
    """``threads`` torch, OpenMP and BLAS threads inside the block; the caller's settings after.

    ``None`` leaves everything as it is. Torch is imported here (a dependency, and most cells
    need it) so that its OpenMP pool is loaded before the limits are taken: threadpoolctl covers
    the OpenMP and BLAS libraries loaded so far, numpy's and torch's among them.

    Example:
        >>> import torch
        >>> before = torch.get_num_threads()
        >>> with pinned_threads(1):
        ...     torch.get_num_threads()
        1
        >>> torch.get_num_threads() == before
        True
    """
    if threads is None:
        yield
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"threads must be an integer >= 1 (or None), got {threads!r}")
    import torch
    from threadpoolctl import threadpool_limits

    torch_before = torch.get_num_threads()
    env_before = os.environ.get("OMP_NUM_THREADS")
    with threadpool_limits(threads):
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(torch_before)
            if env_before is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = env_before
