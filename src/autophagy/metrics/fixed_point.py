"""Distance to the fixed point, per generation: what the stability theorem is about.

Bertrand et al. (ICLR 2024) bound ``||theta_t - theta*||``, the distance of generation t's
parameters to ``theta*``, the fit on the real data alone. In the loop that fit is generation 0
(``model.fit(real)``, computed once per cell), so these metrics keep generation 0's parameters in
the cell's ``reference`` and measure every later generation against them:

- ``theta_distance``: ``||theta_t - theta_0||`` in a parametrization chosen per family (below);
- ``theta_step``: ``||theta_t - theta_{t-1}||`` in the same norm. With the distances it gives the
  inner products ``<theta_t - theta*, theta_{t-1} - theta*> = (d_t^2 + d_{t-1}^2 - s_t^2) / 2``
  (polarization), so the contraction factor can be estimated from scalars alone
  (:mod:`autophagy.analysis.contraction`);
- ``function_distance`` / ``function_step``: the same pair in function space, for families that
  declare one (:func:`~autophagy.models.base.function_space`): what the model computes on probes
  fixed once per cell (half real held-out points, half generation-0 samples), the log-density of
  a flow, the denoiser or velocity of diffusion and flow matching at fixed (x, t) pairs. A
  network's weights are not identifiable (fine-tuning drifts along directions that change
  nothing the model does), its function is; these values are Euclidean, so polarization holds.
- ``gen0_mmd2`` / ``step_mmd2``: the same pair in distribution space, the unbiased squared MMD
  (U-statistic, RBF kernel with its bandwidth fixed at generation 0 by the median heuristic) of
  this generation's evaluation samples to generation 0's and to the previous generation's. MMD is
  a Hilbert-space distance, so the polarization identity holds for it too; it is the distance for
  families whose weights mean little (neural networks are not identifiable).

Parametrizations (each a Euclidean embedding, so the polarization above is exact):

- Gaussian MLE: whitened moments. With ``z = L*^{-1} (x - mu*)`` (``L*`` the Cholesky factor of
  ``Sigma*``), theta is ``(E z, E z z^T / sqrt 2)``. At theta* this norm is the Fisher-information
  norm, and the mixed loop is *exactly* linear in it: ``E[theta_t - theta* | theta_{t-1}] =
  k / (n + k) (theta_{t-1} - theta*)`` with k = floor(lambda n) (the pooled MLE matches moments).
- Gaussian mixture: per component (matched to theta*'s by the Hungarian algorithm), the
  complete-data Fisher norm at theta*: ``(w - w*) / sqrt(w*)``, ``sqrt(w*) L*^{-1} mu`` and
  ``sqrt(w* / 2) L*^{-1} Sigma L*^{-T}``.
- Kernel density estimate: the density itself, in L2 (closed form for Gaussian kernels).
- Neural families: the weights of the sampling module (the EMA copy when there is one), flat;
  generation 0's weights stand for theta*. Skipped above :data:`MAX_WEIGHTS` parameters (they
  would be copied into every checkpoint).
- Any model with a ``parameter_vector()`` method: that vector, Euclidean.

The state (generation 0's parameters, the previous generation's) lives in
``ctx.reference["fixed_point"]``, which the loop checkpoints, so a resumed cell measures exactly
as an uninterrupted one. The first generation these metrics see is taken as generation 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from autophagy.metrics.base import EvalContext, Metric, MetricGroup, as_rows, metric_rng
from autophagy.models.base import function_space

__all__ = [
    "FIXED_POINT_METRICS",
    "MAX_MMD_SAMPLES",
    "MAX_WEIGHTS",
    "STABILITY_METRICS",
    "gaussian_embedding",
    "kde_l2_inner",
    "model_parameters",
    "unbiased_mmd2",
]

MAX_WEIGHTS = 1_000_000
"""Neural models with more parameters than this get no ``theta_distance``."""
MAX_MMD_SAMPLES = 1000
"""Each sample set is subsampled to this size for ``gen0_mmd2`` / ``step_mmd2``."""
MAX_MMD_DIM = 256
"""Flattened sample dimension above which the MMD pair is skipped (image runs)."""
STATE_KEY = "fixed_point"
STABILITY_METRICS = ("theta_distance", "theta_step", "function_distance", "function_step",
                     "function_lag2")
"""Measured in every cell whose policy declares a mixing scheme, whatever ``eval.metrics`` lists:
the stability table needs them (each is skipped where it does not apply)."""


# ---- parametrizations ---------------------------------------------------------------------------


def _weights(model: Any) -> np.ndarray | None:
    module = getattr(model, "eval_module", None)
    if module is None or not hasattr(module, "parameters"):
        return None
    import torch

    with torch.no_grad():
        flat = [p.detach().float().reshape(-1).cpu() for p in module.parameters()]
    return torch.cat(flat).numpy().astype(np.float64) if flat else None


def model_parameters(model: Any) -> tuple[str, dict[str, np.ndarray]] | None:
    """``(family, parameters)`` of a fitted model, or None when it has no usable parametrization.

    ``family`` is one of ``"vector"`` (a ``parameter_vector()`` method), ``"gmm"``, ``"kde"``,
    ``"gaussian"``, ``"weights"`` (a torch model), checked in this order.
    """
    vector = getattr(model, "parameter_vector", None)
    if callable(vector):
        return "vector", {"theta": np.asarray(vector(), dtype=np.float64).reshape(-1)}
    try:
        if all(hasattr(model, a) for a in ("weights_", "means_", "covariances_")):
            return "gmm", {
                "weights": np.asarray(model.weights_, dtype=np.float64),
                "means": np.asarray(model.means_, dtype=np.float64),
                "covs": np.asarray(model.covariances_, dtype=np.float64),
            }
    except AttributeError:  # an unfitted mixture
        return None
    if hasattr(model, "data_") and hasattr(model, "kernel_cov_"):
        return "kde", {
            "data": np.asarray(model.data_, dtype=np.float64),
            "kernel_cov": np.asarray(model.kernel_cov_, dtype=np.float64),
        }
    mean, cov = getattr(model, "mean_", None), getattr(model, "cov_", None)
    if mean is not None and cov is not None:
        mean = np.asarray(mean, dtype=np.float64)
        cov = np.asarray(cov, dtype=np.float64)
        if mean.ndim == 1 and cov.shape == (len(mean), len(mean)):
            return "gaussian", {"mean": mean, "cov": cov}
    if getattr(model, "eval_module", None) is not None:
        weights = _weights(model)
        if weights is not None and len(weights) <= MAX_WEIGHTS:
            return "weights", {"theta": weights}
    return None


def _chol(cov: np.ndarray) -> np.ndarray:
    from autophagy.models.families.gaussian import safe_cholesky

    return safe_cholesky(np.asarray(cov, dtype=np.float64))


def gaussian_embedding(
    mean: np.ndarray, cov: np.ndarray, star_mean: np.ndarray, star_cov: np.ndarray
) -> np.ndarray:
    """Whitened moments ``(E z, vec(E z z^T) / sqrt 2)`` of N(mean, cov), z = L*^{-1}(x - mu*).

    Euclidean distances between embeddings are the Fisher-information norm at theta* (to first
    order), and the Gaussian MLE's pooling of real and synthetic data is linear in them.
    """
    chol = _chol(star_cov)
    a = np.linalg.solve(chol, np.asarray(mean) - np.asarray(star_mean))
    second = np.linalg.solve(chol, np.linalg.solve(chol, np.asarray(cov)).T).T + np.outer(a, a)
    return np.concatenate([a, second.reshape(-1) / np.sqrt(2.0)])


def _gmm_embedding(theta: dict[str, np.ndarray], star: dict[str, np.ndarray]) -> np.ndarray:
    """Complete-data Fisher coordinates at theta*, components matched to theta*'s."""
    w_star, m_star, c_star = star["weights"], star["means"], star["covs"]
    chols = np.stack([_chol(c) for c in c_star])
    # cost[i, j]: whitened squared distance of component i's mean to theta*'s component j
    diff = theta["means"][:, None, :] - m_star[None, :, :]
    white = np.stack([np.linalg.solve(chols[j], diff[:, j].T).T for j in range(len(w_star))], 1)
    rows, cols = linear_sum_assignment((white**2).sum(-1))
    parts = []
    for i, j in sorted(zip(rows, cols, strict=True), key=lambda p: p[1]):
        sw = np.sqrt(max(w_star[j], 1e-12))
        inv = np.linalg.inv(chols[j])
        parts += [
            [(theta["weights"][i] - w_star[j]) / sw],
            sw * (inv @ (theta["means"][i] - m_star[j])),
            sw / np.sqrt(2.0) * (inv @ theta["covs"][i] @ inv.T).reshape(-1),
        ]
    return np.concatenate([np.ravel(p) for p in parts])


