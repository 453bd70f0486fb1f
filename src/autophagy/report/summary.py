"""One verdict per curve: did retraining on its own samples leave the model where it started?

The question of the paper (Bertrand et al., ICLR 2024, "On the Stability of Iterative Retraining of
Generative Models on their own Data") is qualitative: a loop with enough real data stays near its
first fit, a fully synthetic one walks away. :func:`verdict_table` turns a metric's curves into that
answer with one explicit, relative rule, so a sweep over lambdas reads as a column of words, and
:func:`print_summary` shows it in the terminal.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from autophagy.errors import InputError
from autophagy.report.plots import label_colors

BAD_STATUS = frozenset({"diverged", "failed"})
VERDICT_STYLES = {
    "stable": "green",
    "drifting": "yellow",
    "collapsing": "red",
    "diverged": "bold red",
    "n/a": "dim",
}


def metric_lower_is_better(metric: str) -> bool:
    """The direction of ``metric`` from its registry entry; an unregistered one: lower is better."""
    from autophagy.metrics import find_metric

    entry = find_metric(metric)
    return entry.lower_is_better if entry is not None else True


def verdict_rule(
    metric: str = "w2",
    *,
    last: int = 3,
    stable_tol: float = 0.25,
    collapse_factor: float = 2.0,
    lower_is_better: bool = True,
) -> str:
    """The verdict rule as one paragraph, with the numbers filled in (for the README and report)."""
    window = (
        f"the mean over seeds of each seed's mean over the last {last} generations "
        "(generation 0 excluded)"
    )
    head = (
        f"Verdict on {metric}: gen0 = the mean over seeds of {metric} at generation 0; last = "
        f"{window}; change = last / gen0 - 1. "
    )
    if lower_is_better:
        body = (
            f"'stable' if change <= {stable_tol:g}; otherwise 'collapsing' if last >= "
            f"{collapse_factor:g} x gen0; otherwise 'drifting'. "
        )
    else:
        body = (
            f"(higher is better) 'stable' if change >= -{stable_tol:g}; otherwise 'collapsing' if "
            f"last <= gen0 / {collapse_factor:g}; otherwise 'drifting'. "
        )
    tail = (
        "'diverged' if a cell of the curve has status diverged or failed and no last value is "
        "finite (without a cell table: if the curve holds infinite values and no finite last "
        "value); 'n/a' if gen0 is missing or <= 0, or there is no generation after 0."
    )
    return head + body + tail


def verdict_table(
    metrics: pd.DataFrame,
    *,
    metric: str = "w2",
    last: int = 3,
    stable_tol: float = 0.25,
    collapse_factor: float = 2.0,
    lower_is_better: bool | None = None,
    cells: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per label: ``label, gen0, last, change, verdict, n_cells, n_failed``.

    The rule is relative to generation 0, so it reads the same for any scale of metric; it is meant
    for non-negative distances and errors (W2, MMD, FID, parameter errors):

    - ``gen0``: mean over the label's seeds of ``metric`` at generation 0 (finite values only).
    - ``last``: for each seed, the mean of its finite values over the last ``last`` generations of
      the label (generations ``max(1, T - last + 1) .. T``, ``T`` the label's last generation);
      then the mean over seeds that have one.
    - ``change = last / gen0 - 1``.
    - lower is better: ``"stable"`` if ``change <= stable_tol``; else ``"collapsing"`` if
      ``last >= collapse_factor * gen0``; else ``"drifting"``. An improving metric is stable.
    - higher is better (mirrored): ``"stable"`` if ``change >= -stable_tol``; else
      ``"collapsing"`` if ``last <= gen0 / collapse_factor``; else ``"drifting"``.
    - ``"diverged"``: no finite ``last`` and a cell of the label has status diverged or failed in
      ``cells`` (when ``cells`` is None: the label's values contain an infinity).
    - ``"n/a"``: otherwise no finite ``last``, or ``gen0`` missing or ``<= 0`` (the ratio is
      meaningless), or the label has no generation after 0.

    ``lower_is_better=None`` takes the direction from the metric registry
    (:func:`metric_lower_is_better`).
    Labels listed only in ``cells`` (cells that failed before writing a row) get a row too.
    The rule's text, with these numbers, is :func:`verdict_rule` and ``table.attrs["rule"]``.
    """
    if last < 1:
        raise InputError(f"last must be >= 1 generation, got {last}")
    if lower_is_better is None:
        lower_is_better = metric_lower_is_better(metric)
    rows = metrics[metrics["metric"] == metric]
    frames = [rows] if cells is None else [rows, cells]
    order = list(label_colors(*frames))
    records = [
        _verdict_row(
            label,
            rows[rows["label"] == label],
            None if cells is None else cells[cells["label"] == label],
            last=last,
            stable_tol=stable_tol,
            collapse_factor=collapse_factor,
            lower_is_better=lower_is_better,
        )
        for label in order
    ]
    columns = ["label", "gen0", "last", "change", "verdict", "n_cells", "n_failed"]
    table = pd.DataFrame.from_records(records, columns=columns)
    table.attrs.update(
        metric=metric,
        last=last,
        stable_tol=stable_tol,
        collapse_factor=collapse_factor,
        lower_is_better=lower_is_better,
        rule=verdict_rule(
            metric,
            last=last,
            stable_tol=stable_tol,
            collapse_factor=collapse_factor,
            lower_is_better=lower_is_better,
        ),
    )
    return table


