"""The regression loop run through the project's own model, dataset, policies and loop, seed by
seed: what ``autophagy theory regression`` and the tests hold against the closed forms."""

from __future__ import annotations

import numpy as np

from autophagy.data import load_dataset
from autophagy.loop import CellRun, EvalSettings, LoopSettings, run_cells
from autophagy.models.regression import LinearRegression
from autophagy.policies import make_policy

EVAL = EvalSettings(metrics=("test_error",), n_samples=2)


def regression_loop_errors(
    policy: str,
    *,
    n: int,
    dim: int,
    generations: int,
    seeds: int,
    noise: float = 1.0,
    lam: float = 1.0,
    design_seed: int | None = None,
) -> np.ndarray:
    """``test_error`` (seeds, T+1) of ``seeds`` cells of the ``linear_regression`` model on the
    ``linear_regression`` dataset (``n`` = T rows, ``dim`` features, label noise ``noise``,
    the model told that noise), under ``policy`` (``fully_synthetic``, ``accumulate`` or
    ``mixed`` at ``lam``). Each cell draws its own design from its seed (the theorem's average
    over Gaussian designs), or all share the design of data seed ``design_seed`` (the closed
    form given X, with less spread)."""
    params = {} if policy == "fully_synthetic" else {"lambda": lam}
    pol = make_policy(policy, **params)
    shared = None if design_seed is None else _dataset(n, dim, noise, design_seed)
    runs = [
        CellRun(LinearRegression(noise_std=noise),
                shared if shared is not None else _dataset(n, dim, noise, seed), pol,
                LoopSettings(int(generations), seed), EVAL)
        for seed in range(int(seeds))
    ]
    out = []
    for result in run_cells(runs):
        if result.status != "done":
            raise ValueError(f"the regression loop {result.status}: {result.message}")
        out.append(result.metrics.sort_values("generation")["value"].to_numpy())
    return np.array(out)


def _dataset(n: int, dim: int, noise: float, seed: int):
    return load_dataset("linear_regression", n_train=n, n_test=2, seed=seed, dim=dim,
                        noise=noise)
