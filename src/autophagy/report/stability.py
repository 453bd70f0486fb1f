"""The stability theorem beside the run, drawn: the tables :mod:`autophagy.analysis.stability`
computes, as a terminal table, an HTML section and a figure. Nothing is computed here."""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from rich import box
from rich.console import Console
from rich.table import Table

from autophagy.analysis.stability import (  # noqa: F401
    COLUMNS,
    DISTANCES,
    stability_table,
    stability_tables,
)
from autophagy.report import marks
from autophagy.report.runs import RunStyle, base_label, run_legend

__all__ = [
    "agreement_line",
    "disagreements",
    "one_seed",
    "DISTANCES",
    "plot_stability",
    "print_stability",
    "stability_html",
    "stability_table",
    "stability_tables",
]

# ---- text -----------------------------------------------------------------------------------


def _num(value: float, digits: int = 3) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


def _lam(row: Any) -> str:
    if row.scheme == "none":
        return "∞ (fully synthetic)"
    return _num(row.lam)


def _ci(row: Any) -> str:
    if not math.isfinite(row.rho_se):
        return _num(row.rho)
    return f"{row.rho:.3f} [{row.rho_low:.3f}, {row.rho_high:.3f}]"


def _plateau(row: Any) -> str:
    if not math.isfinite(row.plateau):
        return "–"
    if not math.isfinite(row.plateau_se):
        return _num(row.plateau)
    return f"{row.plateau:.3g} ± {row.plateau_se:.2g}"


def stability_caption(table: pd.DataFrame) -> str:
    """What the table's numbers say about the theorem, in one or two sentences."""
    a = table.attrs
    c = a.get("constants")
    parts = []
    if c is not None:
        parts.append(
            f"The paper's condition lambda (1 + L eps / alpha) < 1 with L = {c['L']:.3g}, "
            f"eps = {c['eps']:.3g}, alpha = {c['alpha']:.3g} ({c.get('source', 'given')}) "
            f"covers lambda < {a['theorem_max_lambda']:.3g}"
        )
    else:
        parts.append("No L, eps, alpha for this distance: this project's bound is shown for "
                     "eps = 0 only (a perfect model class; the paper's condition covers "
                     "lambda < 1)")
    observed = a.get("observed_max_lambda", math.nan)
    if math.isfinite(observed):
        every = " (every mixed lambda of the run)" if a.get("observed_all_stable") else ""
        parts.append(f"the largest lambda observed stable is {observed:.3g}{every}")
    else:
        parts.append("no mixed lambda was observed stable")
    text = "; ".join(parts) + "."
    if c is not None and math.isfinite(observed) and a["theorem_max_lambda"] > 0:
        text += (f" The condition is sufficient, not necessary: the run is stable up to "
                 f"{observed / a['theorem_max_lambda']:.3g}x the paper's bound.")
    return text + (" ρ ours: lambda (1 + L eps / alpha) / (1 + lambda), this project's bound "
                   "(lambda / (1 + lambda) at eps = 0), tighter than the paper's constant "
                   "lambda (1 + L eps / alpha).")


def _short(row: Any) -> tuple[str, str]:
    """Measured rho and plateau as ``value±half-width`` (the terminal is narrow)."""
    if math.isfinite(row.rho_se):
        rho = f"{row.rho:.3f}±{(row.rho_high - row.rho_low) / 2:.3f}"
    else:
        rho = _num(row.rho)
    plateau = _num(row.plateau)
    if math.isfinite(row.plateau) and math.isfinite(row.plateau_se):
        plateau = f"{row.plateau:.2g}±{row.plateau_se:.1g}"
    return rho, plateau


MIN_SEEDS = 2
"""Seeds a label needs before its measured rho gets an interval worth printing."""


def one_seed(tables: Sequence[pd.DataFrame]) -> bool:
    """Whether no label of the tables has :data:`MIN_SEEDS` seeds: a jackknife over one seed's
    generations gives numbers, but no interval a reader should act on."""
    return all(int(t["n_seeds"].max()) < MIN_SEEDS for t in tables if len(t))


def seeds_line(tables: Sequence[pd.DataFrame]) -> str:
    n = max((int(t["n_seeds"].max()) for t in tables if len(t)), default=0)
    return (f"Stability: needs {MIN_SEEDS} or more seeds for an interval of the contraction "
            f"factor (this run has {n}); rerun with --set 'seed=[0,1,2]'.")


