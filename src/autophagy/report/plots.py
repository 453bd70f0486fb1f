"""Figures of a self-consuming run: metric curves per label and sample grids per generation.

Everything here is a pure function of in-memory frames and arrays that returns a matplotlib
:class:`~matplotlib.figure.Figure`. Figures are built without pyplot, so the report never touches
the user's backend or global figure list (it works headless, in threads, and inside notebooks).

Every figure of one report takes its colours from one :func:`label_colors` mapping, so a label
keeps its colour from the curves to the sample grid. Each policy declares its colour and legend
order (``Policy.color``, ``Policy.order``): mixed lambdas on a sequential colormap (dark = little
synthetic data), other policies in distinct colours, fully synthetic last in red.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from autophagy.atomic import atomic_open
from autophagy.errors import InputError, WriteError
from autophagy.report.runs import RunStyle, base_label, label_styles, run_legend

SPARE_COLORS = ("#9467bd", "#bcbd22", "#17becf", "#1f77b4", "#2ca02c")

SE_MIN_SEEDS = 5
"""From this many seeds the band is ±1 standard error; below it, min–max (an s.e. of 2 is noise)."""
LEGEND_INSIDE_UP_TO = 4
"""Legends with more entries go outside the axes, where they cannot hide a curve."""
MARKERS_UP_TO = 15
"""Curves with at most this many generations get markers (so one generation is still visible)."""


def _title(metric: str) -> str:
    """The registered metric's human name (``Metric.title``); an unregistered one's key."""
    from autophagy.metrics import find_metric

    entry = find_metric(metric)
    return entry.title if entry is not None else metric


def metric_title(metric: str) -> str:
    """Human name of a metric with its key, e.g. ``"Wasserstein-2 distance (w2)"``."""
    name = _title(metric)
    return f"{name} ({metric})" if name != metric else metric


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def order_metrics(names: Sequence[str]) -> list[str]:
    """Registered metrics by their ``Metric.order`` (distances first), then the rest alphabetically.

    Each name once; ties in ``order`` are broken by name.
    """
    from autophagy.metrics import find_metric

    def key(name: str) -> tuple[int, float, str]:
        entry = find_metric(name)
        return (0, entry.order, name) if entry is not None else (1, 0.0, name)

    return sorted(set(names), key=key)


def label_colors(*frames: pd.DataFrame) -> dict[str, str]:
    """Ordered ``{label: hex colour}`` for every label in ``frames`` (cells, metrics, ...).

    Labels are sorted by policy (each policy's ``order``, then name; fully
    synthetic last), then lambda (NaN last), then name. Mixed lambdas are spread over a sequential
    colormap by rank so neighbouring lambdas stay distinguishable; several labels of another policy
    get shades of that policy's colour. Pass the same mapping to every figure of a report.
    """
    if styles := label_styles(*frames):  # a comparison: a label's colour is its run's label's
        return _colors_across_runs(frames, styles)
    from autophagy.analysis.stability import ordered_labels, policy_style

    table = ordered_labels(*frames)
    if not len(table):
        return {}
    styles = {p: policy_style(str(p)) for p in table["policy"].unique()}

    colors: dict[str, str] = {}
    spare = iter(SPARE_COLORS * 4)
    for policy, group in table.groupby("policy", sort=False):
        labels = list(group["label"])
        color = styles[policy][1]
        if color in matplotlib.colormaps:
            cmap = matplotlib.colormaps[color]
            positions = np.linspace(0.0, 0.8, len(labels)) if len(labels) > 1 else [0.45]
            colors.update({lab: to_hex(cmap(p)) for lab, p in zip(labels, positions, strict=True)})
        else:
            base = color or next(spare)
            colors.update({lab: _shade(base, i, len(labels)) for i, lab in enumerate(labels)})
    return colors


def _colors_across_runs(
    frames: Sequence[pd.DataFrame | None], styles: Mapping[str, RunStyle]
) -> dict[str, str]:
    """The same colour for the same label in every run (``a: mixed λ=0.5`` and ``b: mixed
    λ=0.5``), ordered by that label, then by run; the runs differ by line style and marker."""
    bases = [
        f.drop(columns="run").assign(label=[base_label(str(lab), styles.get(str(lab)))
                                            for lab in f["label"]])
        for f in frames if f is not None and len(f)
    ]
    colors = label_colors(*bases)
    rank = {lab: i for i, lab in enumerate(colors)}
    runs = {style: i for i, style in enumerate(run_legend(styles))}
    ordered = sorted(styles, key=lambda lab: (rank.get(base_label(lab, styles[lab]), len(rank)),
                                              runs[styles[lab]]))
    return {lab: colors[base_label(lab, styles[lab])] for lab in ordered}


def _shade(color: str, i: int, k: int) -> str:
    """The i-th of k shades of ``color``, from the colour itself towards black."""
    if k == 1:
        return to_hex(color)
    t = 0.5 * i / (k - 1)
    return to_hex(tuple((1 - t) * c for c in to_rgb(color)))


def _resolve_colors(labels: Sequence[str], colors: Mapping[str, str] | None) -> dict[str, str]:
    colors = dict(colors or {})
    spare = iter(["#1f77b4", "#d62728", "#2ca02c", *SPARE_COLORS, "#ff7f0e", "#8c564b"] * 8)
    ordered = [lab for lab in colors if lab in set(labels)]
    ordered += [lab for lab in labels if lab not in colors]
    return {lab: colors[lab] if lab in colors else next(spare) for lab in ordered}


def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def band_kind(n_seeds: int) -> str:
    """Which band a curve over ``n_seeds`` seeds gets: ``"se"``, ``"minmax"`` or ``"none"``."""
    if n_seeds >= SE_MIN_SEEDS:
        return "se"
    return "minmax" if n_seeds >= 2 else "none"


def curve_stats(metrics: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per (label, generation): ``mean``, ``lo``, ``hi``, ``n`` over seeds of the finite values.

    Infinities count as missing, so one diverged seed leaves a gap instead of an infinite mean.
    The band is ±1 standard error from :data:`SE_MIN_SEEDS` seeds of the label, else min–max.
    """
    rows = metrics.loc[metrics["metric"] == metric, ["label", "cell", "generation", "value"]]
    rows = rows.assign(value=rows["value"].astype(float).replace([np.inf, -np.inf], np.nan))
    seeds = rows.groupby("label")["cell"].nunique()
    stats = (
        rows.dropna(subset=["value"])
        .groupby(["label", "generation"])["value"]
        .agg(mean="mean", std="std", lo="min", hi="max", n="count")
        .reset_index()
    )
    use_se = stats["label"].map(seeds).fillna(0).map(band_kind).eq("se")
    se = stats["std"].fillna(0.0) / np.sqrt(stats["n"].clip(lower=1))
    stats.loc[use_se, "lo"] = stats["mean"] - se
    stats.loc[use_se, "hi"] = stats["mean"] + se
    return stats.drop(columns="std")


