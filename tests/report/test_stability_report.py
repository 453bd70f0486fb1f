"""The per-lambda stability table in every report and in ``autophagy theory stability --run``,
and the fixed-point metrics of the other families (GMM, KDE, a user's parameter vector)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from autophagy.cli import app
from autophagy.data import load_dataset
from autophagy.loop import EvalSettings, LoopSettings, run_cell
from autophagy.metrics.fixed_point import kde_l2_inner
from autophagy.models import GaussianMixture
from autophagy.models.families.kde import KernelDensity
from autophagy.policies import make_policy
from autophagy.report.stability import stability_table

METRICS = ["theta_distance", "theta_step", "gen0_mmd2", "step_mmd2"]


@pytest.fixture(scope="module")
def gaussian_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("stability")
    config = {
        "name": "tiny-sweep",
        "seed": [0, 1, 2, 3],
        "data": {"name": "eight_gaussians", "n_train": 100, "n_test": 200, "seed": 0},
        "model": {"name": "gaussian"},
        "loop": {"policies": {"mixed": {"lambda": [0.5, 2]}, "fully_synthetic": {}},
                 "generations": 12},
        "eval": {"metrics": METRICS, "n_samples": 200, "verdict_metric": "theta_distance"},
        "run": {"executor": "inline", "checkpoints": "last"},
    }
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    out = root / "run"
    result = CliRunner().invoke(app, ["run", "--config", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_every_report_has_the_stability_table_and_figure(gaussian_run):
    out, output = gaussian_run
    assert "Stability on theta_distance" in output and "covers lambda <" in output
    html = (out / "report.html").read_text()
    assert "Stability: the theorem against the run" in html
    assert "rho against lambda" in html and "plateau, theory" in html
    assert (out / "figures" / "stability.png").stat().st_size > 10_000


def test_theory_stability_reads_a_finished_run(gaussian_run):
    out, _ = gaussian_run
    result = CliRunner().invoke(app, ["theory", "stability", "--run", str(out)])
    assert result.exit_code == 0, result.output
    assert "mixed λ=0.5" in result.output and "fully_synthetic" in result.output
    given = CliRunner().invoke(
        app, ["theory", "stability", "--run", str(out), "--L", "0", "--eps", "0", "--alpha", "1"]
    )
    assert given.exit_code == 0 and "given on the command line" in given.output
    partial = CliRunner().invoke(app, ["theory", "stability", "--run", str(out), "--L", "2"])
    assert partial.exit_code == 2 and "go together" in partial.output


def test_table_from_results_measures_lambda_over_one_plus_lambda(gaussian_run):
    import autophagy

    out, _ = gaussian_run
    table = stability_table(autophagy.load_results(out), constants={"L": 2.0, "eps": 0.25,
                                                                   "alpha": 1.0})
    rows = table.set_index("label")
    assert list(rows.loc[["mixed λ=0.5", "mixed λ=2"], "rho_eps0"]) == pytest.approx([1 / 3, 2 / 3])
    assert rows.loc["mixed λ=0.5", "rho_theorem"] == pytest.approx(0.5 * 1.5 / 1.5)
    assert np.isnan(rows.loc["mixed λ=2", "rho_theorem"])  # lam (1 + L eps / alpha) >= 1
    assert table.attrs["theorem_max_lambda"] == pytest.approx(1 / 1.5)
    for label, rho in [("mixed λ=0.5", 1 / 3), ("mixed λ=2", 2 / 3)]:
        row = rows.loc[label]
        assert row.rho_low < rho < row.rho_high and row.observed == "stable"
    assert rows.loc["fully_synthetic", "observed"] != "stable"
    assert table.attrs["observed_max_lambda"] == 2.0


def test_a_table_without_the_distance_is_empty():
    frame = pd.DataFrame({"cell": ["c"], "label": ["l"], "policy": ["mixed"], "lambda": [1.0],
                          "seed": [0], "generation": [0], "metric": ["w2"], "value": [1.0]})
    assert stability_table(frame).empty


def _distances(model, dataset, policy, generations=4):
    result = run_cell(model, dataset, policy, LoopSettings(generations, seed=0),
                      EvalSettings(metrics=("theta_distance", "theta_step"), n_samples=50))
    return result.metrics.pivot(index="generation", columns="metric", values="value")


def test_gmm_and_kde_distances_start_at_zero_and_move():
    moons = load_dataset("moons", n_train=150, n_test=100, seed=0)
    for model in (GaussianMixture(n_components=4), KernelDensity(bandwidth=0.2)):
        wide = _distances(model, moons, make_policy("mixed", **{"lambda": 1}))
        assert wide.loc[0, "theta_distance"] == 0.0
        assert (wide.loc[1:, "theta_distance"] > 0).all() and (wide.loc[1:, "theta_step"] > 0).all()
    # lambda = 0 refits the KDE on the real data alone: it never leaves theta*
    still = _distances(KernelDensity(bandwidth=0.2), moons, make_policy("mixed", **{"lambda": 0}))
    np.testing.assert_allclose(still["theta_distance"], 0.0, atol=1e-7)


def test_kde_l2_inner_product_matches_numerical_integration():
    rng = np.random.default_rng(0)
    a = {"data": rng.normal(size=(7, 1)), "kernel_cov": np.array([[0.3**2]])}
    b = {"data": rng.normal(1.0, 1.0, size=(5, 1)), "kernel_cov": np.array([[0.5**2]])}
    grid = np.linspace(-8, 9, 20001)

    def density(kde):
        h = np.sqrt(kde["kernel_cov"][0, 0])
        z = (grid[:, None] - kde["data"][None, :, 0]) / h
        return np.exp(-0.5 * z**2).mean(1) / (h * np.sqrt(2 * np.pi))

    numeric = np.trapezoid(density(a) * density(b), grid)
    assert kde_l2_inner(a, b) == pytest.approx(numeric, rel=1e-6)


class VectorModel:
    """A model that names its own parameters: a Gaussian mean with unit variance."""

    def fit(self, data, *, warm_start=False, budget=None, rng=None):
        self.mu_ = np.asarray(data, dtype=float).mean(0)
        return self

    def sample(self, n, *, rng, temperature=1.0):
        return self.mu_ + rng.standard_normal((n, len(self.mu_)))

    def parameter_vector(self):
        return self.mu_

    def state_dict(self):
        return {"mu": self.mu_}

    def load_state_dict(self, state):
        self.mu_ = state["mu"]


def test_a_parameter_vector_is_measured_euclidean():
    data = load_dataset("gaussian", n_train=40, n_test=10, seed=1, mean=[0.0, 0.0],
                        cov=[[1.0, 0.0], [0.0, 1.0]])
    model = VectorModel()
    result = run_cell(model, data, make_policy("fully_synthetic"), LoopSettings(3, seed=0),
                      EvalSettings(metrics=("theta_distance",), n_samples=10))
    last = result.metrics.query("generation == 3").value.item()
    assert last == pytest.approx(np.linalg.norm(model.mu_ - data.train.mean(0)))


def test_the_stability_table_is_checked_against_the_verdicts(gaussian_run):
    _, output = gaussian_run
    # the verdict (theta_distance against generation 0) and the contraction agree here; the
    # other distance is named, the report has it
    assert "Verdicts and stability agree on every curve." in output
    assert "Also measured, in report.html: gen0_mmd2" in output


def _one_config(tmp_path, seeds, metrics):
    config = {
        "name": "one-seed",
        "seed": seeds,
        "data": {"name": "eight_gaussians", "n_train": 100, "n_test": 200, "seed": 0},
        "model": {"name": "gaussian"},
        "loop": {"policies": {"mixed": {"lambda": [0.5]}}, "generations": 4},
        "eval": {"metrics": metrics, "n_samples": 100, "verdict_metric": metrics[0]},
        "run": {"executor": "inline", "checkpoints": "last"},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--config", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_a_one_seed_run_says_it_needs_seeds_instead_of_printing_rho(tmp_path):
    out, output = _one_config(tmp_path, [0], ["energy"])
    line = ("Stability: needs 2 or more seeds for an interval of the contraction factor (this "
            "run has 1)")
    assert line in output and "ρ 95%" not in output
    html = (out / "report.html").read_text()
    assert line in html and not (out / "figures" / "stability.png").exists()


def test_a_mixed_run_measures_its_distance_whatever_eval_metrics_lists(tmp_path):
    import autophagy

    out, output = _one_config(tmp_path, [0, 1, 2], ["energy"])  # no distance listed
    measured = set(autophagy.load_results(out)["metric"])
    assert {"energy", "theta_distance", "theta_step"} <= measured
    assert "Stability on theta_distance" in output