VERDICT_MATCH = {"stable": "stable", "collapsing": "unstable", "drifting": "unstable"}
"""The stability table's observed verdict that agrees with each verdict of the verdict table
(``diverged`` and ``n/a`` have none)."""


def disagreements(verdicts: pd.DataFrame, table: pd.DataFrame) -> list[tuple[str, str, str]]:
    """``(label, verdict, observed)`` for each curve whose verdict (the verdict metric's level,
    last generations against generation 0) and measured stability (the distance to the fixed
    point contracting) say different things."""
    observed = dict(zip(table["label"], table["observed"], strict=True))
    out = []
    for label, verdict in zip(verdicts["label"], verdicts["verdict"], strict=True):
        want = VERDICT_MATCH.get(str(verdict))
        got = observed.get(label)
        if want is not None and got is not None and got != want:
            out.append((str(label), str(verdict), str(got)))
    return out


def agreement_line(verdicts: pd.DataFrame, table: pd.DataFrame) -> str:
    """One line: the verdicts and the stability table agree, or where and why they differ."""
    found = disagreements(verdicts, table)
    if not found:
        return "Verdicts and stability agree on every curve."
    curves = ", ".join(f"{label} ({verdict} vs {observed})" for label, verdict, observed in found)
    why = []
    if any(observed == "inconclusive" for _, _, observed in found):
        why.append("an interval of rho too wide to call (more seeds or generations narrow it)")
    if any(observed != "inconclusive" for _, _, observed in found):
        why.append("the verdict reads the level of its metric against generation 0, the "
                   "stability table whether the distance to the fixed point contracts")
    return f"Verdicts and stability differ on {curves}: " + "; ".join(why) + "."


