"""Precision, recall, density and coverage of a sample set against a real set, from features.

Definitions (identical to the ``prdc`` package, v0.2, which the tests use as the reference):
with ``r_k(x)`` the distance from ``x`` to its k-th nearest neighbour in its own set (the
(k+1)-th smallest distance, counting itself at 0),

- precision (Kynkäänniemi et al., 2019): share of fake points inside some real ball
  ``B(x_i, r_k(x_i))``: how much of the samples is realistic;
- recall (ibid.): share of real points inside some fake ball ``B(y_j, r_k(y_j))``: how much of the
  data the samples cover;
- density (Naeem et al., 2020): ``1/(k m) sum_j #{i : y_j in B(x_i, r_k(x_i))}``: precision that
  counts how many real balls hold each sample, robust to real outliers (can exceed 1);
- coverage (ibid.): share of real points whose ball holds at least one fake point: recall that is
  robust to fake outliers.

Why a re-implementation: ``prdc`` builds three dense n x m distance matrices with scikit-learn
(8 bytes an entry for float64, plus int64 argpartition indices), so 50,000 points need tens of
GB. Here every distance matrix is visited once, in row chunks of bounded size, with torch on the
inputs' device:

1. a fast pass in float32 (a single GEMM on augmented rows ``[-2x, |x|^2, 1] . [y, 1, |y|^2]``)
   gives approximate squared distances with a rigorous rounding-error bound ``eps``
   (Higham, *Accuracy and Stability of Numerical Algorithms*, 2002, sec. 3.1);
2. every decision that the bound cannot settle (a candidate near the k-th neighbour, a distance
   within ``eps`` of a radius) is recomputed in float64.

The values are therefore those of an all-float64 computation, and agree with ``prdc`` exactly,
except for distances tied with a radius to within about 1e-13. Radii and comparisons also mirror
scikit-learn's rounding: when both inputs are float32, ``prdc`` stores distances as float32
(computed in float64, then rounded), so a comparison ``d < r`` is taken on those float32 values;
this is done here by turning each radius into an exact float64 threshold on squared distances.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from autophagy.errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = ["prdc"]


_CHUNK_BYTES = 1 << 28
"""Memory for one chunk of the fast pass (float32 distances and two boolean masks)."""
_EXTRA_CANDIDATES = 4
"""Neighbour candidates kept beyond k+1 in the fast pass, so its ranking errors can be caught."""
_GROUP = 64
"""Columns per group in the two-stage nearest-candidate search."""


def prdc(
    real_features: Any,
    fake_features: Any,
    k: int = 5,
    *,
    device: Any = None,
    chunk_size: int | None = None,
) -> dict[str, float]:
    """Precision, recall, density and coverage of ``fake_features`` against ``real_features``.

    Both are (n, f) arrays (numpy or torch; other shapes are flattened to (n, -1)); ``k`` is the
    neighbour whose distance sets each ball's radius. Runs on ``device`` if given, else on the
    device of a torch input, else on the CPU; ``chunk_size`` (rows per chunk) defaults to what
    fits in about 256 MB. Returns floats under ``precision``, ``recall``, ``density``,
    ``coverage``, equal to ``prdc.compute_prdc(real, fake, k)``.

    Example:
        >>> prdc(real, fake, k=5)["coverage"]
    """
    import torch

    single = _is_float32(real_features) and _is_float32(fake_features)
    if device is None:  # the device of a torch input, else the CPU
        tensors = [a for a in (real_features, fake_features) if isinstance(a, torch.Tensor)]
        device = tensors[0].device if tensors else "cpu"
    x = _as_tensor(real_features, device)
    y = _as_tensor(fake_features, device)
    if x.shape[1] != y.shape[1]:
        raise InputError(f"feature dimensions differ: real {x.shape[1]}, fake {y.shape[1]}")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InputError(f"k must be a positive whole number, got {k!r}")
    n, m = len(x), len(y)
    if k >= min(n, m):
        raise InputError(f"k={k} needs more than k points in each set, got {n} real and {m} fake")
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise InputError("features must be finite")

    # Distances do not change under a common shift; centring shrinks norms and so the error bound.
    centre = torch.cat([x, y]).mean(0)
    x, y = x - centre, y - centre
    fast = _Fast(x, y)
    width = max(n, m)
    rows = chunk_size or max(1, _CHUNK_BYTES // (9 * width))
    rows = min(rows, width)
    # Reused buffers: fresh multi-MB tensors cost a page fault per 4 kB on every chunk.
    scratch = torch.empty(2 * rows * (width + _GROUP), dtype=fast.dtype, device=x.device)
    flags = torch.empty(rows * width, dtype=torch.bool, device=x.device)

    t_real = _thresholds(_radii(x, fast.left_x, fast.right_x, k, fast.eps, rows, scratch), single)
    t_fake = _thresholds(_radii(y, fast.left_y, fast.right_y, k, fast.eps, rows, scratch), single)
    t_real, t_fake = t_real.to(x.device), t_fake.to(x.device)

    counts_lo = torch.zeros(m, dtype=torch.int64, device=x.device)
    counts_hi = torch.zeros(m, dtype=torch.int64, device=x.device)
    covered = torch.zeros(n, dtype=torch.bool, device=x.device)
    recalled = torch.zeros(n, dtype=torch.bool, device=x.device)
    unsure_rows: list[torch.Tensor] = []
    t_real32, t_fake32 = t_real.to(fast.dtype), t_fake.to(fast.dtype)
    for start in range(0, n, rows):
        r = min(rows, n - start)
        sl = slice(start, start + r)
        d2 = torch.mm(fast.left_x[sl], fast.right_y.T, out=scratch[: r * m].view(r, m))
        below = flags[: r * m].view(r, m)
        lo = t_real32[sl] - fast.eps
        hi = t_real32[sl] + fast.eps
        counts_lo += _column_counts(torch.lt(d2, lo[:, None], out=below))
        counts_hi += _column_counts(torch.lt(d2, hi[:, None], out=below))
        nearest = d2.amin(1)
        covered[sl] = nearest < lo
        shifted = torch.sub(d2, t_fake32[None, :], out=scratch[r * m : 2 * r * m].view(r, m))
        margin = shifted.amin(1)
        recalled[sl] = margin < -fast.eps
        unsure = ((nearest >= lo) & (nearest < hi)) | ((margin >= -fast.eps) & (margin < fast.eps))
        unsure_rows.append(torch.nonzero(unsure)[:, 0] + start)
    del scratch, flags

    # Settle in float64 what the fast pass could not: whole rows, and whole columns of counts.
    exact_rows = max(1, rows // 4)  # float64 and temporaries: keep to the chunk's budget
    for part in torch.split(torch.cat(unsure_rows), exact_rows):
        d2 = _exact_d2(x[part], y)
        covered[part] = (d2 < t_real[part, None]).any(1)
        recalled[part] = (d2 < t_fake[None, :]).any(1)
    for part in torch.split(torch.nonzero(counts_lo != counts_hi)[:, 0], exact_rows):
        d2 = _exact_d2(y[part], x)  # (columns, n)
        counts_lo[part] = (d2 < t_real[None, :]).sum(1)

    return {
        "precision": float((counts_lo > 0).double().mean()),
        "recall": float(recalled.double().mean()),
        "density": float(counts_lo.sum().double() / (k * m)),
        "coverage": float(covered.double().mean()),
    }


def _column_counts(mask: torch.Tensor) -> torch.Tensor:
    """``mask.sum(0)``; on the CPU through numpy, whose boolean column sums are ~10x faster."""
    import torch

    if mask.device.type == "cpu":
        return torch.from_numpy(np.add.reduce(mask.numpy().view(np.uint8), 0, dtype=np.int64))
    return mask.sum(0)


class _Fast:
    """Augmented float32 rows for the fast pass, and the bound ``eps`` on its squared distances.

    With inputs rounded to float32 (relative error u = 2^-24) and a dot product of length
    K = f + 2, the computed ``|x|^2 + |y|^2 - 2 x.y`` is within ``(K + 2) u (|x| + |y|)^2`` of the
    float64 value, plus ``3 u (|x| + |y|)^2`` for rounding the inputs (Higham 2002, eq. 3.5); the
    thresholds it is compared with are rounded to float32 too. ``eps`` doubles the sum of all
    these, with ``S`` the largest norm in either set, so no decision it settles can be wrong.
    Off the CPU (GPUs have fast float64 and may use TF32 for float32), or where float32 matmuls
    may use reduced precision (``torch.set_float32_matmul_precision``), it runs in float64.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        import torch

        exact32 = torch.get_float32_matmul_precision() == "highest"
        self.dtype = torch.float32 if exact32 and x.device.type == "cpu" else torch.float64
        u = float(torch.finfo(self.dtype).eps) / 2
        xs, ys = x.to(self.dtype), y.to(self.dtype)
        nx = (xs.double() ** 2).sum(1, keepdim=True).to(self.dtype)
        ny = (ys.double() ** 2).sum(1, keepdim=True).to(self.dtype)
        self.left_x = torch.cat([-2 * xs, nx, torch.ones_like(nx)], 1)
        self.right_x = torch.cat([xs, torch.ones_like(nx), nx], 1)
        self.left_y = torch.cat([-2 * ys, ny, torch.ones_like(ny)], 1)
        self.right_y = torch.cat([ys, torch.ones_like(ny), ny], 1)
        s = float(max(x.norm(dim=1).max(), y.norm(dim=1).max()))
        k = x.shape[1] + 2
        self.eps = 2.0 * (k + 2 + 3 + 8) * u * (2 * s) ** 2 + 1e-300


