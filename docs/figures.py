"""Rebuild the figures of the documentation from runs of the presets.

    python docs/figures.py                  # runs each preset into runs/docs/<preset>, then copies
    python docs/figures.py --runs DIR       # copies from existing runs DIR/<preset> only

Each figure is one of a run's ``figures/*.png``, shrunk to at most 1000 pixels wide and stored as
a 128-colour palette PNG, so the site's images stay small in the repository.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from PIL import Image

STATIC = Path(__file__).resolve().parent / "_static"
# docs/_static/<name>.png  <-  <preset run>/figures/<figure>.png
FIGURES = {
    "toy-flow-samples": ("toy-flow", "samples"),
    "toy-flow-nll": ("toy-flow", "nll"),
    "lambda-sweep-stability": ("lambda-sweep", "stability"),
    "gaussian-theory-cov": ("gaussian-theory", "cov_trace_ratio"),
    "toy-kde-cov": ("toy-kde", "cov_trace_ratio"),
    "toy-regression-test-error": ("toy-regression", "test_error"),
    "toy-heat-death-entropy": ("toy-heat-death", "entropy"),
    "toy-curated-reward": ("toy-curated", "reward_mean"),
    "toy-sims-w2": ("toy-sims", "w2"),
    "gaussian-mitigations-cov": ("gaussian-mitigations", "cov_trace_ratio"),
    "digits-bias-worst-group": ("digits-bias", "trainset_worst_group_accuracy"),
    "digits-bias-parity": ("digits-bias", "tstr_dp_difference"),
    "toy-minority-worst-group": ("toy-minority", "tstr_worst_group_accuracy"),
    "toy-minority-groups": ("toy-minority", "group_histogram"),
}
MAX_WIDTH = 1000


def shrink(src: Path, dst: Path) -> None:
    image = Image.open(src).convert("RGB")
    if image.width > MAX_WIDTH:
        height = round(image.height * MAX_WIDTH / image.width)
        image = image.resize((MAX_WIDTH, height), Image.Resampling.LANCZOS)
    image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(dst, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=Path, help="existing runs, one folder per preset")
    args = parser.parse_args()
    runs = args.runs or Path("runs/docs")
    presets = sorted({preset for preset, _ in FIGURES.values()})
    if args.runs is None:
        for preset in presets:
            subprocess.run([sys.executable, "-m", "autophagy", "run", "--preset", preset,
                            "--out", str(runs / preset)], check=True)
    STATIC.mkdir(exist_ok=True)
    for name, (preset, figure) in FIGURES.items():
        dst = STATIC / f"{name}.png"
        shrink(runs / preset / "figures" / f"{figure}.png", dst)
        print(f"{dst.relative_to(STATIC.parent.parent)}: {dst.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