def print_stability(tables: Sequence[pd.DataFrame], *, console: Console | None = None,
                    verdicts: pd.DataFrame | None = None) -> None:
    """The stability table of the family's own distance in the terminal, after the verdicts
    (measured rho ± half the interval, plateau ± one standard error; ``theory``: the Gaussian
    MLE's expected plateau; ``ρ ours`` is this project's bound, "–" where the paper's condition
    fails: the HTML report spells it out), then one line on whether it agrees with
    ``verdicts``. The other distances are in the report; a one-seed run gets one line instead
    (:func:`seeds_line`)."""
    console = console or Console()
    if not tables:
        return
    if one_seed(tables):
        console.print(seeds_line(tables), markup=False, highlight=False, soft_wrap=True)
        return
    primary = [t for t in tables if t.attrs.get("primary", True)][:1] or list(tables[:1])
    for table in primary:
        a = table.attrs
        theory = bool(table["plateau_theory"].notna().any())
        why = f"; {a['why']}" if a.get("why") else ""
        rich_table = Table(
            title=f"Stability on {a['distance']} ({a.get('what', '')}{why}): theorem vs "
                  "measurement",
            title_justify="left",
            caption=stability_caption(table),
            caption_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        heads = ["label", "ρ ours ε=0", "ρ ours", f"ρ {a['level']:.0%}", "plateau"]
        heads += ["theory"] if theory else []
        for head in [*heads, "observed"]:
            right = head not in ("label", "observed")
            rich_table.add_column(head, justify="right" if right else "left",
                                  no_wrap=head in ("label", "observed"))
        for row in table.rename(columns={"lambda": "lam"}).itertuples(index=False):
            color = {"stable": "green", "unstable": "red"}.get(row.observed, "yellow")
            rho, plateau = _short(row)
            cells = [str(row.label), _num(row.rho_eps0), _num(row.rho_theorem), rho, plateau]
            cells += [_num(row.plateau_theory)] if theory else []
            rich_table.add_row(*cells, f"[{color}]{row.observed}[/]")
        console.print(rich_table)
    others = [f"{t.attrs['distance']} ({t.attrs.get('what', '')})" for t in tables
              if t is not primary[0]]
    lines = []
    if verdicts is not None and len(verdicts):
        lines.append(agreement_line(verdicts, primary[0]))
    if others:
        lines.append("Also measured, in report.html: " + ", ".join(others) + ".")
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def stability_html(tables: Sequence[pd.DataFrame], figure: str | Path | None = None) -> str:
    """The report's section: the figure, one table per distance, and how to read them."""
    if not tables:
        return ("<section><h2>Stability</h2><p>No distance to the fixed point was measured "
                "(add function_distance and function_step, theta_distance and theta_step, or "
                "gen0_mmd2 and step_mmd2, to eval.metrics).</p></section>")
    if one_seed(tables):
        return f"<section><h2>Stability</h2><p>{escape(seeds_line(tables))}</p></section>"
    parts = ["<section><h2>Stability: the theorem against the run</h2>"]
    if figure is not None and Path(figure).is_file():
        data = base64.b64encode(Path(figure).read_bytes()).decode("ascii")
        parts.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="rho against lambda">'
            "<figcaption>Measured contraction factor against lambda (dots, "
            f"{tables[0].attrs['level']:.0%} interval), this project's bound for a perfect "
            "model class (lam / (1 + lam), solid) and with the estimated constants (lam (1 + L "
            "eps / alpha) / (1 + lam), dashed, up to the largest lambda the paper's condition "
            "covers); fully synthetic on the right. An interval beyond "
            "the axis ends in an arrowhead with its bound written, a rho beyond it sits on the "
            "edge with its value; in a comparison each run has its own marker.</figcaption>"
            "</figure>"
        )
    head = ["label", "λ", "ρ ours, ε=0", "ρ ours", "ρ measured [interval]", "plateau",
            "plateau, theory", "predicted (paper's condition)", "observed"]
    for table in tables:
        a = table.attrs
        rows = []
        for row in table.rename(columns={"lambda": "lam"}).itertuples(index=False):
            klass = {"stable": "v-stable", "unstable": "v-collapsing"}.get(row.observed, "v-na")
            cells = [escape(str(row.label)), _lam(row), _num(row.rho_eps0),
                     _num(row.rho_theorem), _ci(row), _plateau(row), _num(row.plateau_theory),
                     escape(str(row.predicted))]
            tds = "".join(f'<td class="num">{escape(c)}</td>' if i else f"<td>{c}</td>"
                          for i, c in enumerate(cells))
            rows.append(f'<tr>{tds}<td class="{klass}">{row.observed}</td></tr>')
        header = "".join(f"<th>{h}</th>" for h in head)
        verdict = (f" (the verdict's distance: {escape(a['why'])})"
                   if a.get("primary") and a.get("why") else "")
        parts.append(
            f"<h3>{escape(a['distance'])}: {escape(a.get('what', ''))}{verdict}</h3>"
            f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<p>{escape(stability_caption(table))} Measured rho: {escape(a['method'])} "
            f"estimate pooled over seeds and generations, interval over {escape(a['ci_over'])} "
            "(jackknife); plateau: root mean square distance over the second half of the "
            "generations ± one standard error over seeds; observed stable when the whole "
            "interval of rho is below 1.</p>"
        )
    parts.append("</section>")
    return "\n".join(parts)


# ---- figure ---------------------------------------------------------------------------------


def plot_stability(
    tables: Sequence[pd.DataFrame], styles: Mapping[str, RunStyle] | None = None
) -> Figure:
    """Measured rho against lambda, one panel per distance, with the theorem's curves.

    ``styles`` (a comparison's, :func:`autophagy.report.runs.label_styles`) draws each run with
    its own marker, its points joined in its line style. The y axis fits the measured rhos; an
    interval beyond it is cut with an arrowhead and its bounds written, a rho beyond it is drawn
    on the edge with its value (:mod:`autophagy.report.marks`)."""
    fig = Figure(figsize=(5.2 * len(tables), 3.8), layout="constrained")
    axes = fig.subplots(1, len(tables), squeeze=False)[0]
    for ax, table in zip(axes, tables, strict=True):
        _stability_panel(ax, table, dict(styles or {}))
    return fig


VERDICT_COLORS = {"stable": "#1a7f37", "unstable": "#cf222e", "inconclusive": "#9a6700"}