def plot_metric_curves(
    metrics: pd.DataFrame,
    metric: str,
    *,
    theory: pd.DataFrame | None = None,
    ax: Axes | None = None,
    colors: Mapping[str, str] | None = None,
    styles: Mapping[str, RunStyle] | None = None,
) -> Figure:
    """``metric`` against generation: one line per label (mean over seeds) with a band.

    The band is ±1 standard error with at least :data:`SE_MIN_SEEDS` seeds, min–max below (the
    title says which). ``theory`` rows for this metric are drawn dashed in the label's colour. The
    y axis is logarithmic when all values are positive and span more than two decades, since
    collapse is geometric in the generation. ``colors`` (from :func:`label_colors`) fixes the label
    order and colours across figures; ``styles`` (default: from the ``run`` column of a
    comparison, :func:`autophagy.report.runs.label_styles`) gives each run its line style and
    marker, on every line whatever the number of generations.
    """
    fig, ax = _new_axes(ax, (6.4, 4.0))
    stats = curve_stats(metrics, metric)
    rows = metrics[metrics["metric"] == metric]
    expected = theory[theory["metric"] == metric] if theory is not None and len(theory) else None
    present = [*rows["label"], *([] if expected is None else expected["label"])]
    palette = _resolve_colors(list(dict.fromkeys(present)), colors or label_colors(rows))
    n_gens = stats["generation"].nunique()
    styles = label_styles(rows) if styles is None else styles
    step = max(1, math.ceil(n_gens / MARKERS_UP_TO))  # markers on at most ~15 generations
    runs = {style: i for i, style in enumerate(run_legend(styles))}

    handles: list[Any] = []
    for label, color in palette.items():
        curve = stats[stats["label"] == label].sort_values("generation")
        if curve.empty:
            continue
        style = styles.get(str(label))
        if style is None:
            ls, marker, every = "-", ("o" if n_gens <= MARKERS_UP_TO else None), None
        else:  # a comparison: the run's dashes and marker, markers staggered between runs
            ls, marker, every = style.linestyle, style.marker, (runs[style] % step, step)
        (line,) = ax.plot(
            curve["generation"],
            curve["mean"],
            color=color,
            lw=1.8,
            ls=ls,
            marker=marker,
            markevery=every,
            ms=3.5 if style is None else 4.5,
            label=str(label),
        )
        if (curve["hi"] > curve["lo"]).any():
            ax.fill_between(
                curve["generation"], curve["lo"], curve["hi"], color=color, alpha=0.18, lw=0
            )
        handles.append(line)

    has_theory = False
    if expected is not None:
        for label, color in palette.items():
            curve = expected[expected["label"] == label].sort_values("generation")
            if curve.empty:
                continue
            ax.plot(
                curve["generation"],
                curve["value"],
                color=color,
                lw=1.4,
                ls="--",
                label="_nolegend_",
            )
            has_theory = True
    if has_theory:
        handles.append(Line2D([], [], color="0.3", lw=1.4, ls="--", label="theory (expected)"))

    # The decision looks at the lines, not the bands: a noisy min-max band reaching near zero
    # should not turn a one-decade curve into a log plot.
    values = np.concatenate(
        [stats["mean"].to_numpy(float)]
        + ([expected["value"].to_numpy(float)] if has_theory else [])
    )
    if use_log_scale(values):
        ax.set_yscale("log")

    ax.set_xlabel("generation")
    ax.set_ylabel(metric_title(metric))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3, lw=0.6)
    ax.set_title(
        f"{_capital(_title(metric))} across generations\n{_band_note(rows)}",
        fontsize=10,
    )
    if not handles:
        ax.text(
            0.5,
            0.5,
            "no finite values",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="0.4",
        )
    elif len(handles) > LEGEND_INSIDE_UP_TO:
        ax.legend(
            handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False
        )
    else:
        ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.85)
    return fig


