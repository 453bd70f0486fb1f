"""What a person reads when the output is not a terminal (a log, CI, ``| tee``), and ``--help``.

Off a terminal, lines are not wrapped (a path, a caption stay whole, so ``grep`` finds them);
``COLUMNS`` still sets a width where someone asks for one. In ``--help``, a docstring's source
line breaks never show: every description is wrapped only where the panel is full.
"""

from __future__ import annotations

import re

import pytest
import yaml
from typer.testing import CliRunner

from autophagy.analysis.stability import run_constants, run_family, stability_tables
from autophagy.cli import app
from autophagy.report.stability import stability_caption
from autophagy.run.cells import build_dataset
from autophagy.store import RunStore

runner = CliRunner()


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    """A small Gaussian lambda sweep written under a path far longer than 80 columns."""
    root = tmp_path_factory.mktemp("plain")
    config = {
        "name": "plain", "seed": [0, 1],
        "data": {"name": "eight_gaussians", "n_train": 100, "n_test": 200, "seed": 0},
        "model": {"name": "gaussian"},
        "loop": {"policies": {"mixed": {"lambda": [0.5, 2]}, "fully_synthetic": {}},
                 "generations": 8},
        "eval": {"metrics": ["theta_distance", "theta_step", "gen0_mmd2", "step_mmd2"],
                 "n_samples": 200, "verdict_metric": "theta_distance"},
        "run": {"executor": "inline", "checkpoints": "last"},
    }
    (root / "c.yaml").write_text(yaml.safe_dump(config))
    out = root.joinpath(*["a-folder-whose-name-is-long"] * 4, "run")
    result = runner.invoke(app, ["run", "--config", str(root / "c.yaml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_off_a_terminal_the_header_and_the_report_line_keep_the_whole_path(long_run):
    out, output = long_run
    assert len(str(out)) > 100
    lines = output.splitlines()
    assert any(line.startswith("autophagy plain:") and line.endswith(f"-> {out}")
               for line in lines), output
    assert f"report: {out / 'report.html'}" in lines


def test_off_a_terminal_stability_captions_are_one_line(long_run):
    out, output = long_run
    store = RunStore.open(out)
    config = store.config()
    tables = stability_tables(store.results(), run_constants(config, build_dataset),
                              family=run_family(config))
    assert len(tables) > 1
    lines = [line.rstrip() for line in output.splitlines()]
    # the terminal prints the family's own table; its caption and the lines after it are whole
    caption = re.sub(r"\[/?[a-z ]*\]", "", stability_caption(tables[0]))  # rich markup, if any
    assert len(caption) > 80 and caption in lines, (caption, output)
    others = ", ".join(f"{t.attrs['distance']} ({t.attrs['what']})" for t in tables[1:])
    assert f"Also measured, in report.html: {others}." in lines


def test_columns_sets_a_width_where_someone_asks_for_one(long_run):
    out, _ = long_run
    result = runner.invoke(app, ["theory", "stability", "--run", str(out)],
                           env={"COLUMNS": "60"})
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 60


@pytest.mark.parametrize("args", [["--help"], ["theory", "--help"]])
def test_help_wraps_descriptions_only_where_the_panel_is_full(args):
    """A line of a command's description that ends early (the next word would have fit) is a
    docstring line break leaking into the help."""
    output = runner.invoke(app, args).output
    panel = output[output.index("Commands"):].splitlines()[1:]
    rows = [line[1:-1] for line in panel if line.startswith("│")]
    width = len(rows[0])
    name_col = re.match(r"\s*\S+\s+", rows[0]).end()  # where descriptions start
    for i in range(len(rows) - 1):
        this, nxt = rows[i].rstrip(), rows[i + 1]
        if nxt[:name_col].strip():  # the next row is another command
            continue
        next_word = nxt.split()[0]
        assert len(this) + 1 + len(next_word) > width - 1, f"early break after {this!r}"


def test_real_points_are_drawn_over_the_samples_in_the_sample_grid():
    """Dense samples used to hide the held-out data they are compared with (samples.png)."""
    import numpy as np
    from matplotlib.colors import to_rgba

    from autophagy.report.plots import plot_sample_grid

    rng = np.random.default_rng(0)
    real = rng.normal(size=(300, 2))
    fig = plot_sample_grid({"c": {0: rng.normal(size=(300, 2)), 3: rng.normal(size=(300, 2))}},
                           labels={"c": "mixed λ=0.5"}, real=real)
    for ax in fig.axes:
        ordered = sorted(ax.collections, key=lambda c: c.get_zorder())
        top = ordered[-1]
        assert len(ordered) == 2 and np.allclose(top.get_offsets(), real)
        assert tuple(top.get_facecolor()[0][:3]) == to_rgba("black")[:3]