def kde_l2_inner(a: dict[str, np.ndarray], b: dict[str, np.ndarray], chunk: int = 2048) -> float:
    """``<p_a, p_b>`` in L2 of two Gaussian KDEs: mean over pairs of N(x_i - y_j; 0, K_a + K_b)."""
    x, y = a["data"], b["data"]
    cov = a["kernel_cov"] + b["kernel_cov"]
    chol = _chol(cov)
    d = x.shape[1]
    logdet = 2.0 * np.log(np.abs(np.diag(chol))).sum()
    const = np.exp(-0.5 * (d * np.log(2 * np.pi) + logdet))
    xw = np.linalg.solve(chol, x.T).T
    yw = np.linalg.solve(chol, y.T).T
    yy = (yw**2).sum(1)
    total = 0.0
    for start in range(0, len(xw), chunk):
        block = xw[start : start + chunk]
        sq = (block**2).sum(1)[:, None] + yy[None, :] - 2.0 * block @ yw.T
        total += float(np.exp(-0.5 * np.maximum(sq, 0.0)).sum())
    return const * total / (len(x) * len(y))


# ---- the parameter pair: theta_distance, theta_step ---------------------------------------------


def _embed(family: str, theta: dict[str, np.ndarray], star: dict[str, np.ndarray]) -> np.ndarray:
    if family == "gaussian":
        return gaussian_embedding(theta["mean"], theta["cov"], star["mean"], star["cov"])
    if family == "gmm":
        return _gmm_embedding(theta, star)
    return theta["theta"]


