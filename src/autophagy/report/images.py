"""Sample grids of images as PNG files, so a run's generations can be looked at side by side.

Images are (n, C, H, W) arrays in [-1, 1] (the range of ``Dataset(kind="images")``); C is 1
(grey) or 3 (RGB). Tiny images are upscaled by pixel repetition (nearest neighbour), never
smoothed, so an 8x8 digit shows its real pixels. Files are written atomically, so a report page
being refreshed mid-run never shows half a PNG.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from autophagy.atomic import atomic_open
from autophagy.errors import InputError

MIN_TILE = 64
"""Images smaller than this many pixels a side are upscaled by an integer factor to reach it."""


def upscale_factor(height: int, width: int, min_tile: int = MIN_TILE) -> int:
    """The integer nearest-neighbour factor that makes the smaller side at least ``min_tile``."""
    return max(1, math.ceil(min_tile / max(1, min(height, width))))


def image_grid(
    images: np.ndarray,
    *,
    nrow: int | None = None,
    padding: int = 2,
    pad_value: float = 1.0,
    scale: int | None = None,
) -> np.ndarray:
    """Tile ``images`` into one (H', W', C) uint8 array, ``nrow`` images per row.

    ``nrow`` defaults to ceil(sqrt(n)) (a square-ish grid); ``scale`` to :func:`upscale_factor`.
    NaN becomes mid-grey and values are clipped to [-1, 1], so a diverged model still renders.
    ``padding`` pixels of ``pad_value`` (in [-1, 1]; 1 is white) separate the tiles.
    """
    x = np.asarray(images)
    if x.ndim == 3:  # (n, H, W): one grey channel
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 3) or len(x) == 0:
        raise InputError(
            f"images must be a non-empty array of shape (n, C, H, W) with C 1 or 3, got {x.shape}"
        )
    if x.dtype.kind not in "biuf":
        raise InputError(f"images must be numeric, got dtype {x.dtype}")
    n, c, h, w = x.shape
    nrow = math.ceil(math.sqrt(n)) if nrow is None else int(nrow)
    if nrow < 1:
        raise InputError(f"nrow must be an integer >= 1, got {nrow}")
    if padding < 0:
        raise InputError(f"padding must be >= 0, got {padding}")
    scale = upscale_factor(h, w) if scale is None else int(scale)
    if scale < 1:
        raise InputError(f"scale must be an integer >= 1, got {scale}")
    ncol, nrows = min(nrow, n), math.ceil(n / nrow)

    x = np.nan_to_num(x.astype(np.float64), nan=0.0, posinf=1.0, neginf=-1.0).clip(-1.0, 1.0)
    pixels = np.rint((x + 1.0) * 127.5).astype(np.uint8).transpose(0, 2, 3, 1)  # (n, H, W, C)
    pixels = pixels.repeat(scale, axis=1).repeat(scale, axis=2)
    th, tw = h * scale, w * scale
    fill = np.uint8(np.rint((np.clip(pad_value, -1.0, 1.0) + 1.0) * 127.5))
    grid = np.full(
        (nrows * th + (nrows + 1) * padding, ncol * tw + (ncol + 1) * padding, c),
        fill,
        dtype=np.uint8,
    )
    for k in range(n):
        r, q = divmod(k, nrow)
        top, left = padding + r * (th + padding), padding + q * (tw + padding)
        grid[top : top + th, left : left + tw] = pixels[k]
    return grid


def save_image_grid(
    images: np.ndarray,
    path: str | os.PathLike,
    *,
    nrow: int | None = None,
    padding: int = 2,
    pad_value: float = 1.0,
    scale: int | None = None,
) -> Path:
    """Write ``images`` (n, C, H, W) in [-1, 1] as one PNG grid at ``path``; returns the path.

    See :func:`image_grid` for the layout. Grey images are saved as 8-bit grey PNGs, RGB as RGB.
    The write is atomic (a temporary file beside ``path``, then ``os.replace``).
    """
    from PIL import Image

    grid = image_grid(images, nrow=nrow, padding=padding, pad_value=pad_value, scale=scale)
    picture = Image.fromarray(grid[..., 0] if grid.shape[2] == 1 else grid)
    with atomic_open(path, "wb") as handle:
        picture.save(handle, format="PNG")
    return Path(path)


def plot_image_generations(
    samples: dict[str, dict[int, np.ndarray]],
    *,
    labels: dict[str, str],
    seeds: dict[str, int] | None = None,
    max_cols: int = 6,
    per_panel: int = 16,
):
    """Grid of image grids: one row per label (its lowest seed), one column per generation, so
    loss of diversity or quality reads left to right."""
    import matplotlib.pyplot as plt

    from autophagy.report.plots import _pick_generations, _representative_cells

    rows = _representative_cells(samples, labels, seeds)
    gens = _pick_generations(samples, rows.values(), None, max_cols)
    fig, axes = plt.subplots(
        len(rows), len(gens), figsize=(1.9 * len(gens), 2.0 * len(rows)), squeeze=False
    )
    for i, (label, cell) in enumerate(rows.items()):
        for j, gen in enumerate(gens):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if gen in samples[cell]:
                grid = image_grid(samples[cell][gen][:per_panel])
                ax.imshow(grid.squeeze(), cmap="gray" if grid.shape[-1] == 1 else None)
            if i == 0:
                ax.set_title(f"gen {gen}", fontsize=9)
            if j == 0:
                ax.set_ylabel(label, fontsize=9)
    fig.suptitle("Samples across generations", fontsize=10)
    fig.tight_layout()
    return fig
