"""Tail and diversity metrics: what self-consuming training takes away first.

Shumailov et al. (2024) saw the tails go before the bulk: a collapsing loop loses its rare modes
while the common ones still look right, and a distance such as W2 barely moves. These metrics
measure that directly:

- ``vendi``: the Vendi score (Friedman and Dieng, 2023), ``exp`` of the Shannon entropy of the
  eigenvalues of ``K / n`` for a similarity kernel with ``k(x, x) = 1``: the effective number of
  distinct samples, 1 when all are identical, n when all are orthogonal. The kernel here is an
  RBF whose bandwidth is the median pairwise distance of the held-out set (fixed over the
  generations of a cell, so the score is comparable between them).
- ``modes_covered``, ``rare_mode_mass``, ``off_mode_share``: for a dataset that knows its modes
  (``params["centres"]``, ``params["std"]`` and, for the rare modes, ``params["weights"]``:
  ``long_tail``, ``eight_gaussians``) each sample is put in its nearest mode when within
  :data:`MODE_RADIUS` standard deviations of its centre. A mode is covered when it holds at
  least one sample; the rare-mode mass is the share of samples in modes whose true weight is
  below :data:`RARE_WEIGHT` (the truth's own share is ``params["weights"]`` summed over them).
- ``acceptance_rate``: the share of its draws the ``verified`` policy's verifier passed (read
  from the policy state of the generation).
- ``min_weight``: the smallest mixture weight of a ``gmm`` model (a component starving);
  ``support_size``: the atoms a ``categorical`` model gives a positive probability.

Why a short function and not the ``vendi-score`` package (0.0.3): the score is ten lines of
numpy/scipy (an eigenvalue entropy); the package's ``score`` builds the kernel with a Python double
loop (half a million calls at n = 1000), its ``score_X`` drops its ``q`` argument, it imports
``scipy.sparse.csr``, a namespace SciPy deprecates, and it pulls in scikit-learn for one
normalisation. The function below is checked against the cases the score is defined by (identical
samples give 1, n orthogonal ones give n) and a hand-computed 2 x 2 case.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import eigvalsh
from scipy.spatial.distance import cdist, pdist

from autophagy.errors import InputError
from autophagy.metrics.base import EvalContext, Metric, MetricGroup, as_rows, metric_rng

__all__ = ["MODE_RADIUS", "RARE_WEIGHT", "TAIL_METRICS", "mode_counts", "vendi_score"]

VENDI_MAX_SAMPLES = 1000
"""The Vendi score subsamples each set to this size: one 1000 x 1000 eigenproblem, ~0.2 s."""
MODE_RADIUS = 3.0
"""A sample belongs to a mode when within this many standard deviations of its centre."""
RARE_WEIGHT = 0.05
"""Modes whose true weight is below this are the rare ones (the tail)."""


def vendi_score(x: np.ndarray | None = None, *, kernel: np.ndarray | None = None,
                bandwidth: float | None = None) -> float:
    """The Vendi score of samples ``x`` (rows) under an RBF kernel, or of a given ``kernel``.

    ``VS = exp(-sum_i l_i log l_i)`` with ``l_i`` the eigenvalues of ``K / n`` (Friedman and
    Dieng, 2023, Definition 3.1); ``K`` must have a unit diagonal. For ``x``, ``K_ij =
    exp(-|x_i - x_j|^2 / (2 bandwidth^2))`` (``bandwidth`` default: the median pairwise
    distance of ``x``).

    Example:
        >>> vendi_score(kernel=np.ones((5, 5)))      # five identical samples
        1.0
        >>> round(vendi_score(kernel=np.eye(5)), 6)  # five orthogonal ones
        5.0
    """
    if kernel is None:
        if x is None:
            raise InputError("vendi_score needs samples x or a kernel")
        rows = as_rows(x)
        if bandwidth is None:
            d = pdist(rows)
            bandwidth = float(np.median(d)) if d.size else 1.0
        if not bandwidth > 0:
            raise InputError(f"bandwidth must be a positive number, got {bandwidth!r}")
        kernel = np.exp(-cdist(rows, rows, "sqeuclidean") / (2 * bandwidth**2))
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or len(k) == 0:
        raise InputError(f"kernel must be a non-empty square matrix, got shape {k.shape}")
    if not np.allclose(np.diag(k), 1.0):
        raise InputError("kernel must have a unit diagonal (k(x, x) = 1)")
    lam = eigvalsh(k / len(k))
    lam = lam[lam > 1e-12]
    return float(np.exp(-(lam * np.log(lam)).sum()))


def _vendi(ctx: EvalContext) -> float:
    rng = metric_rng(ctx, "vendi")
    samples, held = as_rows(ctx.samples), as_rows(ctx.held_out)
    if len(samples) > VENDI_MAX_SAMPLES:
        samples = samples[rng.choice(len(samples), VENDI_MAX_SAMPLES, replace=False)]
    # the first rows of the (i.i.d.) held-out set: the same bandwidth every generation
    bandwidth = ctx.memo("vendi_bandwidth",
                         lambda: float(np.median(pdist(held[:VENDI_MAX_SAMPLES]))))
    return vendi_score(samples, bandwidth=bandwidth)


def mode_counts(x: np.ndarray, centres: np.ndarray, std: float,
                radius: float = MODE_RADIUS) -> tuple[np.ndarray, int]:
    """Samples per mode (nearest centre, within ``radius * std``) and the count in no mode."""
    x, centres = as_rows(x), np.asarray(centres, dtype=np.float64)
    d = cdist(x, centres)
    nearest = d.argmin(axis=1)
    inside = d[np.arange(len(x)), nearest] <= radius * std
    counts = np.bincount(nearest[inside], minlength=len(centres))
    return counts, int((~inside).sum())


def _knows_modes(ctx: EvalContext) -> bool:
    params = getattr(ctx.dataset, "params", {}) or {}
    return "centres" in params and "std" in params and len(ctx.samples) > 0


def _knows_weights(ctx: EvalContext) -> bool:
    return _knows_modes(ctx) and "weights" in ctx.dataset.params


def _modes(ctx: EvalContext) -> dict[str, float]:
    params = ctx.dataset.params
    counts, outside = mode_counts(ctx.samples, params["centres"], float(params["std"]))
    n = len(ctx.samples)
    out = {"modes_covered": float((counts > 0).sum()), "off_mode_share": outside / n}
    if "weights" in params:
        rare = np.asarray(params["weights"]) < RARE_WEIGHT
        out["rare_mode_mass"] = float(counts[rare].sum() / n)
    return out


MODES = MetricGroup("modes", _modes)


def _has_weights(ctx: EvalContext) -> bool:
    return hasattr(getattr(ctx.model, "gmm_", None), "weights_")


def _finite_support(ctx: EvalContext) -> bool:
    return callable(getattr(ctx.model, "probabilities", None))


TAIL_METRICS: list[Metric] = [
    Metric("vendi", _vendi, "Vendi score of the samples: exp(entropy of the eigenvalues of K/n), "
           "RBF kernel at the held-out median distance (the effective number of distinct "
           "samples)", lower_is_better=False, title="Vendi score", order=160),
    MODES.metric("modes_covered", description="modes of the truth holding at least one sample "
                 f"(within {MODE_RADIUS:g} std of the centre); datasets that know their modes",
                 applies=_knows_modes, lower_is_better=False, title="modes covered", order=161),
    MODES.metric("rare_mode_mass", description="share of the samples in modes whose true weight "
                 f"is below {RARE_WEIGHT:g} (the tail); datasets that know their mode weights",
                 applies=_knows_weights, lower_is_better=False, title="mass of the rare modes",
                 order=162),
    MODES.metric("off_mode_share", description=f"share of the samples further than "
                 f"{MODE_RADIUS:g} std from every mode (hallucinated samples)",
                 applies=_knows_modes, title="share of samples off the modes", order=163),
    Metric("min_weight", lambda ctx: float(np.min(ctx.model.weights_)),
           "smallest mixture weight of a gmm model (a starving component)",
           applies=_has_weights, lower_is_better=False, title="smallest mixture weight",
           order=164),
    Metric("acceptance_rate", lambda ctx: float(ctx.policy_state["acceptance_rate"]),
           "share of the drawn synthetic samples the verified policy's verifier passed this "
           "generation", applies=lambda ctx: "acceptance_rate" in ctx.policy_state,
           lower_is_better=False, title="acceptance rate", order=166),
    Metric("support_size", lambda ctx: float(np.count_nonzero(ctx.model.probabilities() > 0)),
           "atoms a finite-support model gives a positive probability",
           applies=_finite_support, lower_is_better=False, title="support size", order=165),
]