def _same_shape(family: str, theta: dict, star: dict) -> bool:
    if family == "kde":
        return theta["data"].shape[1:] == star["data"].shape[1:]
    return all(np.shape(theta[k]) == np.shape(star[k]) for k in theta)


def _parameter_distances(ctx: EvalContext) -> dict[str, float]:
    found = model_parameters(ctx.model)
    state = ctx.reference.setdefault(STATE_KEY, {})
    if found is None:
        return {}
    family, theta = found
    saved = state.get("params")
    if saved is None or saved["family"] != family or not _same_shape(family, theta, saved["star"]):
        if family == "kde":
            norm = kde_l2_inner(theta, theta)
            saved = {"family": family, "star": theta, "star_norm": norm, "prev": theta,
                     "prev_norm": norm}
        else:
            saved = {"family": family, "star": theta, "prev": _embed(family, theta, theta)}
        state["params"] = saved
        return {"theta_distance": 0.0, "theta_step": 0.0}
    star = saved["star"]
    if family == "kde":
        own = kde_l2_inner(theta, theta)
        d2 = own + saved["star_norm"] - 2.0 * kde_l2_inner(theta, star)
        s2 = own + saved["prev_norm"] - 2.0 * kde_l2_inner(theta, saved["prev"])
        saved.update(prev=theta, prev_norm=own)
    else:
        here = _embed(family, theta, star)
        origin = _embed(family, star, star)
        d2 = float(np.sum((here - origin) ** 2))
        s2 = float(np.sum((here - saved["prev"]) ** 2))
        saved["prev"] = here
    return {"theta_distance": float(np.sqrt(max(d2, 0.0))),
            "theta_step": float(np.sqrt(max(s2, 0.0)))}


PARAMETERS = MetricGroup("fixed_point_parameters", _parameter_distances)


def _has_parameters(ctx: EvalContext) -> bool:
    return model_parameters(ctx.model) is not None


# ---- the function-space pair: function_distance, function_step ---------------------------------


def _function_distances(ctx: EvalContext) -> dict[str, float]:
    state = ctx.reference.setdefault(STATE_KEY, {})
    saved = state.get("function")
    if saved is None:
        probes = ctx.model.function_probes(metric_rng(ctx, "function_distance"),
                                           np.asarray(ctx.held_out), np.asarray(ctx.samples))
        values = np.asarray(ctx.model.function_values(probes), dtype=np.float64)
        state["function"] = {"probes": probes, "star": values, "prev": values}
        return {"function_distance": 0.0, "function_step": 0.0, "function_lag2": np.nan}
    values = np.asarray(ctx.model.function_values(saved["probes"]), dtype=np.float64)
    before = saved.get("prev2")
    out = {"function_distance": float(np.linalg.norm(values - saved["star"])),
           "function_step": float(np.linalg.norm(values - saved["prev"])),
           "function_lag2": np.nan if before is None else float(np.linalg.norm(values - before))}
    saved["prev2"], saved["prev"] = saved["prev"], values
    return out


FUNCTION = MetricGroup("fixed_point_function", _function_distances)


