"""The text figure: per-block perplexity of each generation's samples under generation 0.

Shumailov et al. (2024, Fig. 1b-c) draw, for every generation, the histogram of the perplexity
the *original* model gives each generated block: over generations the mass moves to text the
first model finds likely, and a tail of blocks it would never write appears. Here the same
histogram is drawn from a finished run alone: each cell's saved samples (every generation) are
scored by the generation-0 state the loop keeps in its checkpoints (``reference["model"]``), one
panel per label (its lowest seed), one line per generation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from autophagy.metrics.text import block_perplexities
from autophagy.report.plots import save_figure
from autophagy.run.cells import build_config_model
from autophagy.store import RunStore

MAX_LINES = 6
"""Generations drawn per panel (evenly spaced, first and last always)."""


def _gen0_scored(store: RunStore, model: Any) -> dict[str, dict[int, np.ndarray]]:
    """{label: {generation: per-block perplexities}} for each label's lowest seed."""
    cells = store.cells()
    if not len(cells) or "label" not in cells:
        return {}
    out: dict[str, dict[int, np.ndarray]] = {}
    for label, group in cells.sort_values("seed").groupby("label", sort=False):
        cell = store.cell(str(group["cell"].iloc[0]))
        latest = cell.latest()
        samples = cell.samples()
        if latest is None or not samples:
            continue
        state = latest[1].get("reference", {}).get("model")
        if state is None:
            continue
        vocab = int(state.get("vocab", 0)) or None
        out[str(label)] = {
            g: block_perplexities(model, np.rint(x).astype(np.int64),
                                  vocab or int(np.max(x)) + 1, reference=state)
            for g, x in sorted(samples.items())
        }
    return out


def text_figures(store: RunStore, fig_dir: Path) -> list[tuple[str, Path]]:
    """``[(caption, png)]``: the gen-0 perplexity histograms of a text run; ``[]`` for others."""
    config = store.config()
    try:
        model = build_config_model(config)
    except Exception:  # a plugin or a missing extra: the other figures still get drawn
        return []
    if not callable(getattr(model, "token_log_probs", None)):
        return []
    scored = _gen0_scored(store, model)
    if not scored:
        return []
    import matplotlib.pyplot as plt
    from matplotlib import colormaps

    everything = np.concatenate([v for per in scored.values() for v in per.values()])
    everything = everything[np.isfinite(everything)]
    bins = np.geomspace(max(everything.min(), 1.0), everything.max() * 1.01, 41)
    fig, axes = plt.subplots(1, len(scored), figsize=(4.2 * len(scored), 3.4), sharey=True,
                             squeeze=False)
    cmap = colormaps["viridis"]
    for ax, (label, per) in zip(axes[0], scored.items(), strict=True):
        gens = sorted(per)
        if len(gens) > MAX_LINES:
            gens = sorted({gens[int(round(i))] for i in np.linspace(0, len(gens) - 1,
                                                                    MAX_LINES)})
        last = max(gens) or 1
        for g in gens:
            ax.hist(per[g], bins=bins, histtype="step", density=False,
                    weights=np.full(len(per[g]), 1.0 / len(per[g])),
                    color=cmap(g / last), label=f"gen {g}")
        ax.set_xscale("log")
        ax.set_title(label)
        ax.set_xlabel("perplexity under generation 0")
    axes[0][0].set_ylabel("share of blocks")
    axes[0][-1].legend(fontsize=7)
    path = save_figure(fig, fig_dir / "gen0_perplexity.png")
    caption = ("Perplexity of each generated block under the generation-0 model, one histogram "
               "per generation (Shumailov et al. 2024, Fig. 1), each label's lowest seed.")
    return [(caption, path)]
