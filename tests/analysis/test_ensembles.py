"""Deep Generative Ensembles over a run's seeds, and the expected calibration error."""

from __future__ import annotations

import numpy as np
import pytest

from autophagy.analysis.ensembles import ensemble_table
from autophagy.config import load_config
from autophagy.metrics.downstream import expected_calibration_error
from autophagy.run.cells import build_dataset
from autophagy.run.checks import check_config
from autophagy.run.experiment import run_experiment
from autophagy.store import RunStore


def test_expected_calibration_error_by_hand():
    # confidences 0.9, 0.9 (bin 13), 0.6, 0.6 (bin 9); bin 13 right 1/2, bin 9 right 2/2
    proba = np.array([[0.9, 0.1], [0.1, 0.9], [0.6, 0.4], [0.4, 0.6]])
    y = np.array([0, 0, 0, 1])
    # 0.5 * |0.5 - 0.9| + 0.5 * |1.0 - 0.6| = 0.4
    assert expected_calibration_error(proba, y) == pytest.approx(0.4)
    assert expected_calibration_error(np.eye(3), [0, 1, 2]) == 0.0


def _run(tmp_path, seeds):
    config = load_config(preset="toy-minority", overrides=[
        f"seed={seeds}", "data.n_train=120", "data.n_test=300", "data.seed=0",
        "loop.generations=1", "loop.policies={fully_synthetic: {}}", "eval.n_samples=150",
        "eval.metrics=[w2]", "eval.verdict_metric=w2", "run.executor=inline",
        "eval.downstream.classifier=logistic"])
    check_config(config)
    store = RunStore.create(tmp_path / "run", config.to_yaml(), keep=config.run.checkpoints)
    run_experiment(config, store)
    return store


def test_one_generator_alone_is_its_own_pool_and_ensemble(tmp_path):
    table = ensemble_table(_run(tmp_path, [3]), build_dataset)
    assert list(table["generation"]) == [0, 1] and set(table["k"]) == {1}
    for kind in ("pooled", "ensemble"):
        np.testing.assert_allclose(table[f"{kind}_accuracy"], table["single_accuracy"])
        np.testing.assert_allclose(table[f"{kind}_ece"], table["single_ece"])


def test_k_seeds_make_one_row_per_generation(tmp_path):
    table = ensemble_table(_run(tmp_path, [0, 1]), build_dataset)
    assert set(table["k"]) == {2} and len(table) == 2
    assert table[["pooled_accuracy", "ensemble_accuracy"]].to_numpy().min() > 0.5