def _has_function_space(ctx: EvalContext) -> bool:
    return function_space(ctx.model) and len(ctx.held_out) > 0 and len(ctx.samples) > 0


# ---- the distribution pair: gen0_mmd2, step_mmd2 ------------------------------------------------


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2.0 * a @ b.T, 0.0)


def unbiased_mmd2(x: np.ndarray, y: np.ndarray, bandwidth: float) -> float:
    """Unbiased squared MMD (U-statistic: diagonal terms left out), RBF kernel
    ``exp(-||x - y||^2 / (2 h^2))``; may be slightly negative when the laws are equal."""
    gamma = 0.5 / bandwidth**2
    kxx = np.exp(-gamma * _sq_dists(x, x))
    kyy = np.exp(-gamma * _sq_dists(y, y))
    kxy = np.exp(-gamma * _sq_dists(x, y))
    n, m = len(x), len(y)
    within_x = (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within_x + within_y - 2.0 * kxy.mean())


def _sample_distances(ctx: EvalContext) -> dict[str, float]:
    x = as_rows(ctx.samples)
    rng = metric_rng(ctx, "gen0_mmd2")
    if len(x) > MAX_MMD_SAMPLES:
        x = x[rng.choice(len(x), MAX_MMD_SAMPLES, replace=False)]
    state = ctx.reference.setdefault(STATE_KEY, {})
    saved = state.get("samples")
    if saved is None or saved["gen0"].shape[1] != x.shape[1]:
        sub = x[: min(len(x), 500)]
        median = float(np.sqrt(np.median(_sq_dists(sub, sub)[np.triu_indices(len(sub), 1)])))
        state["samples"] = {"gen0": x, "prev": x, "bandwidth": max(median, 1e-12)}
        return {"gen0_mmd2": 0.0, "step_mmd2": 0.0}
    h = saved["bandwidth"]
    out = {"gen0_mmd2": unbiased_mmd2(x, saved["gen0"], h),
           "step_mmd2": unbiased_mmd2(x, saved["prev"], h)}
    saved["prev"] = x
    return out


SAMPLES = MetricGroup("fixed_point_samples", _sample_distances)


def _small_points(ctx: EvalContext) -> bool:
    x = np.asarray(ctx.samples)
    return len(x) >= 2 and int(np.prod(x.shape[1:])) <= MAX_MMD_DIM


FIXED_POINT_METRICS: list[Metric] = [
    PARAMETERS.metric(
        "theta_distance",
        description=(
            "||theta_t - theta*||: parameter distance to generation 0's fit on the real data "
            "(Gaussian: whitened moments, the Fisher norm at theta*; GMM: complete-data Fisher "
            "norm; KDE: L2 distance of densities; neural: weight distance)"
        ),
        applies=_has_parameters,
        title="distance to the fixed point θ*",
        order=170,
    ),
    PARAMETERS.metric(
        "theta_step",
        description="||theta_t - theta_{t-1}||: parameter step of one generation, same norm",
        applies=_has_parameters,
        title="parameter step of one generation",
        order=171,
    ),
    FUNCTION.metric(
        "function_distance",
        description=(
            "||f_t - f*||: distance to generation 0's model in function space, on probes fixed "
            "once per cell (half real held-out points, half generation-0 samples): flows, the "
            "log-density; diffusion and flow matching, the denoiser, noise or velocity at "
            "fixed (x, t) pairs; root mean square over the probes"
        ),
        applies=_has_function_space,
        title="distance to the fixed point in function space",
        order=168,
    ),
    FUNCTION.metric(
        "function_step",
        description="||f_t - f_{t-1}||: function-space step of one generation, same probes",
        applies=_has_function_space,
        title="function-space step of one generation",
        order=169,
    ),
    FUNCTION.metric(
        "function_lag2",
        description=("||f_t - f_{t-2}||: function-space step of two generations (from generation "
                     "2), for the variogram estimate of the contraction factor"),
        applies=_has_function_space,
        title="function-space step of two generations",
        order=169.5,
    ),
    SAMPLES.metric(
        "gen0_mmd2",
        description=(
            "unbiased squared MMD of the samples to generation 0's (RBF, bandwidth fixed at "
            "generation 0): distribution distance to the fixed point"
        ),
        applies=_small_points,
        title="squared MMD to generation 0",
        order=172,
    ),
    SAMPLES.metric(
        "step_mmd2",
        description="unbiased squared MMD of the samples to the previous generation's",
        applies=_small_points,
        title="squared MMD to the previous generation",
        order=173,
    ),
]
"""The fixed-point metrics, in the order the registry lists them."""
