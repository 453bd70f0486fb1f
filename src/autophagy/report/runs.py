"""Telling runs apart in one figure (``autophagy compare``): a line style and a marker per run.

Why style, not colour: colour already says the policy and its lambda (dark = little synthetic
data), and the same lambda in two runs is the comparison a reader makes. So in a comparison a
label keeps the colour of its label without the run (``mixed λ=0.5`` is the same blue in every
run) and the run is told by the line's dashes and the marker's shape, which survive greyscale
printing and colour blindness too. A single run's figures are unchanged (no ``run`` column).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import pandas as pd

RUN_STYLES: tuple[tuple[Any, str], ...] = (
    ("-", "o"),
    ((0, (5, 2)), "s"),
    ((0, (1, 1.4)), "^"),
    ((0, (6, 2, 1, 2)), "D"),
    ((0, (3, 1, 1, 1, 1, 1)), "v"),
    ((0, (9, 3)), "P"),
)
"""(line style, marker) of the first, second, ... run; cycled beyond six runs."""


class RunStyle(NamedTuple):
    """How a comparison draws one run's lines: its name, dashes and marker."""

    run: str
    linestyle: Any
    marker: str


def label_styles(*frames: pd.DataFrame | None) -> dict[str, RunStyle]:
    """``{label: RunStyle}`` for every label of ``frames`` that carry a ``run`` column with two or
    more runs (runs in first-seen order); ``{}`` for a single run."""
    parts = [f[["run", "label"]] for f in frames if f is not None and "run" in f and len(f)]
    if not parts:
        return {}
    table = pd.concat(parts).drop_duplicates("label")
    runs = list(dict.fromkeys(table["run"].astype(str)))
    if len(runs) < 2:
        return {}
    style = {run: RunStyle(run, *RUN_STYLES[i % len(RUN_STYLES)]) for i, run in enumerate(runs)}
    return {str(lab): style[str(run)] for run, lab in zip(table["run"], table["label"],
                                                          strict=True)}


def run_legend(styles: Mapping[str, RunStyle]) -> list[RunStyle]:
    """Each run once, in order: what a legend lists to say which dashes are which run."""
    return list(dict.fromkeys(styles.values()))


def base_label(label: str, style: RunStyle | None) -> str:
    """``label`` without its ``"run: "`` prefix (the label inside its own run)."""
    prefix = f"{style.run}: " if style is not None else ""
    return label[len(prefix):] if prefix and label.startswith(prefix) else label
