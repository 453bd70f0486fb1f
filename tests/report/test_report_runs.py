"""Figures of ``autophagy compare``: runs told apart by line style and marker (the same label
keeps its colour across runs), in the curves and in the stability figure; values beyond the
stability axis are cut or put on the edge with a mark and their value, never dropped."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.colors import to_hex

from autophagy.report.plots import label_colors, plot_metric_curves
from autophagy.report.runs import label_styles
from autophagy.report.stability import plot_stability


def _curves(runs: dict[str, int], generations: int = 20) -> pd.DataFrame:
    """w2 rows of a comparison: each run (with its number of seeds) x mixed 0.5 and FS."""
    rng = np.random.default_rng(0)
    rows = []
    for run, seeds in runs.items():
        for policy, lam, base in (("mixed", 0.5, "mixed λ=0.5"),
                                  ("fully_synthetic", math.nan, "fully_synthetic")):
            for seed in range(seeds):
                for g in range(generations):
                    rows.append({"run": run, "label": f"{run}: {base}", "policy": policy,
                                 "lambda": lam, "cell": f"{run}/{policy}-seed{seed}",
                                 "generation": g, "metric": "w2",
                                 "value": 1.0 + 0.05 * g + rng.normal(0, 0.01)})
    return pd.DataFrame(rows)


def test_compare_curves_give_each_run_its_line_style_and_marker_and_each_label_one_colour():
    metrics = _curves({"gmm": 2, "kde": 1})
    fig = plot_metric_curves(metrics, "w2", colors=label_colors(metrics))
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    look = {lab: (line.get_linestyle(), line.get_marker(), to_hex(line.get_color()))
            for lab, line in lines.items()}
    gmm, kde = look["gmm: mixed λ=0.5"], look["kde: mixed λ=0.5"]
    assert gmm[0] != kde[0] and gmm[1] != kde[1]  # dashes and marker both differ
    assert gmm[2] == kde[2]  # the same label, the same colour
    assert look["gmm: fully_synthetic"][:2] == gmm[:2]  # a run keeps its style
    assert look["kde: fully_synthetic"][2] != kde[2]
    # 20 generations: markers stay on (every other one), so the runs differ without colour
    assert all(line.get_markevery() is not None for line in lines.values())
    title = ax.get_title()
    assert "band min–max (2 seeds), no band (1 seed)" in title and "max, no band" not in title


def test_a_single_run_keeps_solid_lines_and_says_its_band_once():
    metrics = _curves({"only": 1}).drop(columns="run")
    ax = plot_metric_curves(metrics, "w2").axes[0]
    assert {line.get_linestyle() for line in ax.get_lines()} == {"-"}
    assert label_styles(metrics) == {}
    assert ax.get_title().endswith("one seed per line, no band")


def _stability_rows() -> tuple[pd.DataFrame, dict]:
    """Two runs' measured rhos, with the issue's huge interval and a rho below the axis."""
    def row(run, lam, rho, low, high, observed, policy="mixed"):
        base = "fully_synthetic" if policy != "mixed" else f"mixed λ={lam:g}"
        return {"run": run, "label": f"{run}: {base}", "policy": policy, "lambda": lam,
                "scheme": "real" if policy == "mixed" else "none",
                "rho_eps0": math.nan, "rho_theorem": math.nan, "predicted": "", "rho": rho,
                "rho_se": 0.1, "rho_low": low, "rho_high": high, "plateau": math.nan,
                "plateau_se": math.nan, "plateau_theory": math.nan, "observed": observed,
                "n_seeds": 3}
    table = pd.DataFrame([
        row("a", 0.5, 0.31, 0.2, 0.4, "stable"), row("b", 0.5, 0.35, 0.25, 0.45, "stable"),
        row("a", 1.0, 0.55, -8.5, 11.6, "inconclusive"), row("b", 1.0, -1.52, -3.0, -0.2,
                                                             "unstable"),
        row("a", 2.0, 0.7, 0.6, 0.8, "stable"), row("b", 2.0, 0.8, 0.7, 0.9, "stable"),
        row("a", math.nan, 1.02, 0.9, 1.2, "unstable", "fully_synthetic"),
        row("b", math.nan, 0.95, 0.5, 1.4, "inconclusive", "fully_synthetic"),
    ])
    styles = label_styles(table)
    table = table.drop(columns="run")
    table.attrs.update(distance="theta_distance", what="parameters", level=0.95,
                       constants=None, theorem_max_lambda=math.nan)
    return table, styles


def test_stability_figure_tells_runs_apart_by_marker_and_line_style():
    table, styles = _stability_rows()
    ax = plot_stability([table], styles).axes[0]
    legend = {h.get_label(): h for h in ax.get_legend().legend_handles}
    assert legend["a"].get_marker() != legend["b"].get_marker()
    assert legend["a"].get_linestyle() != legend["b"].get_linestyle()
    markers = {tuple(c.get_paths()[0].vertices.round(3).ravel()) for c in ax.collections}
    assert len(markers) == 2  # every measured point wears its run's marker, two runs
    joins = [line for line in ax.get_lines() if line.get_color() == "0.5"
             and len(line.get_xdata()) == 3]
    assert len({line.get_linestyle() for line in joins}) == 2  # each run's rhos joined


def test_stability_figure_cuts_a_huge_interval_and_puts_an_off_axis_rho_on_the_edge():
    table, styles = _stability_rows()
    ax = plot_stability([table], styles).axes[0]
    y0, y1 = ax.get_ylim()
    assert -0.5 < y0 < 0 and 1 < y1 < 2  # the huge interval did not set the scale
    texts = [t.get_text() for t in ax.texts]
    assert "↓ -1.52" in texts  # the rho below the axis, written at the edge
    assert "11.6" in texts and "-8.5" in texts  # the cut interval's bounds
    arrows = [(line.get_marker(), line.get_ydata()[0]) for line in ax.get_lines()
              if line.get_marker() in ("^", "v")]
    assert ("^", y1) in arrows and ("v", y0) in arrows  # cut ends marked on the edges
    on_edge = [c for c in ax.collections if np.isclose(c.get_offsets()[:, 1], y0).any()]
    assert on_edge  # the off-axis point is drawn, on the bottom edge
    assert all(y0 <= y <= y1 for line in ax.get_lines() for y in line.get_ydata()
               if line.get_color() != "0.35")  # nothing drawn beyond the axis
