"""Deep Generative Ensembles (van Breugel et al. 2023, arXiv 2305.09235) across a run's seeds.

"Synthetic data, real errors": a downstream model trained on the data of one generator inherits
that generator's errors and is over-confident about them; training on the samples of K
generators (an ensemble over the generator's uncertainty) helps. A run's seeds of one label are
K independent generators of the same loop, so for every label and generation this module sets

- ``single``: a classifier trained on one seed's saved samples (mean over the K seeds),
- ``pooled``: one classifier trained on the K seeds' samples pooled (the issue's DGE), and
- ``ensemble``: the K single classifiers' probabilities averaged (the paper's DGE),

side by side, each tested on the held-out real split: accuracy and expected calibration error.
The samples are those the run saved (every evaluation sample for points; the first 64 images
for images, too few to train on: this is a points analysis first). Labels come as in the
downstream metrics (:mod:`autophagy.metrics.downstream`): columns, or the annotator. The held
out set is the first seed's; fix ``data.seed`` so that every seed trained on the same real data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from autophagy.errors import InputError
from autophagy.metrics.base import EvalContext
from autophagy.metrics.downstream import classifier_kind, expected_calibration_error, fit_predict
from autophagy.metrics.labelling import labelled

__all__ = ["ENSEMBLE_COLUMNS", "ensemble_table"]

ENSEMBLE_COLUMNS = ("single_accuracy", "single_ece", "pooled_accuracy", "pooled_ece",
                    "ensemble_accuracy", "ensemble_ece")


def ensemble_table(store: Any, build_dataset: Callable[[Any, int], Any], *,
                   downstream: dict[str, Any] | None = None, seed: int = 0) -> pd.DataFrame:
    """One row per (label, generation): K (seeds) and the :data:`ENSEMBLE_COLUMNS`.

    ``store`` is a :class:`~autophagy.store.RunStore`; ``build_dataset(config, seed)`` builds a
    cell's dataset (the run layer passes its own); ``downstream`` the classifier and label
    source (default: the run's ``eval.downstream``).
    """
    config = store.config()
    cells = store.cells()
    if cells.empty:
        raise InputError("the run has no cells")
    first = int(cells["seed"].min())
    dataset = build_dataset(config, first)
    options = downstream if downstream is not None else config.eval.downstream.model_dump()
    if options.get("labels") == "conditional":  # stored samples are images alone
        options = {**options, "labels": "annotator"}
    rows = []
    for label, group in cells.groupby("label", sort=False):
        samples = {int(s): store.cell(c).samples() for c, s in zip(group["cell"], group["seed"],
                                                                    strict=True)}
        generations = sorted(set.intersection(*(set(s) for s in samples.values())))
        for generation in generations:
            sets = [samples[s][generation] for s in sorted(samples)]
            rows.append({"label": label, "generation": generation, "k": len(sets),
                         **_compare(dataset, sets, options, seed)})
    return pd.DataFrame(rows, columns=["label", "generation", "k", *ENSEMBLE_COLUMNS])


def _compare(dataset: Any, sets: list[np.ndarray], options: dict[str, Any],
             seed: int) -> dict[str, float]:
    """Accuracy and ECE of the single, pooled and ensembled classifiers on held-out data."""
    shaped = [np.asarray(x).reshape((len(x), *dataset.shape)) for x in sets]
    ctx = EvalContext(None, shaped[0], dataset.test, dataset, np.random.default_rng(seed),
                      downstream=options)
    lab = labelled(ctx)
    kind = classifier_kind(dataset, options.get("classifier", "auto"))
    parts = [lab.label(x) for x in shaped]

    def fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fit_predict(kind, x, y, [lab.x_test], seed=seed, n_classes=lab.n_classes)[0]

    singles = [fit(x, y) for x, y, _ in parts]
    pooled = fit(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    ensemble = np.mean(singles, axis=0)

    def accuracy(p: np.ndarray) -> float:
        return float(np.mean(p.argmax(1) == lab.y_test))

    return {
        "single_accuracy": float(np.mean([accuracy(p) for p in singles])),
        "single_ece": float(np.mean([expected_calibration_error(p, lab.y_test)
                                     for p in singles])),
        "pooled_accuracy": accuracy(pooled),
        "pooled_ece": expected_calibration_error(pooled, lab.y_test),
        "ensemble_accuracy": accuracy(ensemble),
        "ensemble_ece": expected_calibration_error(ensemble, lab.y_test),
    }