def _rho_window(table: pd.DataFrame) -> tuple[float, float]:
    """y-limits that show the theorem's range (0 to 1) and every measured rho within reason
    (-0.5 to 2), and an interval's end only when it is near (-0.3 to 1.5): one huge interval
    must not squash the others."""
    rho = table["rho"].to_numpy(float)
    low, high = table["rho_low"].to_numpy(float), table["rho_high"].to_numpy(float)
    bottom = [-0.03, *(rho[(rho >= -0.5)] - 0.06), *low[(low >= -0.3)]]
    top = [1.08, *(rho[(rho <= 2.0)] + 0.06), *high[(high <= 1.5)]]
    return float(np.nanmin(bottom)), float(np.nanmax(top))


def _measured(ax: Any, x: float, row: Any, marker: str, color: str) -> None:
    """One measured rho with its interval; what lies beyond the axis is marked and written."""
    if math.isfinite(row.rho):
        marks.interval(ax, x, row.rho_low, row.rho_high)
        marks.point(ax, x, row.rho, marker=marker, color=color)


def _stability_panel(ax: Any, table: pd.DataFrame, styles: dict[str, RunStyle]) -> None:
    a = table.attrs
    mixed = table[(table["scheme"] == "real") & table["lambda"].notna()].sort_values("lambda")
    lam_max = float(mixed["lambda"].max()) if len(mixed) else 1.0
    right = max(lam_max, 1.0) * 1.15
    grid = np.linspace(0.0, right, 300)
    ax.plot(grid, grid / (1 + grid), color="0.35", lw=1.4, label="ours, ε = 0: λ/(1+λ)")
    c = a.get("constants")
    if c is not None:
        kappa = 1.0 + c["L"] * c["eps"] / c["alpha"]
        covered = grid[grid * kappa < 1.0]
        ax.plot(covered, covered * kappa / (1 + covered), "--", color="#1f77b4", lw=1.4,
                label=f"ours, estimated constants (paper's λ < {a['theorem_max_lambda']:.2g})")
        ax.axvline(a["theorem_max_lambda"], color="#1f77b4", lw=0.8, ls=":")
    ax.axhline(1.0, color="#cf222e", lw=0.8, ls=":")
    y0, y1 = _rho_window(table)
    ax.set_ylim(y0, y1)
    runs = run_legend(styles)
    dodge = 0.025 * right  # runs side by side at the same lambda
    for i, style in enumerate(runs or [None]):
        mine = mixed if style is None else mixed[mixed["label"].map(styles.get) == style]
        marker = "o" if style is None else style.marker
        shift = (i - (len(runs) - 1) / 2) * dodge if runs else 0.0
        if style is not None and len(mine) > 1:  # a run's rhos joined in its line style
            ax.plot(mine["lambda"] + shift, mine["rho"].clip(y0, y1), ls=style.linestyle,
                    color="0.5", lw=1.0, zorder=1)
        for row in mine.rename(columns={"lambda": "lam"}).itertuples(index=False):
            _measured(ax, row.lam + shift, row, marker,
                      VERDICT_COLORS.get(row.observed, "#9a6700"))
    others = table[~table.index.isin(mixed.index)]
    for i, row in enumerate(others.itertuples(index=False)):
        x = right * (1.06 + 0.08 * i)
        style = styles.get(str(row.label))
        color = "#cf222e" if row.scheme == "none" else "#9467bd"
        _measured(ax, x, row, "s" if style is None else style.marker, color)
        name = "FS" if row.scheme == "none" else base_label(str(row.label), style)
        ax.annotate(name, (x, min(max(row.rho, y0), y1)) if math.isfinite(row.rho) else (x, y0),
                    textcoords="offset points", xytext=(5, -10), fontsize=8)
    ax.set_xlim(-0.03 * right, right * (1.06 + 0.08 * len(others)) + 0.05 * right)
    ax.set_xlabel("λ (synthetic-to-real ratio)")
    ax.set_ylabel("contraction factor ρ")
    ax.set_title(f"{a['distance']}: {a.get('what', '')}", fontsize=10)
    handles, _ = ax.get_legend_handles_labels()
    handles += [Line2D([], [], color="0.5", ls=st.linestyle, marker=st.marker, mfc="white",
                       mec="0.15", label=st.run) for st in runs]
    seen = [v for v in VERDICT_COLORS if (table["observed"] == v).any()]
    handles += [Line2D([], [], ls="none", marker="o", color=VERDICT_COLORS[v], mec="0.15",
                       label=f"measured: {v}") for v in seen]
    ax.legend(handles=handles, fontsize=7, loc="best")
    ax.grid(alpha=0.25)
