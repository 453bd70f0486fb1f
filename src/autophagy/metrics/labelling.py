"""Labels of any set of samples, for the downstream metrics (:mod:`autophagy.metrics.downstream`).

Where the labels of generated samples come from (``eval.downstream.labels``, recorded in the
run's config):

- ``column``: the dataset carries the label (and the group) as columns that every family
  models (points, as ``linear_regression``'s y); a sample's label is its column rounded;
- ``conditional``: a class-conditional model (:mod:`autophagy.models.families.conditional`)
  drew each sample for a label, which the loop hands over with the samples
  (``EvalContext.sample_labels``, ``train_labels``); a group it did not condition on is the
  group annotator's; ``label_fidelity`` says how often the annotator agrees;
- ``annotator``: a classifier trained once on the real training split (the dataset's cached
  :class:`~autophagy.metrics.classifier.DatasetClassifier`; a second one for the group) labels
  the samples; every generation records its held-out accuracy as ``annotator_accuracy``.

In a generation's training set, real rows keep their true labels (matched by value to the
real split and pool); only the others are labelled as above.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from autophagy.data.base import Dataset
from autophagy.data.labelled import has_groups, label_counts, split_labels
from autophagy.errors import InputError
from autophagy.metrics.base import EvalContext

__all__ = ["LABEL_SOURCES", "Labelled", "label_source", "labelled", "prepare_annotators"]

LABEL_SOURCES = ("auto", "column", "annotator", "conditional")


def label_source(dataset: Dataset, requested: str = "auto", conditional: bool = False) -> str:
    """``column``, ``conditional`` or ``annotator``: where the labels of generated samples come
    from (``conditional``: the model is class-conditional, its samples carry theirs)."""
    if requested not in LABEL_SOURCES:
        raise InputError(f"eval.downstream.labels must be one of {', '.join(LABEL_SOURCES)}, "
                         f"got {requested!r}")
    column = "label_column" in dataset.params
    if requested == "column" and not column:
        raise InputError(f"eval.downstream.labels: dataset {dataset.name!r} has no label "
                         "column; use annotator (or auto)")
    if requested == "conditional" and not conditional:
        raise InputError("eval.downstream.labels: conditional needs a class-conditional model "
                         "(model conditional_ddpm); use annotator (or auto)")
    if requested == "auto":
        return "column" if column else "conditional" if conditional else "annotator"
    return requested


def _features(dataset: Dataset, x: np.ndarray) -> np.ndarray:
    """What the classifier sees: the rows without their label and group columns, or images."""
    p = dataset.params
    if "label_column" not in p:
        return np.asarray(x, dtype=np.float32)
    drop = {p["label_column"] % x.shape[1]}
    if p.get("group_column") is not None:
        drop.add(p["group_column"] % x.shape[1])
    return np.asarray(x, dtype=np.float64)[:, [j for j in range(x.shape[1]) if j not in drop]]


def _column(x: np.ndarray, j: int, n: int) -> np.ndarray:
    return np.clip(np.rint(np.asarray(x)[:, j]), 0, max(n - 1, 0)).astype(np.int64)


def _group_view(dataset: Dataset) -> Dataset:
    """The dataset with its groups as labels: what the group annotator is trained on."""
    p = dataset.params
    params = {f"{k}_labels": p.get(f"{k}_groups") for k in ("train", "test", "pool")}
    return dataclasses.replace(dataset, name=f"{dataset.name}-groups", params=params)


def prepare_annotators(dataset: Dataset) -> None:
    """Train (or load) the annotators of an image dataset once, before workers start."""
    from autophagy.metrics.classifier import DatasetClassifier

    DatasetClassifier.for_dataset(dataset)
    if has_groups(dataset):
        DatasetClassifier.for_dataset(_group_view(dataset))


class Labelled:
    """The dataset as the downstream metrics see it: real features, labels and groups, and the
    labels of the samples and of the training set (by column, conditional model or
    annotator), memoized on the context."""

    def __init__(self, ctx: EvalContext):
        self.ctx, ds = ctx, ctx.dataset
        self.source = label_source(ds, (ctx.downstream or {}).get("labels", "auto"),
                                   conditional=ctx.sample_labels is not None)
        self.y_test, self.g_test = split_labels(ds, "test")
        y_train, g_train = split_labels(ds, "train")
        self.n_classes, self.n_groups = label_counts(ds)
        self.x_test = _features(ds, ds.test)
        self.minority_cells = None
        if g_train is not None and self.n_groups:
            counts = np.zeros((self.n_classes, self.n_groups))
            np.add.at(counts, (y_train, g_train), 1)
            self.minority_cells = counts < len(y_train) / counts.size
        self._annotators: dict[str, Any] = {}

    def annotator(self, what: str) -> Any:
        if what not in self._annotators:
            from autophagy.metrics.classifier import DatasetClassifier

            ds = self.ctx.dataset if what == "labels" else _group_view(self.ctx.dataset)
            if self.ctx.dataset.kind != "images":
                raise InputError(f"eval.downstream.labels: annotator labels images; dataset "
                                 f"{self.ctx.dataset.name!r} has points: use column")
            self._annotators[what] = DatasetClassifier.for_dataset(ds)
        return self._annotators[what]

    def of(self, prefix: str, groups: bool = True
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(features, labels, groups or None) of the samples (``tstr``) or of the training set
        (``trainset``): a conditional model's own labels; else, in a training set, real rows
        keep their true labels and the others are labelled as :meth:`label` does."""
        ctx = self.ctx
        x = np.asarray(ctx.samples if prefix == "tstr" else ctx.train)
        if self.source == "conditional":
            y, g = ctx.sample_labels if prefix == "tstr" else ctx.train_labels
            if g is None and self.n_groups and groups:  # the generator drew the group
                g = self.annotator("groups").predict(x)
            return (_features(ctx.dataset, x), np.asarray(y),
                    None if g is None else np.asarray(g))
        if self.source == "column" or prefix == "tstr":
            return self.label(x, groups)
        y, g = self._real_rows(x)
        other = y < 0
        if other.any():
            _, y[other], g_other = self.label(x[other], groups)
            if g is not None:
                g[other] = g_other if g_other is not None else -1
        return _features(ctx.dataset, x), y, g if g is None or (g >= 0).all() else None

    def label(self, x: np.ndarray, groups: bool = True
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(features, labels, groups or None) of any samples ``x`` in the dataset's shape, by
        column or annotator; the group annotator runs only when ``groups`` is asked for."""
        p = self.ctx.dataset.params
        if self.source == "column":
            g = p.get("group_column")
            return (_features(self.ctx.dataset, x), _column(x, p["label_column"], self.n_classes),
                    None if g is None else _column(x, g, self.n_groups))
        g = self.annotator("groups").predict(x) if self.n_groups and groups else None
        return _features(self.ctx.dataset, x), self.annotator("labels").predict(x), g

    def _real_rows(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Labels and groups of the rows of ``x`` that are rows of the real training split or
        pool (matched by value): a training set's real part keeps its true labels; -1 for
        the others."""
        ds = self.ctx.dataset
        known: dict[bytes, tuple[int, int]] = {}
        for split in ("train", "pool"):
            rows = getattr(ds, split)
            if rows is None or not len(rows):
                continue
            y, g = split_labels(ds, split)
            g = np.full(len(y), -1) if g is None else g
            flat = np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)
            known.update(zip((r.tobytes() for r in flat), zip(y.tolist(), g.tolist(),
                                                               strict=True), strict=True))
        flat = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        found = np.array([known.get(r.tobytes(), (-1, -1)) for r in flat],
                         dtype=np.int64).reshape(len(x), 2)
        return found[:, 0].copy(), found[:, 1].copy() if self.n_groups else None


def labelled(ctx: EvalContext) -> Labelled:
    return ctx.memo("downstream:labelled", lambda: Labelled(ctx))
