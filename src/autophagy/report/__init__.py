"""The report of a run: verdicts, metric curves with theory overlays, sample grids, one HTML page.

Pure functions of in-memory frames (the run store loads them from disk and calls these):

>>> table = verdict_table(metrics, metric="w2", cells=cells)   # doctest: +SKIP
>>> print_summary(table)                                          # doctest: +SKIP
>>> write_report("runs/demo", title="demo", config_text=yaml_text,
...              metrics=metrics, cells=cells, theory=theory)    # doctest: +SKIP
"""

from autophagy.report.html import render_html, write_report
from autophagy.report.plots import (
    label_colors,
    plot_metric_curves,
    plot_sample_grid,
    save_figure,
)
from autophagy.report.summary import print_summary, verdict_rule, verdict_table

__all__ = [
    "label_colors",
    "plot_metric_curves",
    "plot_sample_grid",
    "print_summary",
    "render_html",
    "save_figure",
    "verdict_rule",
    "verdict_table",
    "write_report",
]