def use_log_scale(values: np.ndarray, decades: float = 2.0) -> bool:
    """Whether finite ``values`` are all positive and span more than ``decades`` decades."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    return bool(len(values)) and values.min() > 0 and values.max() / values.min() > 10**decades


def _band_note(rows: pd.DataFrame) -> str:
    """Subtitle saying how many seeds each line averages and what the band is."""
    seeds = rows.groupby("label")["cell"].nunique()
    if seeds.empty:
        return ""
    count = _seed_range(seeds)
    kinds: dict[str, list[int]] = {}
    for n in seeds:
        kinds.setdefault(band_kind(int(n)), []).append(int(n))
    band = {"se": "band ±1 s.e.", "minmax": "band min–max", "none": "no band"}
    if len(kinds) == 1:  # one kind: say it once
        (kind,) = kinds
        if kind == "none":
            return "one seed per line, no band"
        return f"line = mean over {count}; {band[kind]}"
    parts = [f"{band[k]} ({_seed_range(pd.Series(kinds[k]))})"
             for k in ("se", "minmax", "none") if k in kinds]
    return f"line = mean over {count}; " + ", ".join(parts)


def _seed_range(seeds: pd.Series) -> str:
    """``3 seeds``, ``1 seed`` or ``2–4 seeds``."""
    lo, hi = int(seeds.min()), int(seeds.max())
    return f"{lo} seed{'s' * (lo != 1)}" if lo == hi else f"{lo}–{hi} seeds"


def plot_sample_grid(
    samples: Mapping[str, Mapping[int, np.ndarray]],
    *,
    labels: Mapping[str, str],
    real: np.ndarray | None = None,
    generations: Sequence[int] | None = None,
    max_cols: int = 6,
    colors: Mapping[str, str] | None = None,
    seeds: Mapping[str, int] | None = None,
    max_points: int = 1000,
) -> Figure:
    """Scatter grid of 2-D samples: one row per label (its lowest seed), one column per generation.

    Columns are ``generations`` or up to ``max_cols`` generations evenly spaced from the first to
    the last. All panels share square limits from robust percentiles of ``real`` (drawn on top
    as small black dots, so dense samples never hide it), so shrinking or spreading shows as
    such; a panel says what share of its points falls outside. ``seeds`` picks the lowest seed
    per label (default: the naturally sorted cell id); ``max_points`` subsamples large sets to
    keep the PNG light.
    """
    if max_cols < 1:
        raise InputError(f"max_cols must be >= 1, got {max_cols}")
    rows = _representative_cells(samples, labels, seeds)
    palette = _resolve_colors(list(rows), colors)
    rows = {lab: rows[lab] for lab in palette}
    gens = _pick_generations(samples, rows.values(), generations, max_cols)
    limits = _limits(real, samples, rows.values(), gens)

    n_rows, n_cols = max(len(rows), 1), max(len(gens), 1)
    fig = Figure(figsize=(1.9 * n_cols + 0.9, 1.9 * n_rows + 0.5), layout="constrained")
    axes = np.atleast_2d(fig.subplots(n_rows, n_cols, squeeze=False))
    real_pts = None if real is None else _subsample(np.asarray(real, float), max_points)
    for i, (label, cell) in enumerate(rows.items()):
        for j, gen in enumerate(gens):
            ax = axes[i, j]
            points = samples[cell].get(gen)
            if points is None or len(points) == 0:
                ax.text(
                    0.5,
                    0.5,
                    "no samples",
                    transform=ax.transAxes,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="0.4",
                )
            else:
                pts = _subsample(np.asarray(points, float), max_points)
                ax.scatter(
                    pts[:, 0],
                    pts[:, 1],
                    s=1.5,
                    color=palette[label],
                    alpha=0.7,
                    lw=0,
                    rasterized=True,
                )
                outside = _outside_share(pts, limits)
                if outside >= 0.01:
                    ax.text(
                        0.97,
                        0.03,
                        f"{outside:.0%} outside",
                        transform=ax.transAxes,
                        ha="right",
                        va="bottom",
                        fontsize=6.5,
                        color="0.3",
                    )
            if real_pts is not None:  # on top, small and dark: samples never hide the truth
                ax.scatter(real_pts[:, 0], real_pts[:, 1], s=0.6, c="black", alpha=0.6, lw=0,
                           zorder=3, rasterized=True)
            ax.set_xlim(*limits[0])
            ax.set_ylim(*limits[1])
            ax.set_aspect("equal", adjustable="box")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"generation {gen}", fontsize=9)
            if j == 0:
                ax.set_ylabel(str(label), fontsize=9, color=palette[label])
    if not rows:
        axes[0, 0].axis("off")
        axes[0, 0].text(0.5, 0.5, "no samples", ha="center", va="center")
    fig.suptitle("Samples across generations (black dots on top: held-out real data)"
                 if real is not None else "Samples across generations", fontsize=10)
    return fig


def _representative_cells(
    samples: Mapping[str, Mapping[int, np.ndarray]],
    labels: Mapping[str, str],
    seeds: Mapping[str, int] | None,
) -> dict[str, str]:
    """The lowest-seed cell with samples for each label, labels in first-seen order."""

    def key(cell: str) -> tuple:
        if seeds is not None and cell in seeds:
            return (0, int(seeds[cell]), cell)
        return (1, 0, *_natural_key(cell))

    chosen: dict[str, str] = {}
    for cell in sorted((c for c in samples if samples[c]), key=key):
        chosen.setdefault(labels.get(cell, cell), cell)
    firsts = list(dict.fromkeys(labels.get(c, c) for c in samples))
    return {lab: chosen[lab] for lab in firsts if lab in chosen}


def _natural_key(text: str) -> list:
    """Sort key that puts "seed2" before "seed10"."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text) if t]