def _verdict_row(
    label: str,
    rows: pd.DataFrame,
    cells: pd.DataFrame | None,
    *,
    last: int,
    stable_tol: float,
    collapse_factor: float,
    lower_is_better: bool,
) -> dict:
    values = rows["value"].to_numpy(dtype=float)
    finite = rows[np.isfinite(values)]
    gen0 = _mean_or_nan(finite.loc[finite["generation"] == 0, "value"])
    end = int(rows["generation"].max()) if len(rows) else 0
    window = finite[finite["generation"] >= max(1, end - last + 1)]
    last_value = _mean_or_nan(window.groupby("cell")["value"].mean())
    change = last_value / gen0 - 1 if gen0 > 0 and math.isfinite(last_value) else math.nan

    if cells is not None:
        cell_ids = set(cells["cell"]) | set(rows["cell"])
        n_failed = int(cells["status"].isin(BAD_STATUS).sum())
        broken = n_failed > 0
    else:
        cell_ids = set(rows["cell"])
        n_failed = int(rows.loc[np.isinf(values), "cell"].nunique())
        broken = n_failed > 0

    if not math.isfinite(last_value):
        verdict = "diverged" if broken else "n/a"
    elif not gen0 > 0:
        verdict = "n/a"
    elif lower_is_better:
        if change <= stable_tol:
            verdict = "stable"
        elif last_value >= collapse_factor * gen0:
            verdict = "collapsing"
        else:
            verdict = "drifting"
    elif change >= -stable_tol:
        verdict = "stable"
    elif last_value <= gen0 / collapse_factor:
        verdict = "collapsing"
    else:
        verdict = "drifting"
    return {
        "label": label,
        "gen0": gen0,
        "last": last_value,
        "change": change,
        "verdict": verdict,
        "n_cells": len(cell_ids),
        "n_failed": n_failed,
    }


PARTIAL_STATUS = frozenset({"pending", "running", "interrupted"})
"""Statuses of a cell whose curve stops before its last generation (the run did not finish)."""
PARTIAL_MARK = "*"


def mark_unfinished(table: pd.DataFrame, cells: pd.DataFrame | None) -> pd.DataFrame:
    """``table`` with an ``unfinished`` column: per label, how many of its cells stopped early
    (interrupted, or still running). Why: a verdict on a partial curve ("drifting" after two of
    six generations) reads as final otherwise; the printed and HTML tables mark such verdicts
    with :data:`PARTIAL_MARK`."""
    table = table.copy()
    if cells is None or not len(cells) or "status" not in cells:
        table["unfinished"] = 0
        return table
    partial = cells[cells["status"].isin(PARTIAL_STATUS)].groupby("label")["cell"].nunique()
    table["unfinished"] = [int(partial.get(label, 0)) for label in table["label"]]
    return table


def partial_note(table: pd.DataFrame) -> str | None:
    """The line explaining :data:`PARTIAL_MARK`, when a verdict carries it."""
    if "unfinished" not in table or not (table["unfinished"] > 0).any():
        return None
    n = int(table["unfinished"].sum())
    return (f"{PARTIAL_MARK} unfinished curve: {n} cell{'s' * (n != 1)} stopped early (the run "
            "did not finish), so the verdict is on partial data; 'autophagy resume' completes it")


def verdict_text(row) -> str:
    """The verdict of a table row, marked when its curve is unfinished."""
    partial = getattr(row, "unfinished", 0) > 0
    return f"{row.verdict}{PARTIAL_MARK}" if partial else str(row.verdict)


def _mean_or_nan(values: pd.Series) -> float:
    return float(values.mean()) if len(values) else math.nan


def print_summary(
    table: pd.DataFrame, *, console: Console | None = None, metric: str | None = None
) -> Table:
    """Print the verdict table in the terminal, verdicts coloured, so a sweep ends with its answer.

    ``metric`` defaults to the one the table was computed for (``table.attrs``). Returns the rich
    table (handy for tests and for embedding in a larger layout).
    """
    metric = metric or table.attrs.get("metric", "w2")
    window = table.attrs.get("last")
    caption = f"last = mean of the last {window} generations" if window else None
    rich_table = Table(
        title=f"Verdicts on {metric}", title_justify="left", caption=caption, caption_justify="left"
    )
    rich_table.add_column("label", no_wrap=True)
    rich_table.add_column("gen 0", justify="right")
    rich_table.add_column("last", justify="right")
    rich_table.add_column("change", justify="right")
    rich_table.add_column("verdict", no_wrap=True)
    has_failed = "n_failed" in table and bool((table["n_failed"] > 0).any())
    if has_failed:
        rich_table.add_column("failed", justify="right")
    for row in table.itertuples(index=False):
        style = VERDICT_STYLES.get(row.verdict, "")
        cells = [
            str(row.label),
            format_value(row.gen0),
            format_value(row.last),
            format_change(row.change),
            f"[{style}]{verdict_text(row)}[/]" if style else verdict_text(row),
        ]
        if has_failed:
            cells.append(f"{row.n_failed}/{row.n_cells}")
        rich_table.add_row(*cells)
    console = console or Console()
    console.print(rich_table)
    if note := partial_note(table):
        console.print(note, markup=False, highlight=False, soft_wrap=True)
    return rich_table


def format_value(value: float) -> str:
    """Four significant digits, an en dash for missing values."""
    return "–" if value is None or not math.isfinite(value) else f"{value:.4g}"


def format_change(change: float) -> str:
    """Relative change as a signed percentage."""
    return "–" if change is None or not math.isfinite(change) else f"{100 * change:+.1f}%"
