"""The class histogram across generations (the curated-loop paper's figure), one panel per label.

A run that records ``class_share_<c>`` (the share of the samples the dataset's classifier puts in
class c, :mod:`autophagy.metrics.curation`) gets one figure: for each label, stacked bars of the
class shares per generation (mean over seeds), instead of one curve per class. The downstream
metrics' ``label_share_<c>`` and ``group_share_<g>`` (:mod:`autophagy.metrics.downstream`) get
one figure each, drawn the same way (``kind``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

CLASS_SHARE = re.compile(r"class_share_(\d+)$")
SHARE_KINDS = {"class": "Class histogram of the samples across generations (dataset classifier)",
               "label": "Label histogram of the samples across generations (downstream labels)",
               "group": "Group histogram of the samples across generations (downstream groups)"}
"""Each kind of ``<kind>_share_<i>`` metrics drawn as one stacked histogram, and its title."""


def class_share_metrics(names, kind: str = "class") -> list[str]:
    """The ``<kind>_share_<c>`` names among ``names``, by class number."""
    pattern = re.compile(rf"{kind}_share_(\d+)$")
    found = [(int(m.group(1)), n) for n in names if (m := pattern.match(str(n)))]
    return [n for _, n in sorted(found)]


def plot_class_histograms(metrics: pd.DataFrame, labels: Mapping[str, str] | None = None,
                          kind: str = "class") -> Figure:
    """Stacked class shares per generation, one panel per label (in ``labels``' order)."""
    names = class_share_metrics(metrics["metric"].unique(), kind)
    rows = metrics[metrics["metric"].isin(names)]
    table = rows.groupby(["label", "generation", "metric"])["value"].mean().unstack("metric")
    order = [lab for lab in (labels or {}) if lab in table.index.get_level_values(0)]
    order += [lab for lab in table.index.get_level_values(0).unique() if lab not in order]
    cols = min(len(order), 3)
    nrows = -(-len(order) // cols)
    fig = Figure(figsize=(4.2 * cols, 3.0 * nrows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, cols, squeeze=False)).ravel()
    cmap = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    for ax, label in zip(axes, order, strict=False):
        shares = table.loc[label][names].fillna(0.0)
        bottom = np.zeros(len(shares))
        for i, name in enumerate(names):
            ax.bar(shares.index, shares[name], bottom=bottom, color=cmap(i % cmap.N), width=0.85,
                   label=name.removeprefix(f"{kind}_share_"))
            bottom += shares[name].to_numpy()
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("generation")
        ax.set_ylim(0, 1)
    for ax in axes[len(order):]:
        ax.set_visible(False)
    axes[0].set_ylabel("share of samples")
    handles, texts = axes[0].get_legend_handles_labels()
    fig.legend(handles, texts, title="group" if kind == "group" else "class",
               loc="outside right center", fontsize=8)
    fig.suptitle(SHARE_KINDS[kind])
    return fig