def _pick_generations(
    samples: Mapping[str, Mapping[int, np.ndarray]],
    cells: Any,
    generations: Sequence[int] | None,
    max_cols: int,
) -> list[int]:
    if generations is not None:
        return [int(g) for g in generations]
    available = sorted({int(g) for cell in cells for g in samples[cell]})
    if len(available) <= max_cols:
        return available
    picks = np.unique(np.round(np.linspace(0, len(available) - 1, max_cols)).astype(int))
    return [available[i] for i in picks]


def _limits(
    real: np.ndarray | None,
    samples: Mapping[str, Mapping[int, np.ndarray]],
    cells: Any,
    gens: Sequence[int],
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Square limits from the 0.5–99.5 percentiles of the real data (or the first generation)."""
    if real is not None and len(real):
        ref = np.asarray(real, float)
    else:
        first = [samples[c].get(gens[0]) for c in cells] if gens else []
        first = [np.asarray(p, float) for p in first if p is not None and len(p)]
        ref = np.concatenate(first) if first else np.zeros((1, 2))
    ref = ref[np.isfinite(ref).all(axis=1)]
    if not len(ref):
        ref = np.zeros((1, 2))
    lo, hi = np.percentile(ref[:, :2], [0.5, 99.5], axis=0)
    center, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 1e-6) * 1.1
    return ((center[0] - half, center[0] + half), (center[1] - half, center[1] + half))


def _subsample(points: np.ndarray, max_points: int) -> np.ndarray:
    """Evenly strided subset: deterministic and representative of a shuffled sample."""
    if len(points) <= max_points:
        return points
    return points[:: math.ceil(len(points) / max_points)]


def _outside_share(points: np.ndarray, limits: tuple[tuple[float, float], ...]) -> float:
    (x0, x1), (y0, y1) = limits
    x, y = points[:, 0], points[:, 1]
    inside = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    return float(1.0 - inside.mean())


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 120) -> Path:
    """Write ``fig`` as PNG atomically (see :func:`atomic_open`) and close it.

    A reader (a browser, a report being rebuilt while a sweep runs) never sees half a PNG, and
    closing keeps long sweeps from accumulating figures in memory.
    """
    try:
        with atomic_open(path, "wb") as handle:
            fig.savefig(handle, format="png", dpi=dpi, bbox_inches="tight")
    except OSError as err:  # a full disk or a read-only folder: one line naming the figure
        raise WriteError.of(err, path) from err
    finally:
        _close(fig)
    return Path(path)


def _close(fig: Figure) -> None:
    """Release a figure pyplot may be tracking; a bare :class:`Figure` needs nothing."""
    if getattr(fig.canvas, "manager", None) is not None:
        import matplotlib.pyplot as plt

        plt.close(fig)
