"""Closed forms against runs, generation by generation: the ``autophagy theory`` checks.

Each check computes a closed form's expected curve and the same quantity over many runs, then
asks, generation by generation, whether the expectation lies inside the runs' 99% confidence
interval for their mean. The Gaussian check runs the vectorised simulation
(:mod:`autophagy.theory.simulation`); the KDE and regression checks run the project's own model,
policies and loop, seed by seed, so they test the code a run uses, not a copy of it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from autophagy.data import Dataset, load_dataset
from autophagy.errors import InputError
from autophagy.loop import CellRun, EvalSettings, LoopSettings, run_cells
from autophagy.metrics import Metric
from autophagy.models.families.kde import KernelDensity
from autophagy.models.families.regression import LinearRegression
from autophagy.policies import make_policy

Z99 = 2.576
"""Two-sided 99% normal quantile: about 1% of generations fall outside by chance, per quantity."""


@dataclass
class Row:
    generation: int
    values: list[tuple[float, float, float]]
    """(theory, runs' mean, half-width of its 99% interval) per quantity."""
    agree: bool


@dataclass
class Agreement:
    """A closed form beside runs: one :class:`Row` per shown generation."""

    title: str
    quantities: list[str]
    rows: list[Row]
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def n_agree(self) -> int:
        return sum(r.agree for r in self.rows)

    @property
    def summary(self) -> str:
        both = " on every quantity" if len(self.quantities) > 1 else ""
        return (f"{self.n_agree}/{len(self.rows)} generations inside the 99% interval{both} "
                f"(about {len(self.quantities)}% of rows may fall outside by chance).")


def shown_generations(generations: int, at_most: int = 11) -> list[int]:
    """At most ``at_most`` generations spread from 0 to ``generations``, first and last kept."""
    points = np.linspace(0, generations, min(generations + 1, at_most)).round().astype(int)
    return sorted(set(int(t) for t in points))


def compare(title: str, quantities: dict[str, tuple[np.ndarray, np.ndarray]], generations: int,
            seconds: float, *, tol: float = 0.0) -> Agreement:
    """``quantities``: {name: (expected curve (T+1,), runs (seeds, T+1))}. A generation agrees
    when every expectation lies within ``Z99`` standard errors of its runs' mean (plus ``tol``,
    for a quantity that is exactly constant)."""
    rows = []
    for t in shown_generations(generations):
        values, ok = [], True
        for theory, runs in quantities.values():
            mean = float(runs[:, t].mean())
            half = float(Z99 * runs[:, t].std(ddof=1) / np.sqrt(len(runs)))
            ok &= bool(abs(mean - theory[t]) <= half + tol)
            values.append((float(theory[t]), mean, half))
        rows.append(Row(t, values, ok))
    return Agreement(title, list(quantities), rows, seconds)


# ---- the Gaussian MLE: closed form against the vectorised simulation -------------------------


def gaussian_agreement(*, n: int, generations: int, policy: str, dim: int, seeds: int,
                       unbiased: bool = False, temperature: float = 1.0,
                       seed: int = 0) -> Agreement:
    """E tr(Sigma_t) / d and E||mu_t - mu||^2 of a Gaussian MLE (identity covariance) beside
    ``seeds`` simulated runs."""
    from autophagy.theory import expected_gaussian_trajectory_from_truth, simulate_gaussian_loop

    cov = np.eye(dim)
    expected = expected_gaussian_trajectory_from_truth(
        n=n, generations=generations, policy=policy, cov=cov, unbiased=unbiased,
        temperature=temperature)
    start = time.perf_counter()
    sim = simulate_gaussian_loop(n=n, generations=generations, policy=policy, seeds=seeds,
                                 mean=np.zeros(dim), cov=cov, unbiased=unbiased,
                                 temperature=temperature, rng_seed=seed)
    seconds = time.perf_counter() - start
    return compare(
        f"Gaussian MLE, {policy}, n={n}, d={dim}: theory vs {seeds} simulated runs "
        f"({seconds:.2f} s)",
        {"E tr Σ_t / d": (expected.cov_trace_ratio, sim.cov_trace / dim),
         "E‖μ_t-μ‖²": (expected.mean_shift_sq, sim.mean_sq_error(np.zeros(dim)))},
        generations, seconds)


# ---- the KDE: closed form against the kde model through the loop -----------------------------


SET_VAR = Metric("set_var", lambda ctx: float(np.asarray(ctx.model.data_).var(0).mean()),
                 "per-coordinate MLE variance of the training set the KDE holds")


def kde_loop_moments(real: np.ndarray, bandwidth: float | str, lam: float | None,
                     generations: int, seeds: int) -> np.ndarray:
    """``v_t`` (seeds, T+1): the training set's variance in each of ``seeds`` runs of
    :class:`~autophagy.models.families.kde.KernelDensity` through the loop, on the fixed real
    sample ``real``, fully synthetic (``lam=None``) or mixed."""
    dataset = Dataset("kde-check", train=np.asarray(real, dtype=float),
                      test=np.asarray(real[:2], dtype=float))
    policy = (make_policy("fully_synthetic") if lam is None
              else make_policy("mixed", **{"lambda": lam}))
    runs = [CellRun(KernelDensity(bandwidth), dataset, policy,
                    LoopSettings(int(generations), seed),
                    EvalSettings(metrics=(SET_VAR,), n_samples=2))
            for seed in range(int(seeds))]
    return _curves(runs, "kde")


def kde_agreement(*, n: int, generations: int, h: float | None, rule: str, lam: float | None,
                  seeds: int, seed: int = 0) -> Agreement:
    """Expected variance of a KDE's training set (Fu et al., 2024) beside ``seeds`` loop runs."""
    from autophagy.theory.kde import expected_kde_trajectory

    if h is not None and not (np.isfinite(h) and h > 0):
        raise InputError(f"--h: h must be a positive number, got {h!r}")
    real = np.random.default_rng(seed).standard_normal((n, 1))
    kwargs = {"h": h} if h is not None else {"rule": rule}
    theory, _ = expected_kde_trajectory(n=n, generations=generations,
                                        real_var=float(real.var()), lam=lam, **kwargs)
    start = time.perf_counter()
    v = kde_loop_moments(real, h if h is not None else rule, lam, generations, seeds)
    seconds = time.perf_counter() - start
    loop = "fully synthetic" if lam is None else f"mixed lambda={lam:g}"
    width = f"h={h:g}" if h is not None else f"rule {rule}"
    out = compare(f"KDE, {loop}, {width}, n={n}: E v_t (the training set's variance) vs "
                  f"{seeds} runs of the loop ({seconds:.1f} s)",
                  {"E v_t": (theory, v)}, generations, seconds, tol=1e-12)
    if h is not None and lam is None:
        out.notes.append(f"fixed width, fully synthetic: settles at (n-1) h^2 = "
                         f"{(n - 1) * h * h:.4g}")
    elif lam is None:
        out.notes.append("rule-of-thumb width, fully synthetic: grows geometrically, by "
                         f"{theory[-1] / theory[-2]:.4g} a generation ((n-1) h^2 for a fixed h)")
    else:
        out.notes.append(f"real data each generation: bounded (limit {theory[-1]:.4g} here; "
                         "(n-1) h^2 is the fully synthetic fixed-width limit)")
    return out


# ---- linear regression: closed form against the linear_regression model through the loop ----


REGRESSION_EVAL = EvalSettings(metrics=("test_error",), n_samples=2)


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
    shared = None if design_seed is None else _regression_data(n, dim, noise, design_seed)
    runs = [
        CellRun(LinearRegression(noise_std=noise),
                shared if shared is not None else _regression_data(n, dim, noise, seed), pol,
                LoopSettings(int(generations), seed), REGRESSION_EVAL)
        for seed in range(int(seeds))
    ]
    return _curves(runs, "regression")


def regression_agreement(*, n: int, dim: int, noise: float, generations: int,
                         seeds: int) -> Agreement:
    """Test error of least squares refit on its own labels (Gerstgrasser et al., 2024), replace
    against accumulate, beside ``seeds`` loop runs per policy."""
    from autophagy.theory.regression import (
        ACCUMULATE_BOUND,
        expected_regression_error,
        regression_error_constant,
    )

    c = regression_error_constant(n, dim, noise)
    if seeds < 2:
        raise InputError(f"--seeds: need at least 2 runs, got {seeds}")
    start = time.perf_counter()
    quantities = {}
    for policy, name in (("fully_synthetic", "replace"), ("accumulate", "accumulate")):
        runs = regression_loop_errors(policy, n=n, dim=dim, generations=generations,
                                      seeds=seeds, noise=noise)
        theory = expected_regression_error(policy, n=n, dim=dim, generations=generations,
                                           noise=noise)
        quantities[name] = (theory, runs)
    seconds = time.perf_counter() - start
    out = compare(f"Linear regression, T={n}, d={dim}, sigma={noise:g}: test error vs "
                  f"{seeds} runs of the loop per policy ({seconds:.1f} s)",
                  quantities, generations, seconds)
    out.notes.append(f"C = sigma^2 d / (T - d - 1) = {c:.4g}: replacing adds C a generation; "
                     f"accumulating stays below pi^2/6 C = {ACCUMULATE_BOUND * c:.4g}")
    return out


def _regression_data(n: int, dim: int, noise: float, seed: int):
    return load_dataset("linear_regression", n_train=n, n_test=2, seed=seed, dim=dim,
                        noise=noise)


def _curves(runs: list[CellRun], what: str) -> np.ndarray:
    """Each run's one metric per generation, (runs, T+1); a run that did not finish is an error."""
    out = []
    for result in run_cells(runs):
        if result.status != "done":
            raise InputError(f"the {what} loop {result.status}: {result.message}")
        out.append(result.metrics.sort_values("generation")["value"].to_numpy())
    return np.array(out)


# ---- the unigram: vanishing tails, against the ngram model through the loop -----------------


def unigram_agreement(*, n: int, block_len: int, vocab: int, exponent: float, generations: int,
                      lam: float | None, seeds: int, seed: int = 0) -> Agreement:
    """Expected types a refitted unigram keeps and shows (:mod:`autophagy.theory.text`) beside
    ``seeds`` runs of the ``ngram`` model (order 1) through the loop, on one real sample of
    ``n`` Zipf blocks, fully synthetic (``lam=None``) or mixed."""
    from autophagy.models.families.ngram import NGram
    from autophagy.theory.text import expected_surviving_types, expected_types_seen

    if seeds < 2:
        raise InputError(f"--seeds: need at least 2 runs, got {seeds}")
    real = load_dataset("zipf", n_train=n, n_test=2, seed=seed, vocab_size=vocab,
                        exponent=exponent, block_len=block_len)
    counts = np.bincount(real.train.ravel(), minlength=vocab)
    policy = (make_policy("fully_synthetic") if lam is None
              else make_policy("mixed", **{"lambda": lam}))
    m = policy.mixing().n_synthetic(n) * block_len
    anchor = None if lam is None else counts
    n_eval = n
    ev = EvalSettings(metrics=("model_types", "types"), n_samples=n_eval)
    start = time.perf_counter()
    runs = [CellRun(NGram(order=1), real, policy, LoopSettings(int(generations), s), ev)
            for s in range(int(seeds))]
    curves = {name: [] for name in ("model_types", "types")}
    for result in run_cells(runs):
        if result.status != "done":
            raise InputError(f"the unigram loop {result.status}: {result.message}")
        frame = result.metrics.sort_values("generation")
        for name in curves:
            curves[name].append(frame[frame.metric == name]["value"].to_numpy())
    seconds = time.perf_counter() - start
    loop = "fully synthetic" if lam is None else f"mixed lambda={lam:g}"
    out = compare(
        f"Unigram (ngram order 1), {loop}, {n} blocks of {block_len} Zipf({exponent:g}) tokens "
        f"on {vocab} types: expected types vs {seeds} runs of the loop ({seconds:.1f} s)",
        {"E types kept": (expected_surviving_types(counts, m, generations, anchor),
                          np.array(curves["model_types"])),
         "E types in samples": (expected_types_seen(counts, m, generations, n_eval * block_len,
                                                    anchor), np.array(curves["types"]))},
        generations, seconds, tol=1e-9)
    out.notes.append("fully synthetic, a lost type is lost for good; with real data none is, "
                     "and the expected tail mass never moves (a martingale)")
    return out
