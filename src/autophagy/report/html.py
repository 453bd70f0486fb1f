"""One self-contained HTML page per run: verdicts, curves, samples, cell status, config.

The page embeds its PNGs as base64 and carries its CSS inline, with no script, font or link to
fetch: it can be mailed, attached to an issue or opened on an offline cluster node years later and
still show everything the run measured, next to the exact config that produced it.
"""

from __future__ import annotations

import base64
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from autophagy.atomic import atomic_write_text
from autophagy.report.classes import SHARE_KINDS, class_share_metrics, plot_class_histograms
from autophagy.report.images import plot_image_generations, save_image_grid
from autophagy.report.plots import (
    SE_MIN_SEEDS,
    label_colors,
    metric_title,
    order_metrics,
    plot_metric_curves,
    plot_sample_grid,
    save_figure,
)
from autophagy.report.runs import label_styles
from autophagy.report.summary import (
    format_change,
    format_value,
    mark_unfinished,
    partial_note,
    verdict_table,
    verdict_text,
)

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }
h1 { margin-bottom: 0.1em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em;
     margin-top: 1.8em; }
.time { color: #666; font-size: 0.9em; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.7em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; border-radius: 2px;
          margin-right: 0.4em; vertical-align: -0.05em; }
.v-stable, .s-done { color: #1a7f37; font-weight: 600; }
.v-drifting, .s-running, .s-interrupted { color: #9a6700; font-weight: 600; }
.v-collapsing, .v-diverged, .s-failed, .s-diverged { color: #cf222e; font-weight: 600; }
.v-na { color: #777; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.9em; margin-top: 0.3em; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.missing { color: #cf222e; }
"""


def render_html(
    *,
    title: str,
    config_text: str,
    summary: pd.DataFrame,
    figures: Sequence[tuple[str, str | os.PathLike]],
    cells: pd.DataFrame,
    notes: Iterable[str] = (),
    colors: Mapping[str, str] | None = None,
    sections: Sequence[str] = (),
) -> str:
    """The report page as a string: header, verdicts, figures, cell status, config, notes.

    Every PNG in ``figures`` is read and embedded as a ``data:image/png;base64`` URI; a missing
    file becomes a visible note instead of a broken page. All text is HTML-escaped, the config
    included (YAML may hold ``<`` or ``&``). ``colors`` adds each label's swatch to the tables.
    """
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    colors = dict(colors or {})
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f'<header><h1>{escape(title)}</h1><div class="time">generated {now}</div></header>',
        "<section><h2>Verdicts</h2>",
        _summary_table(summary, colors),
        "</section>",
        *sections,
        "<section><h2>Figures</h2>",
        *(_figure(caption, path) for caption, path in figures),
        "</section>" if figures else "<p>No figures.</p></section>",
        "<section><h2>Cells</h2>",
        _cells_table(cells, colors),
        "</section>",
        "<section><h2>Config</h2>",
        f"<pre>{escape(config_text)}</pre>",
        "</section>",
    ]
    notes = [n for n in notes if n]
    if notes:
        parts += ["<section><h2>Notes</h2><ul>"]
        parts += [f"<li>{escape(n)}</li>" for n in notes]
        parts += ["</ul></section>"]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _label_cell(label: str, colors: Mapping[str, str]) -> str:
    color = colors.get(label)
    swatch = f'<span class="swatch" style="background:{color}"></span>' if color else ""
    return f"<td>{swatch}{escape(str(label))}</td>"


def _summary_table(summary: pd.DataFrame, colors: Mapping[str, str]) -> str:
    if summary is None or summary.empty:
        return "<p>No verdicts: the verdict metric has no values.</p>"
    metric = escape(str(summary.attrs.get("metric", "metric")))
    window = summary.attrs.get("last")
    last_head = f"{metric}, mean of last {window} gens" if window else f"{metric}, last"
    head = ["label", f"{metric} at gen 0", last_head, "change", "verdict"]
    has_counts = {"n_cells", "n_failed"} <= set(summary.columns)
    if has_counts:
        head.append("failed / cells")
    rows = []
    for row in summary.itertuples(index=False):
        verdict = str(row.verdict)
        klass = "v-na" if verdict == "n/a" else f"v-{re.sub(r'[^a-z]', '', verdict)}"
        tds = [
            _label_cell(row.label, colors),
            f'<td class="num">{format_value(row.gen0)}</td>',
            f'<td class="num">{format_value(row.last)}</td>',
            f'<td class="num">{format_change(row.change)}</td>',
            f'<td class="{klass}">{escape(verdict_text(row))}</td>',
        ]
        if has_counts:
            tds.append(f'<td class="num">{int(row.n_failed)} / {int(row.n_cells)}</td>')
        rows.append("<tr>" + "".join(tds) + "</tr>")
    header = "".join(f"<th>{h}</th>" for h in head)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _cells_table(cells: pd.DataFrame, colors: Mapping[str, str]) -> str:
    if cells is None or cells.empty:
        return "<p>No cells.</p>"
    columns = ["cell", "label", "policy", "lambda", "seed", "status", "message"]
    columns = [c for c in columns if c in cells.columns]
    header = "".join(f"<th>{escape(c)}</th>" for c in columns)
    rank = {label: i for i, label in enumerate(colors)}
    ordered = cells.assign(_rank=cells["label"].map(rank).fillna(len(rank)))
    ordered = ordered.sort_values(
        ["_rank", "label", "seed"] if "seed" in cells else ["_rank"], kind="stable"
    )
    rows = []
    for record in ordered[columns].to_dict("records"):
        tds = []
        for column in columns:
            value = record[column]
            if column == "label":
                tds.append(_label_cell(value, colors))
            elif column == "status":
                status = escape(str(value))
                tds.append(f'<td class="s-{re.sub(r"[^a-z]", "", status)}">{status}</td>')
            else:
                tds.append(f"<td>{escape(_plain(value))}</td>")
        rows.append("<tr>" + "".join(tds) + "</tr>")
    counts = cells["status"].value_counts() if "status" in cells else pd.Series(dtype=int)
    tally = ", ".join(f"{n} {escape(str(s))}" for s, n in counts.items())
    return (
        f"<p>{len(cells)} cells: {tally}.</p><table><thead><tr>{header}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _plain(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float | np.floating):
        return f"{float(value):g}"
    return str(value)


def _figure(caption: str, path: str | os.PathLike) -> str:
    path = Path(path)
    if not path.is_file():
        return f'<p class="missing">Figure missing: {escape(caption)} ({escape(str(path))}).</p>'
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{escape(caption)}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def write_report(
    out_dir: str | os.PathLike,
    *,
    title: str,
    config_text: str,
    metrics: pd.DataFrame,
    cells: pd.DataFrame,
    theory: pd.DataFrame | None = None,
    samples: Mapping[str, Mapping[int, np.ndarray]] | None = None,
    real: np.ndarray | None = None,
    metrics_to_plot: Sequence[str] | None = None,
    verdict_metric: str = "w2",
    stability: Sequence[pd.DataFrame] | None = None,
    extra_figures: Sequence[tuple[str, Path]] = (),
) -> Path:
    """Render ``out_dir/figures/<metric>.png``, ``figures/samples.png`` and ``report.html``.

    One figure per metric (default: every metric with a finite value, the verdict's metric
    first, then distances), the
    sample grid when samples are 2-D points, and the page that embeds them. If ``verdict_metric``
    was not measured (an image run has no ``w2``), the verdicts use the first plotted metric and
    the notes say so. Returns the path of the HTML page.
    """
    out_dir = Path(out_dir)
    fig_dir = out_dir / "figures"
    colors = label_colors(cells, metrics)
    finite = metrics[np.isfinite(metrics["value"].to_numpy(float))]
    shares = {k: class_share_metrics(finite["metric"].unique(), k) for k in SHARE_KINDS}
    class_shares = [name for names in shares.values() for name in names]
    if metrics_to_plot is None:  # the class shares are one histogram figure, not one per class
        metrics_to_plot = order_metrics(
            [m for m in finite["metric"].unique() if m not in class_shares]
        )
        if verdict_metric in metrics_to_plot:  # the verdicts' metric leads the figures
            metrics_to_plot.remove(verdict_metric)
            metrics_to_plot.insert(0, verdict_metric)
    notes: list[str] = []

    figures: list[tuple[str, Path]] = []
    for metric in metrics_to_plot:
        fig = plot_metric_curves(metrics, metric, theory=theory, colors=colors)
        path = save_figure(fig, fig_dir / f"{_safe_name(metric)}.png")
        has_theory = theory is not None and bool((theory["metric"] == metric).any())
        caption = f"{metric_title(metric)} against generation, one line per label (mean over "
        caption += "seeds; band as in the title)"
        caption += "; dashed: closed-form expectation." if has_theory else "."
        caption = caption[:1].upper() + caption[1:]
        figures.append((caption, path))

    for kind, names in shares.items():
        if not names:
            continue
        fig = plot_class_histograms(finite, colors, kind)
        path = save_figure(fig, fig_dir / f"{kind}_histogram.png")
        source = ("the dataset's classifier" if kind == "class" else
                  "the downstream labels (label column, conditional model or "
                  "annotator)")
        figures.append((f"{kind.capitalize()} histogram of each label's samples per generation "
                        f"(mean over seeds), from {source}.", path))

    if samples and _is_2d(samples):
        label_of = dict(zip(cells["cell"], cells["label"], strict=True))
        label_of.update(dict(zip(metrics["cell"], metrics["label"], strict=True)))
        seeds = dict(zip(cells["cell"], cells["seed"], strict=True))
        fig = plot_sample_grid(samples, labels=label_of, real=real, colors=colors, seeds=seeds)
        path = save_figure(fig, fig_dir / "samples.png")
        figures.append(
            (
                "Samples of each label's lowest seed across generations, held-out real "
                "data in grey behind, shared axes.",
                path,
            )
        )
    elif samples and _is_images(samples):
        label_of = dict(zip(cells["cell"], cells["label"], strict=True))
        seeds = dict(zip(cells["cell"], cells["seed"], strict=True))
        fig = plot_image_generations(samples, labels=label_of, seeds=seeds)
        path = save_figure(fig, fig_dir / "samples.png")
        for cell, per_gen in samples.items():
            for generation, images in per_gen.items():
                save_image_grid(images, fig_dir / "grids" / cell / f"gen_{generation:04d}.png")
        figures.append(
            ("Samples of each label's lowest seed across generations (the first 16 of each "
             "generation; every generation's grid is in figures/grids/<cell>/).", path)
        )
    elif samples and not extra_figures:
        notes.append("Samples are neither 2-D points nor images, so no sample grid was drawn.")
    figures.extend(extra_figures)  # the family's own figures (text: gen-0 perplexities)

    metric = verdict_metric
    if not (finite["metric"] == metric).any() and len(metrics_to_plot):
        metric = metrics_to_plot[0]
        notes.append(f"{verdict_metric} was not measured; verdicts use {metric} instead.")
    summary = mark_unfinished(verdict_table(metrics, metric=metric, cells=cells), cells)
    notes.insert(0, summary.attrs["rule"])
    if partial := partial_note(summary):
        notes.insert(0, partial)
    notes.append(
        f"Curve bands: ±1 standard error with at least {SE_MIN_SEEDS} seeds per label, "
        "min–max with fewer; infinite values count as missing."
    )
    bad = cells[cells["status"].isin(["failed", "diverged"])] if len(cells) else cells
    if len(bad):
        notes.append(
            f"{len(bad)} cell(s) failed or diverged; their finite generations still "
            "count in the curves, see the cells table."
        )

    from autophagy.report.stability import (
        one_seed,
        plot_stability,
        stability_html,
        stability_tables,
    )

    tables = stability_tables(metrics) if stability is None else list(stability)
    stability_png = None
    if tables and not one_seed(tables):
        styles = label_styles(cells, metrics)  # a comparison: one marker per run
        stability_png = save_figure(plot_stability(tables, styles), fig_dir / "stability.png")
    html = render_html(
        title=title,
        config_text=config_text,
        summary=summary,
        figures=figures,
        cells=cells,
        notes=notes,
        colors=colors,
        sections=[stability_html(tables, stability_png, verdicts=summary)],
    )
    return atomic_write_text(out_dir / "report.html", html)


def _safe_name(metric: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", metric) or "metric"


def _is_images(samples: Mapping[str, Mapping[int, np.ndarray]]) -> bool:
    shapes = [np.shape(x) for per_gen in samples.values() for x in per_gen.values()]
    return bool(shapes) and all(len(s) == 4 for s in shapes)


def _is_2d(samples: Mapping[str, Mapping[int, np.ndarray]]) -> bool:
    shapes = [np.shape(x) for per_gen in samples.values() for x in per_gen.values()]
    return bool(shapes) and all(len(s) == 2 and s[1] == 2 for s in shapes)