def _radii(
    x: torch.Tensor,
    left: torch.Tensor,
    right: torch.Tensor,
    k: int,
    eps: float,
    rows: int,
    scratch: torch.Tensor,
) -> np.ndarray:
    """Squared distance from each point to its k-th neighbour in its own set (float64, (n,)).

    The fast pass keeps the k+1+4 nearest candidates of each row; their float64 distances give the
    (k+1)-th smallest, which is exact whenever it lies below ``lower - eps``, ``lower`` being a
    bound under which no other point's approximate distance falls. Other rows are redone in
    float64. Candidates are found in two stages (faster than one ``topk`` over whole rows): the
    minima of groups of 64 columns pick the c nearest groups, then ``topk`` runs inside them.
    """
    import torch

    n = len(x)
    c = min(n, k + 1 + _EXTRA_CANDIDATES)
    groups = -(-n // _GROUP)
    picked = min(c, groups)
    if groups * _GROUP > n:  # pad to whole groups with columns at infinite distance
        pad = torch.zeros(groups * _GROUP - n, right.shape[1], dtype=right.dtype, device=x.device)
        pad[:, -2], pad[:, -1] = 1.0, float("inf")
        right = torch.cat([right, pad])
    offsets = torch.arange(_GROUP, device=x.device)
    out = torch.empty(n, dtype=torch.float64, device=x.device)
    redo: list[torch.Tensor] = []
    for start in range(0, n, rows):
        r = min(rows, n - start)
        sl = slice(start, start + r)
        d2 = torch.mm(left[sl], right.T, out=scratch[: r * len(right)].view(r, len(right)))
        group_min, group = torch.topk(
            d2.view(r, groups, _GROUP).amin(2), picked, dim=1, largest=False, sorted=False
        )
        cols = (group[:, :, None] * _GROUP + offsets).view(r, picked * _GROUP)
        approx, pos = torch.topk(d2.gather(1, cols), c, dim=1, largest=False, sorted=False)
        idx = cols.gather(1, pos)
        kth = _pair_d2(x, start, idx).kthvalue(k + 1, dim=1).values
        out[sl] = kth
        if c < n:
            lower = approx.amax(1)
            if picked < groups:
                lower = torch.minimum(lower, group_min.amax(1))
            redo.append(torch.nonzero(kth >= lower.double() - eps)[:, 0] + start)
    for part in torch.split(torch.cat(redo), max(1, rows // 4)) if redo else []:
        out[part] = _exact_d2(x[part], x).kthvalue(k + 1, dim=1).values
    return out.cpu().numpy()


def _pair_d2(x: torch.Tensor, start: int, idx: torch.Tensor) -> torch.Tensor:
    """Float64 ``|x[start + i] - x[idx[i, j]]|^2``, (len(idx), c), in pieces of ~128 MB."""
    import torch

    step = max(1, (1 << 24) // max(1, idx.shape[1] * x.shape[1]))
    parts = []
    for i in range(0, len(idx), step):
        j = idx[i : i + step]
        parts.append(((x[start + i : start + i + len(j), None, :] - x[j]) ** 2).sum(-1))
    return torch.cat(parts)


def _exact_d2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Float64 squared distances (len(a), len(b)), as scikit-learn computes them."""
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * (a @ b.T)
    return d2.clamp_min_(0)


def _thresholds(kth_d2: np.ndarray, single: bool) -> torch.Tensor:
    """For each radius, the float64 ``t`` with ``d < r  <=>  d^2 < t`` for every squared distance.

    ``prdc`` compares Euclidean distances ``d = sqrt(max(d2, 0))``, rounded to float32 first when
    both inputs are float32 (scikit-learn's storage type). ``d2 -> d`` is non-decreasing, so the
    set of squared distances whose distance is below the radius is an interval ``[0, t)``; ``t``
    is found exactly by bisection on the bit patterns of non-negative float64 numbers.
    """
    import torch

    def dist(v: np.ndarray) -> np.ndarray:
        v = np.maximum(v, 0.0)
        return np.sqrt(v.astype(np.float32)) if single else np.sqrt(v)

    radius = dist(kth_d2)
    lo = np.zeros(len(radius), dtype=np.int64)  # dist(0) = 0 < r whenever r > 0
    hi = np.maximum(4.0 * kth_d2.astype(np.float64), 1e-300).view(np.int64)
    while True:
        open_ = hi - lo > 1
        if not open_.any():
            break
        mid = lo + (hi - lo) // 2
        below = dist(mid.view(np.float64)) < radius
        lo = np.where(open_ & below, mid, lo)
        hi = np.where(open_ & ~below, mid, hi)
    t = hi.view(np.float64).copy()
    t[radius <= 0] = 0.0  # no distance is below a zero radius
    return torch.from_numpy(t)


def _is_float32(a: Any) -> bool:
    dtype = getattr(a, "dtype", None)
    return str(dtype) in ("float32", "torch.float32")


def _as_tensor(a: Any, device: Any) -> torch.Tensor:
    import torch

    if isinstance(a, torch.Tensor):
        t = a.detach()
    else:
        t = torch.from_numpy(np.ascontiguousarray(np.asarray(a, dtype=np.float64)))
    t = t.to(dtype=torch.float64, device=device)
    return t.reshape(len(t), -1)
