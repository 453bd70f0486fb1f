"""Values beyond an axis drawn honestly: intervals cut at the edge with an arrowhead, points off
the axis drawn on the edge with their value written beside.

Why: an axis sized to a huge interval (``[-8.5, 11.6]``) squashes every other point into a
line, while an axis that simply clips hides a point (a rho of -1.52) without a trace. Cutting
with a mark keeps the scale the readable values need and still shows that, and how far, a
value goes beyond it.
"""

from __future__ import annotations

import math
from typing import Any

EDGE_MARK_SIZE = 6.0
"""Size (points) of the arrowhead that ends a cut interval."""


def interval(ax: Any, x: float, low: float, high: float, *, color: str = "0.2",
             lw: float = 1.0) -> str:
    """The interval ``[low, high]`` at ``x``, cut at the axis' y-limits (set them first): a cut
    end gets an arrowhead on the edge with the bound written beside it, an end inside a cap.
    Nothing when an end is NaN (no interval). Returns where it was cut: ``"top"``,
    ``"bottom"``, ``"both"`` or ``""``."""
    if math.isnan(low) or math.isnan(high):
        return ""
    y0, y1 = ax.get_ylim()
    lo, hi = max(low, y0), min(high, y1)
    if lo > hi:  # wholly beyond the axis: the point's own mark tells it
        return "top" if low > y1 else "bottom"
    ax.plot([x, x], [lo, hi], color=color, lw=lw, zorder=2, solid_capstyle="butt")
    cut = []
    for end, bound, arrow, side in ((lo, low, "v", "bottom"), (hi, high, "^", "top")):
        if end != bound:
            ax.plot([x], [end], ls="none", marker=arrow, ms=EDGE_MARK_SIZE, color=color,
                    clip_on=False, zorder=3)
            note(ax, x, side, f"{bound:.3g}", left=True)
            cut.append(side)
        else:
            ax.plot([x], [end], ls="none", marker="_", ms=EDGE_MARK_SIZE, mew=lw, color=color,
                    zorder=2)
    return "both" if len(cut) == 2 else "".join(cut)


def point(ax: Any, x: float, y: float, *, marker: str, color: str, size: float = 34.0) -> str:
    """The point (x, y) with ``marker``; beyond the y-limits it is drawn on the edge it passed,
    with ``↑``/``↓`` and its value beside it. Returns ``"top"``, ``"bottom"`` or ``""``."""
    y0, y1 = ax.get_ylim()
    side = "top" if y > y1 else "bottom" if y < y0 else ""
    at = y1 if side == "top" else y0 if side == "bottom" else y
    ax.scatter([x], [at], marker=marker, c=[color], edgecolors="0.15", linewidths=0.7, s=size,
               zorder=4, clip_on=not side)
    if side:
        arrow = "↑" if side == "top" else "↓"
        note(ax, x, side, f"{arrow} {y:.3g}")
    return side


def note(ax: Any, x: float, side: str, text: str, *, left: bool = False) -> None:
    """Small text by the edge ``side`` (``"top"`` or ``"bottom"``) at ``x``: right of it, or
    ``left`` of it (an interval's bound on the left, a point's value on the right, so the two
    do not overwrite each other)."""
    y0, y1 = ax.get_ylim()
    ax.annotate(text, (x, y1 if side == "top" else y0), textcoords="offset points",
                xytext=(-4 if left else 4, -10 if side == "top" else 3), fontsize=6.5,
                color="0.2", ha="right" if left else "left", annotation_clip=False)
