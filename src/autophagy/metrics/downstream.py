"""Downstream metrics: what a classifier trained on a generation's data does on real data.

Three papers ask what self-consumed data does to the models trained on it (Zhang et al. 2024,
arXiv 2410.10160: bias amplified across generations; Wyllie, Shumailov and Papernot 2024, arXiv
2403.07857: fairness feedback loops; van Breugel et al. 2023, arXiv 2305.09235: synthetic data,
real errors). Every generation, a fixed cheap classifier is trained on

- ``tstr_*``: the generation's evaluation samples alone (train on synthetic, test on real), and
- ``trainset_*``: the generation's actual training set (what the policy fed the generator),

and tested on the held-out real split: accuracy, balanced accuracy, worst-class recall; with a
group attribute, per-group and worst-group accuracy, the accuracy gap (best minus worst group),
and, for binary labels, the demographic-parity and equalized-odds differences (the worst group
and the gap are over the (label, group) cells, see :func:`group_scores`). The group numbers
come from fairlearn (``MetricFrame`` and its difference functions; the ``downstream`` extra).
``label_shares`` / ``group_shares`` give the class and group histogram of the samples, and
``minority_share`` the share of the samples in the real data's minority (label, group) cells:
how the minority fades.

Labels of generated samples: :mod:`autophagy.metrics.labelling` (column, conditional model
or annotator; the run records the choice).

The classifier (``eval.downstream.classifier``): ``logistic`` (scikit-learn, on flattened
values), ``mlp`` (scikit-learn, two hidden layers of 64), ``cnn`` (the project's
:class:`~autophagy.metrics.classifier.SmallCNN`, images); ``auto`` is ``mlp`` for points and
``logistic`` for images. Its seed comes from :func:`~autophagy.metrics.base.metric_rng` under
one name for both training sets, so ``tstr`` and ``trainset`` differ only by their data (on
real data the two agree exactly), and the evaluation stream alone is used: the training
trajectory never moves, and resume gives the same numbers.

A sample set with a single class gives a constant classifier (scikit-learn refuses to fit one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from autophagy.data.base import Dataset
from autophagy.data.labelled import has_groups, has_labels
from autophagy.errors import InputError
from autophagy.metrics.base import EvalContext, Metric, MetricGroup, metric_rng
from autophagy.metrics.labelling import labelled

__all__ = [
    "CLASSIFIERS",
    "DOWNSTREAM_METRICS",
    "classification_scores",
    "classifier_kind",
    "expected_calibration_error",
    "fit_predict",
    "group_scores",
    "require_fairlearn",
]

CLASSIFIERS = ("auto", "logistic", "mlp", "cnn")
SOURCES = {"tstr": "the generation's samples alone (train on synthetic, test on real)",
           "trainset": "the generation's actual training set"}
SEED_STREAM = "downstream"
MLP_HIDDEN = (64, 64)
CNN_EPOCHS = 8


def require_fairlearn() -> Any:
    """``fairlearn.metrics``, or a one-line error saying how to install it."""
    try:
        import fairlearn.metrics as fm
    except ImportError:
        raise InputError("the group metrics need fairlearn: pip install 'autophagy[downstream]'"
                         ) from None
    return fm


# --- array functions ------------------------------------------------------------------------


def classification_scores(y_true: Any, y_pred: Any) -> dict[str, float]:
    """Accuracy, balanced accuracy and worst-class recall (over the classes of ``y_true``)."""
    from sklearn.metrics import balanced_accuracy_score, recall_score

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    classes = np.unique(y_true)
    recalls = recall_score(y_true, y_pred, labels=classes, average=None, zero_division=0)
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "worst_class_recall": float(np.min(recalls)),
    }


def group_scores(y_true: Any, y_pred: Any, groups: Any) -> dict[str, float]:
    """Group metrics of predictions, from fairlearn.

    - ``group_accuracy_<g>``: accuracy within each value g of the group attribute;
    - ``worst_group_accuracy`` and ``accuracy_gap`` (best minus worst): over the groups in the
      sense of Sagawa et al. (2020), the cells (label, attribute), so that a minority cell (a
      red 7 where sevens are mostly green) counts as a group of its own: a classifier that
      learned the colour shortcut fails exactly there;
    - for binary labels, ``dp_difference`` and ``eo_difference``: the demographic-parity and
      equalized-odds differences over the attribute.
    """
    from sklearn.metrics import accuracy_score

    fm = require_fairlearn()
    y_true, y_pred, groups = (np.asarray(a) for a in (y_true, y_pred, groups))
    binary = set(np.unique(y_true)) <= {0, 1} and set(np.unique(y_pred)) <= {0, 1}
    # Two frames in all (fairlearn's difference functions would build one each): every rate
    # over the attribute in one, the (label, attribute) cells in the other. The differences
    # are fairlearn's definitions, ``demographic_parity_difference`` (selection rates) and
    # ``equalized_odds_difference`` (worst case of the TPR and FPR differences); a test
    # checks both against those functions.
    rates = {"accuracy": accuracy_score}
    if binary:
        rates.update(selection_rate=fm.selection_rate, tpr=fm.true_positive_rate,
                     fpr=fm.false_positive_rate)
    by_attribute = fm.MetricFrame(metrics=rates, y_true=y_true, y_pred=y_pred,
                                  sensitive_features=groups)
    out = {f"group_accuracy_{g}": float(v)
           for g, v in by_attribute.by_group["accuracy"].items()}
    cells = fm.MetricFrame(metrics=accuracy_score, y_true=y_true, y_pred=y_pred,
                           sensitive_features={"label": y_true, "group": groups})
    out["worst_group_accuracy"] = float(cells.group_min())
    out["accuracy_gap"] = float(cells.difference(method="between_groups"))
    if binary:
        gaps = by_attribute.difference(method="between_groups")
        out["dp_difference"] = float(gaps["selection_rate"])
        out["eo_difference"] = float(max(gaps["tpr"], gaps["fpr"]))
    return out


def expected_calibration_error(proba: Any, y_true: Any, n_bins: int = 15) -> float:
    """Expected calibration error: the mean over equal-width confidence bins of
    ``|accuracy - confidence|``, weighted by the share of samples in each bin (Guo et al. 2017).

    The confidence of a prediction is its largest class probability. Hand-written: scikit-learn
    has the reliability curve but not this summary of it.
    """
    p = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y_true)
    if len(p) == 0:
        return float("nan")
    confidence, correct = p.max(1), (p.argmax(1) == y).astype(np.float64)
    bins = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        inside = bins == b
        total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def classifier_kind(dataset: Dataset, requested: str = "auto") -> str:
    """``logistic``, ``mlp`` or ``cnn``: ``eval.downstream.classifier`` checked against the
    data (``auto``: ``mlp`` for points, ``logistic`` for images)."""
    if requested not in CLASSIFIERS:
        raise InputError(f"eval.downstream.classifier must be one of "
                         f"{', '.join(CLASSIFIERS)}, got {requested!r}")
    if requested == "cnn" and dataset.kind != "images":
        raise InputError("eval.downstream.classifier: cnn is for images; use logistic or mlp")
    if requested == "auto":
        return "mlp" if dataset.kind == "points" else "logistic"
    return requested


def _constant(label: int) -> Any:
    class Constant:
        def predict(self, x: Any) -> np.ndarray:
            return np.full(len(x), label, dtype=np.int64)

        def predict_proba(self, x: Any, n_classes: int) -> np.ndarray:
            p = np.zeros((len(x), n_classes))
            p[:, label] = 1.0
            return p

    return Constant()


def fit_predict(kind: str, x: np.ndarray, y: np.ndarray, tests: list[np.ndarray], *, seed: int,
                n_classes: int) -> list[np.ndarray]:
    """Fit classifier ``kind`` on (x, y) and return its class probabilities (n, n_classes) on
    each array of ``tests``. Images go flat to the scikit-learn classifiers."""
    y = np.asarray(y, dtype=np.int64)
    present = np.unique(y)
    if len(present) < 2:
        clf = _constant(int(present[0]) if len(present) else 0)
        return [clf.predict_proba(t, n_classes) for t in tests]
    if kind == "cnn":
        import torch

        from autophagy.metrics.classifier import _as_images, _batched, train_classifier

        module, _ = train_classifier(x, y, seed=seed, n_classes=n_classes, epochs=CNN_EPOCHS)
        return [_batched(lambda b: torch.softmax(module(b), 1), _as_images(t), "cpu")
                .astype(np.float64).reshape(len(t), n_classes) for t in tests]
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    flat = x.reshape(len(x), -1)
    if kind == "logistic":
        clf = LogisticRegression(max_iter=500)
    elif kind == "mlp":
        clf = MLPClassifier(MLP_HIDDEN, max_iter=300, random_state=seed)
    else:
        raise InputError(f"eval.downstream.classifier: unknown {kind!r}; choose from: "
                         f"{', '.join(CLASSIFIERS)}")
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(flat, y)
    out = []
    for t in tests:
        p = np.zeros((len(t), n_classes))
        p[:, clf.classes_] = clf.predict_proba(t.reshape(len(t), -1))
        out.append(p)
    return out


# --- the metrics ----------------------------------------------------------------------------


def _scores(ctx: EvalContext, prefix: str) -> dict[str, float]:
    lab = labelled(ctx)
    feats, y, _ = ctx.memo(f"downstream:labels:{prefix}",
                           lambda: lab.of(prefix, groups=prefix == "tstr"))
    seed = int(metric_rng(ctx, SEED_STREAM).integers(2**31 - 1))
    kind = classifier_kind(ctx.dataset, (ctx.downstream or {}).get("classifier", "auto"))
    (proba,) = fit_predict(kind, feats, y, [lab.x_test], seed=seed, n_classes=lab.n_classes)
    pred = proba.argmax(1)
    out = classification_scores(lab.y_test, pred)
    if lab.n_groups and lab.g_test is not None:
        out.update(group_scores(lab.y_test, pred, lab.g_test))
    return {f"{prefix}_{k}": v for k, v in out.items()}


def _shares(ctx: EvalContext) -> dict[str, float]:
    lab = labelled(ctx)
    _, y, g = ctx.memo("downstream:labels:tstr", lambda: lab.of("tstr"))
    out = {f"label_share_{c}": float(v)
           for c, v in enumerate(np.bincount(y, minlength=lab.n_classes) / max(len(y), 1))}
    if g is not None:
        shares = np.bincount(g, minlength=lab.n_groups) / max(len(g), 1)
        out.update({f"group_share_{k}": float(v) for k, v in enumerate(shares)})
        out["minority_share"] = float(np.mean(lab.minority_cells[y, g]))
    if lab.source == "annotator":
        out["annotator_accuracy"] = lab.annotator("labels").accuracy
    if lab.source == "conditional":
        seen = lab.annotator("labels").predict(np.asarray(ctx.samples))
        out["label_fidelity"] = float(np.mean(seen == y)) if len(y) else float("nan")
    return out


def _labels(ctx: EvalContext) -> bool:
    return has_labels(ctx.dataset) and len(ctx.samples) > 0


def _groups(ctx: EvalContext) -> bool:
    return _labels(ctx) and has_groups(ctx.dataset)


def _binary_groups(ctx: EvalContext) -> bool:
    return _groups(ctx) and labelled(ctx).n_classes == 2


def _with_train(test: Any) -> Any:
    return lambda ctx: ctx.train is not None and test(ctx)


GROUPS = {prefix: MetricGroup(f"downstream_{prefix}", lambda ctx, p=prefix: _scores(ctx, p))
          for prefix in SOURCES}
SHARES = MetricGroup("downstream_shares", _shares)

TITLES = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy",
          "worst_class_recall": "worst-class recall",
          "worst_group_accuracy": "worst-group accuracy",
          "accuracy_gap": "group accuracy gap", "dp_difference": "demographic-parity difference",
          "eo_difference": "equalized-odds difference"}
_NUMBERS = [  # key, what, applies, higher is better, needs, order
    ("accuracy", "accuracy", _labels, True, {"labels"}, 0),
    ("balanced_accuracy", "balanced accuracy (mean recall over classes)", _labels, True,
     {"labels"}, 1),
    ("worst_class_recall", "recall of the worst class", _labels, True, {"labels"}, 2),
    ("worst_group_accuracy", "accuracy on the worst (label, group) cell (fairlearn "
     "MetricFrame.group_min)",
     _groups, True, {"labels", "groups"}, 3),
    ("accuracy_gap", "best minus worst (label, group) cell accuracy (MetricFrame.difference)",
     _groups,
     False, {"labels", "groups"}, 4),
    ("dp_difference", "demographic-parity difference of the predictions (fairlearn; binary "
     "labels)", _binary_groups, False, {"labels", "groups"}, 5),
    ("eo_difference", "equalized-odds difference of the predictions (fairlearn; binary labels)",
     _binary_groups, False, {"labels", "groups"}, 6),
]


def _per_class(name: str, single: str, group: MetricGroup, what: str, count: str,
               needs: set[str], applies: Any, order: float) -> Metric:
    """``name``: a family of metrics ``<single>_<i>``, one per class or group of the dataset."""

    def expand(ctx: EvalContext) -> list[Metric]:
        n = labelled(ctx).n_groups if count == "groups" else labelled(ctx).n_classes
        return [group.metric(f"{single}_{i}", description=f"{what} {i}", applies=applies,
                             lower_is_better=False, title=f"{what} {i}", order=order + i / 100,
                             needs=frozenset(needs)) for i in range(n)]

    return Metric(name, lambda ctx: float("nan"), f"{what} 0, 1, ...: one metric "
                  f"{single}_<i> for each of the dataset's {count}", applies=applies,
                  lower_is_better=False, order=order, needs=frozenset(needs), expand=expand)


DOWNSTREAM_METRICS: list[Metric] = [
    GROUPS[prefix].metric(f"{prefix}_{key}", description=f"{what} on held-out real data of a "
                          f"classifier trained on {SOURCES[prefix]}",
                          applies=applies if prefix == "tstr" else _with_train(applies),
                          lower_is_better=not higher, needs=frozenset(needs),
                          title=f"{TITLES[key]}, trained on "
                                f"{'synthetic' if prefix == 'tstr' else 'the training set'}",
                          order=(170 if prefix == "tstr" else 180) + order)
    for prefix in SOURCES for key, what, applies, higher, needs, order in _NUMBERS
] + [
    _per_class(f"{prefix}_group_accuracies", f"{prefix}_group_accuracy", GROUPS[prefix],
               f"{prefix} accuracy on group", "groups", {"labels", "groups"},
               _groups if prefix == "tstr" else _with_train(_groups),
               178 if prefix == "tstr" else 188)
    for prefix in SOURCES
] + [
    _per_class("label_shares", "label_share", SHARES, "share of the samples labelled class",
               "classes", {"labels"}, _labels, 190),
    _per_class("group_shares", "group_share", SHARES, "share of the samples in group", "groups",
               {"labels", "groups"}, _groups, 191),
    SHARES.metric("minority_share", description="share of the samples in the (label, group) "
                  "cells that hold less than a uniform share of the real training data (the "
                  "bias-conflicting samples; how the minority fades)", applies=_groups,
                  lower_is_better=False, title="minority share of the samples", order=192,
                  needs=frozenset({"labels", "groups"})),
    SHARES.metric("annotator_accuracy", description="held-out accuracy of the annotator that "
                  "labels generated images (recorded when it labels)",
                  applies=lambda ctx: _labels(ctx) and labelled(ctx).source == "annotator",
                  lower_is_better=False, title="annotator accuracy", order=193,
                  needs=frozenset({"labels"})),
    SHARES.metric("label_fidelity", description="share of a class-conditional model's samples "
                  "that the annotator gives the label they were drawn for (whether the labels "
                  "the next generation trains on are right)",
                  applies=lambda ctx: _labels(ctx) and labelled(ctx).source == "conditional",
                  lower_is_better=False, title="label fidelity of the samples", order=194,
                  needs=frozenset({"labels"})),
]
"""The downstream metrics; per-group and per-class ones are families that expand per dataset."""


def needs_of(metrics: list[Metric]) -> Mapping[str, set[str]]:
    """{"labels": names, "groups": names} of the metrics that need each attribute."""
    out: dict[str, set[str]] = {"labels": set(), "groups": set()}
    for m in metrics:
        for what in out:
            if what in m.needs:
                out[what].add(m.name)
    return out
