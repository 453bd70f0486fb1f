"""The verdict rule on hand-made curves, the figures and page, and atomic writes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from autophagy.atomic import atomic_open, atomic_write_bytes
from autophagy.metrics import METRICS, Metric, register_metric
from autophagy.report import plot_metric_curves, verdict_table, write_report
from autophagy.report.plots import metric_title, order_metrics
from autophagy.report.summary import metric_lower_is_better


def curves(spec: dict[str, list[list[float]]], metric: str = "w2") -> pd.DataFrame:
    """Long metrics table from {label: [seed0 values by generation, seed1 values, ...]}."""
    rows = []
    for label, seeds in spec.items():
        for seed, values in enumerate(seeds):
            for gen, value in enumerate(values):
                rows.append(
                    {
                        "cell": f"{label}-{seed}",
                        "label": label,
                        "policy": label,
                        "lambda": math.nan,
                        "seed": seed,
                        "generation": gen,
                        "metric": metric,
                        "value": value,
                    }
                )
    return pd.DataFrame(rows)


def test_verdicts_follow_the_written_rule_on_hand_computed_curves():
    metrics = curves(
        {
            "flat": [[1.0, 1.1, 1.2, 1.2, 1.3], [1.0, 1.0, 1.2, 1.1, 1.1]],  # last = 1.2 -> +20%
            "worse": [[1.0, 1.2, 1.4, 1.5, 1.6]],  # last = (1.4 + 1.5 + 1.6) / 3 = 1.5 -> drifting
            "broken": [[1.0, 1.5, 2.0, 2.5, 3.0]],  # last = 2.5 >= 2 x gen0 -> collapsing
            "better": [[1.0, 0.5, 0.4, 0.3, 0.2]],  # improving is stable
        }
    )
    table = verdict_table(metrics, metric="w2").set_index("label")
    assert table.loc["flat", "last"] == pytest.approx((1.2 + 1.2 + 1.3 + 1.2 + 1.1 + 1.1) / 6)
    assert table.loc["worse", "change"] == pytest.approx(0.5)
    assert table["verdict"].to_dict() == {
        "flat": "stable",
        "worse": "drifting",
        "broken": "collapsing",
        "better": "stable",
    }


def test_higher_is_better_metrics_use_the_mirrored_rule():
    metrics = curves(
        {
            "kept": [[1.0, 0.9, 0.85, 0.8]],  # -15%: stable
            "shrinking": [[1.0, 0.8, 0.7, 0.6]],  # -30%, above 1/2: drifting
            "gone": [[1.0, 0.5, 0.3, 0.2]],  # <= 1/2: collapsing
        },
        metric="cov_trace_ratio",
    )
    table = verdict_table(metrics, metric="cov_trace_ratio").set_index("label")
    assert table["verdict"].to_dict() == {
        "kept": "stable",
        "shrinking": "drifting",
        "gone": "collapsing",
    }


@pytest.fixture
def survival():
    """A registered higher-is-better metric shown between the distances and NLL."""
    metric = Metric(
        name="_test_survival",
        compute=lambda ctx: 1.0,
        description="a test metric",
        title="survival rate",
        order=45.5,
        lower_is_better=False,
    )
    register_metric(metric)
    yield metric
    METRICS.unregister(metric.name)


def test_titles_order_and_direction_come_from_the_registry(survival):
    names = ["zeta", "cov_trace_ratio", "nll", "_test_survival", "fid", "w2", "alpha", "energy"]
    assert order_metrics(names) == [
        "w2",
        "energy",
        "_test_survival",
        "nll",
        "fid",
        "cov_trace_ratio",
        "alpha",
        "zeta",
    ]
    assert metric_title("_test_survival") == "survival rate (_test_survival)"
    assert metric_title("w2") == "Wasserstein-2 distance (w2)"
    assert metric_title("zeta") == "zeta"
    assert not metric_lower_is_better("_test_survival")
    assert metric_lower_is_better("zeta") and metric_lower_is_better("w2")
    assert not metric_lower_is_better("precision")
    spec = {"gone": [[1.0, 0.5, 0.3, 0.2]], "up": [[1.0, 3.0, 3.0, 3.0]]}
    metrics = curves(spec, "_test_survival")
    verdicts = verdict_table(metrics, metric="_test_survival").set_index("label")["verdict"]
    assert verdicts.to_dict() == {"gone": "collapsing", "up": "stable"}
    fig = plot_metric_curves(metrics, "_test_survival")
    assert fig.axes[0].get_ylabel() == "survival rate (_test_survival)"
    assert fig.axes[0].get_title().startswith("Survival rate across generations")


def test_names_that_are_not_registered_are_lower_is_better_and_keep_their_key():
    for name in ["class_coverage", "accuracy", "inception_score"]:  # once hand-listed, unregistered
        assert metric_lower_is_better(name)
        assert metric_title(name) == name
    assert order_metrics(["b", "a", "precision"]) == ["precision", "a", "b"]


def test_diverged_and_missing_curves_are_named_not_guessed():
    metrics = curves({"nan": [[1.0, math.inf, math.inf, math.inf]], "one": [[1.0]]})
    table = verdict_table(metrics, metric="w2").set_index("label")
    assert table.loc["nan", "verdict"] == "diverged"
    assert table.loc["one", "verdict"] == "n/a"


def test_theory_is_drawn_dashed_beside_the_measured_curve():
    metrics = curves(
        {"fully_synthetic": [[1.0, 0.9, 0.8], [1.0, 0.95, 0.85]]}, metric="cov_trace_ratio"
    )
    theory = pd.DataFrame(
        {
            "label": "fully_synthetic",
            "generation": [0, 1, 2],
            "metric": "cov_trace_ratio",
            "value": [1.0, 0.98, 0.96],
        }
    )
    fig = plot_metric_curves(metrics, "cov_trace_ratio", theory=theory)
    lines = fig.axes[0].get_lines()
    dashed = [ln for ln in lines if ln.get_linestyle() == "--"]
    assert any(np.allclose(ln.get_ydata(), [1.0, 0.98, 0.96]) for ln in dashed)
    solid = [ln for ln in lines if ln.get_linestyle() == "-"]
    assert any(np.allclose(ln.get_ydata(), [1.0, 0.925, 0.825]) for ln in solid)


def test_report_page_is_self_contained(tmp_path):
    metrics = curves({"mixed λ=0.5": [[0.5, 0.5, 0.6]], "fully_synthetic": [[0.5, 0.9, 1.4]]})
    cells = pd.DataFrame(
        {
            "cell": ["mixed λ=0.5-0", "fully_synthetic-0"],
            "label": ["mixed λ=0.5", "fully_synthetic"],
            "policy": ["mixed", "fully_synthetic"],
            "lambda": [0.5, math.nan],
            "seed": [0, 0],
            "status": ["done", "done"],
            "message": ["", ""],
        }
    )
    rng = np.random.default_rng(0)
    samples = {c: {g: rng.normal(size=(50, 2)) for g in range(3)} for c in cells.cell}
    html_path = write_report(
        tmp_path,
        title="t",
        config_text="name: t",
        metrics=metrics,
        cells=cells,
        samples=samples,
        real=rng.normal(size=(100, 2)),
    )
    html = html_path.read_text()
    assert html.count("data:image/png;base64,") == 2  # w2 curves + sample grid
    assert "collapsing" in html and "stable" in html
    assert '<img src="figures' not in html  # no link to a file the page needs beside it
    assert {p.name for p in (tmp_path / "figures").iterdir()} == {"w2.png", "samples.png"}


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "table.bin"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError), atomic_open(target, "wb") as f:
        f.write(b"half of the new")
        raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.bin"]  # no temp file left


def test_image_runs_get_a_grid_of_image_grids(tmp_path):
    metrics = curves({"fully_synthetic": [[1.0, 1.5, 2.0]]}, metric="energy")
    cells = pd.DataFrame(
        {
            "cell": ["fully_synthetic-0"],
            "label": ["fully_synthetic"],
            "policy": ["fully_synthetic"],
            "lambda": [math.nan],
            "seed": [0],
            "status": ["done"],
            "message": [""],
        }
    )
    rng = np.random.default_rng(0)
    samples = {"fully_synthetic-0": {g: rng.uniform(-1, 1, (20, 1, 8, 8)) for g in range(3)}}
    html = write_report(
        tmp_path,
        title="t",
        config_text="",
        metrics=metrics,
        cells=cells,
        samples=samples,
        verdict_metric="energy",
    ).read_text()
    assert html.count("data:image/png;base64,") == 2
    assert (tmp_path / "figures" / "samples.png").exists()
