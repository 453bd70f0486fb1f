"""The KDE loop run through the project's own model and loop, seed by seed (for the CLI)."""

from __future__ import annotations

import numpy as np

from autophagy.data import Dataset
from autophagy.loop import EvalSettings, LoopSettings, run_cell
from autophagy.metrics import Metric
from autophagy.models.kde import KernelDensity
from autophagy.policies import make_policy

SET_VAR = Metric("set_var", lambda ctx: float(np.asarray(ctx.model.data_).var(0).mean()),
                 "per-coordinate MLE variance of the training set the KDE holds")


def kde_loop_moments(real: np.ndarray, bandwidth: float | str, lam: float | None,
                     generations: int, seeds: int) -> np.ndarray:
    """``v_t`` (seeds, T+1): the training set's variance in each of ``seeds`` runs of
    :class:`~autophagy.models.kde.KernelDensity` through :func:`~autophagy.loop.run_cell`, on
    the fixed real sample ``real``, fully synthetic (``lam=None``) or mixed."""
    dataset = Dataset("kde-check", train=np.asarray(real, dtype=float),
                      test=np.asarray(real[:2], dtype=float))
    policy = make_policy("fully_synthetic") if lam is None else make_policy("mixed",
                                                                              **{"lambda": lam})
    out = []
    for seed in range(int(seeds)):
        result = run_cell(KernelDensity(bandwidth), dataset, policy,
                          LoopSettings(int(generations), seed),
                          EvalSettings(metrics=(SET_VAR,), n_samples=2))
        if result.status != "done":
            raise ValueError(f"the kde loop {result.status}: {result.message}")
        out.append(result.metrics.sort_values("generation")["value"].to_numpy())
    return np.array(out)
