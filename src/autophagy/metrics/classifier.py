"""A small CNN classifier trained on a labelled image dataset: features, and class coverage.

Why a classifier: on MNIST-like data Inception features are a poor fit, while a classifier
trained on the dataset itself gives features that separate its classes, and its predictions say
which classes a generation still produces. Mode collapse under self-consuming retraining shows
up first as lost classes (Alemohammad et al., 2023; Shumailov et al., 2023), which pixel
distances barely register.

- :class:`SmallCNN` and :func:`train_classifier`: a deterministic (under ``seed``) CNN for 8x8,
  28x28 and 32x32 images; the 128-d penultimate layer is the feature space.
- :class:`DatasetClassifier`: trained once per (dataset, split, seed), cached on disk (weights via
  ``torch.save`` of the state dict, loaded with ``weights_only=True``, plus a JSON with the
  held-out accuracy) and memoized in-process, so every generation of a run reuses it. It has the
  duck-typed shape of a feature extractor (``name``, ``__call__(images) -> (n, f)``).
- :func:`class_histogram`, :func:`class_kl`, :func:`classes_covered`: array functions.
- :data:`CLASSIFIER_METRICS`: ``class_kl`` and ``classes_covered`` as :class:`Metric` objects
  (not registered here).

Example:
    >>> ds = load_dataset("digits", n_train=1200, n_test=500, seed=0)
    >>> clf = DatasetClassifier.for_dataset(ds)
    >>> clf.accuracy, clf.features(ds.test).shape
    (0.97..., (500, 128))
    >>> class_kl(clf.predict(samples), ds.params["train_labels"], clf.n_classes)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from autophagy.atomic import atomic_write_bytes
from autophagy.data.base import Dataset
from autophagy.errors import InputError

__all__ = [
    "CACHE_ENV",
    "DatasetClassifier",
    "SmallCNN",
    "class_histogram",
    "class_kl",
    "classes_covered",
    "clear_classifier_memo",
    "has_labels",
    "train_classifier",
]

CACHE_ENV = "AUTOPHAGY_CACHE"
"""Environment variable overriding the cache directory (default ``~/.cache/autophagy``)."""
CACHE_VERSION = 1
"""Bumped when the architecture or training recipe changes, so old cache files are not reused."""
FEATURE_DIM = 128
TRAIN_DEFAULTS: dict[str, Any] = {"epochs": 10, "batch_size": 64, "lr": 2e-3, "width": 32}
"""The recipe :meth:`DatasetClassifier.for_dataset` uses; part of the cache key."""
INFERENCE_BATCH = 512


# --- the network ----------------------------------------------------------------------------


class SmallCNN(nn.Module):
    """Three conv blocks, adaptive average pooling to 2x2, a ``feature_dim`` layer, then logits.

    The two max-pools halve 8x8 to 2x2 and 28x28 / 32x32 to 7x7 / 8x8; the adaptive pooling then
    brings every input size to the same 2x2 grid, so one architecture serves all image datasets.
    GroupNorm rather than BatchNorm keeps train and eval modes identical (features of a sample do
    not depend on what else is in its batch or on running statistics).
    """

    def __init__(
        self, in_channels: int, n_classes: int, width: int = 32, feature_dim: int = FEATURE_DIM
    ):
        super().__init__()
        self.in_channels = int(in_channels)
        self.n_classes = int(n_classes)
        self.feature_dim = int(feature_dim)

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [
                nn.Conv2d(c_in, c_out, 3, padding=1),
                nn.GroupNorm(min(8, c_out), c_out),
                nn.ReLU(),
            ]

        self.body = nn.Sequential(
            *block(in_channels, width),
            nn.MaxPool2d(2),
            *block(width, 2 * width),
            nn.MaxPool2d(2),
            *block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(4 * width * 4, feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate activations (n, feature_dim)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


# --- training -------------------------------------------------------------------------------


def _as_images(x: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """float32 (n, C, H, W) clipped to [-1, 1]; flat (n, C*H*W) rows are reshaped to ``shape``.

    Clipping: the classifier was trained on [-1, 1], and generated images that overshoot are
    clipped when shown anyway, so they are judged as they would be seen.
    """
    a = np.asarray(x, dtype=np.float32)
    if shape is not None and a.shape[1:] != tuple(shape):
        if a.ndim >= 1 and a[0].size == int(np.prod(shape)):
            a = a.reshape(len(a), *shape)
        else:
            raise InputError(f"images of shape {a.shape[1:]} do not match {tuple(shape)}")
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4:
        raise InputError(f"expected images (n, C, H, W), got shape {a.shape}")
    return np.clip(a, -1.0, 1.0)


@torch.no_grad()
def _batched(
    fn: Any, images: np.ndarray, device: torch.device | str, batch: int = INFERENCE_BATCH
) -> np.ndarray:
    """``fn`` applied batch by batch under no_grad, concatenated as a numpy array."""
    out = [
        fn(torch.from_numpy(np.ascontiguousarray(images[i : i + batch])).to(device)).cpu().numpy()
        for i in range(0, len(images), batch)
    ]
    if not out:
        return np.zeros((0,), dtype=np.float32)
    return np.concatenate(out)


def _accuracy(module: nn.Module, images: np.ndarray, labels: np.ndarray, device: Any) -> float:
    if len(images) == 0:
        return float("nan")
    module.eval()
    pred = _batched(lambda t: module(t).argmax(1), images, device)
    return float(np.mean(pred == np.asarray(labels)))


def train_classifier(
    images: Any,
    labels: Any,
    *,
    seed: int,
    epochs: int = TRAIN_DEFAULTS["epochs"],
    batch_size: int = TRAIN_DEFAULTS["batch_size"],
    lr: float = TRAIN_DEFAULTS["lr"],
    width: int = TRAIN_DEFAULTS["width"],
    n_classes: int | None = None,
    test_images: Any = None,
    test_labels: Any = None,
    device: str = "cpu",
) -> tuple[SmallCNN, dict[str, Any]]:
    """Train a :class:`SmallCNN` with AdamW and a cosine learning rate; deterministic in ``seed``.

    Initial weights come from the global torch RNG seeded with ``seed`` inside ``fork_rng`` (the
    caller's RNG state is restored) and built on CPU, so they do not depend on the device; the
    shuffling uses its own ``torch.Generator``. ``info`` holds train / held-out accuracy (NaN
    without a held-out set), the recipe and the wall time.
    """
    x = _as_images(images)
    y = np.asarray(labels, dtype=np.int64)
    if len(x) != len(y) or len(x) == 0:
        raise InputError(f"need as many labels as images (got {len(x)} images, {len(y)} labels)")
    if n_classes is None:
        n_classes = int(y.max()) + 1
    start = time.perf_counter()
    dev = torch.device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        module = SmallCNN(x.shape[1], n_classes, width=width)
    module = module.to(dev)
    gen = torch.Generator().manual_seed(int(seed) + 1)
    opt = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=1e-4)
    steps_per_epoch = -(-len(x) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=max(1, epochs * steps_per_epoch), pct_start=0.15
    )
    xt = torch.from_numpy(x).to(dev)
    yt = torch.from_numpy(y).to(dev)
    loss_fn = nn.CrossEntropyLoss()
    module.train()
    for _ in range(int(epochs)):
        order = torch.randperm(len(x), generator=gen).to(dev)
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            loss = loss_fn(module(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    module.eval()
    info: dict[str, Any] = {
        "train_accuracy": _accuracy(module, x, y, dev),
        "test_accuracy": float("nan"),
        "n_train": len(x),
        "n_test": 0,
        "n_classes": n_classes,
        "seed": int(seed),
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "lr": float(lr),
        "width": int(width),
    }
    if test_images is not None and test_labels is not None:
        xs = _as_images(test_images)
        info["test_accuracy"] = _accuracy(module, xs, np.asarray(test_labels), dev)
        info["n_test"] = len(xs)
    info["seconds"] = time.perf_counter() - start
    return module, info


# --- the cached per-dataset classifier ------------------------------------------------------


def _cache_root(cache_dir: str | os.PathLike[str] | None) -> Path:
    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "autophagy"
    return Path(cache_dir).expanduser()


def _dataset_key(dataset: Dataset, seed: int) -> str:
    """sha256 over what determines the trained weights: data, labels, seed, recipe, version."""
    h = hashlib.sha256()
    x = np.ascontiguousarray(dataset.train, dtype=np.float32)
    y = np.ascontiguousarray(dataset.params["train_labels"], dtype=np.int64)
    meta = {
        "version": CACHE_VERSION,
        "name": dataset.name,
        "shape": list(dataset.shape),
        "n_train": len(x),
        "seed": int(seed),
        "recipe": TRAIN_DEFAULTS,
    }
    h.update(json.dumps(meta, sort_keys=True).encode())
    h.update(x.tobytes())
    h.update(y.tobytes())
    return h.hexdigest()


def has_labels(dataset: Dataset) -> bool:
    """Whether ``dataset`` is an image dataset with class labels for its training set."""
    labels = dataset.params.get("train_labels")
    return dataset.kind == "images" and labels is not None and len(labels) == len(dataset.train)


class DatasetClassifier:
    """A :class:`SmallCNN` trained on one dataset's training split, with its held-out accuracy.

    Build it with :meth:`for_dataset`, which trains only on a cache miss. ``from_cache`` says
    whether the weights were read from disk; the class counter ``trainings`` counts the trainings
    done in this process (what the tests check to see the cache used).
    """

    trainings: ClassVar[int] = 0
    _memo: ClassVar[dict[tuple[str, str], DatasetClassifier]] = {}

    def __init__(
        self,
        module: SmallCNN,
        info: dict[str, Any],
        *,
        image_shape: tuple[int, ...],
        key: str = "",
        device: str = "cpu",
        from_cache: bool = False,
        path: Path | None = None,
    ):
        self.module = module.to(device).eval()
        self.info = info
        self.image_shape = tuple(image_shape)
        self.key = key
        self.device = device
        self.from_cache = from_cache
        self.path = path
        self.name = f"classifier-{key[:12]}" if key else "classifier"
        """Identifies the features (keys feature caches): differs whenever the weights may."""

    @property
    def accuracy(self) -> float:
        """Held-out accuracy on the dataset's test split (NaN when it has no test labels)."""
        return float(self.info.get("test_accuracy", float("nan")))

    @property
    def n_classes(self) -> int:
        return self.module.n_classes

    @property
    def feature_dim(self) -> int:
        return self.module.feature_dim

    @classmethod
    def for_dataset(
        cls,
        dataset: Dataset,
        *,
        seed: int = 0,
        cache_dir: str | os.PathLike[str] | None = None,
        device: str = "cpu",
    ) -> DatasetClassifier:
        """The classifier of ``dataset``: from the in-process memo, else from disk, else trained.

        Trained on ``dataset.train`` and ``params["train_labels"]``, scored on ``dataset.test``.
        Files are ``<cache>/classifier/<name>-<key16>.pt`` (the state dict) and ``.json`` (the
        training info), written atomically; the key hashes the training images and labels, so a
        different split, seed or recipe never reuses stale weights.
        """
        if not has_labels(dataset):
            raise InputError(
                f"dataset {dataset.name!r} is not an image dataset with params['train_labels']"
            )
        key = _dataset_key(dataset, seed)
        memo_key = (key, str(device))
        if memo_key in cls._memo:
            return cls._memo[memo_key]
        stem = _cache_root(cache_dir) / "classifier" / f"{_slug(dataset.name)}-{key[:16]}"
        weights, meta = stem.with_suffix(".pt"), stem.with_suffix(".json")
        labels = np.asarray(dataset.params["train_labels"], dtype=np.int64)
        clf = cls._load(weights, meta, dataset.shape, key, device)
        if clf is None:
            test_labels = dataset.params.get("test_labels")
            module, info = train_classifier(
                dataset.train,
                labels,
                seed=seed,
                n_classes=_n_classes(dataset),
                test_images=dataset.test if test_labels is not None else None,
                test_labels=test_labels,
                device=device,
                **{k: TRAIN_DEFAULTS[k] for k in ("epochs", "batch_size", "lr", "width")},
            )
            cls.trainings += 1
            info.update({"dataset": dataset.name, "shape": list(dataset.shape), "key": key})
            buf = io.BytesIO()
            torch.save({k: v.detach().cpu() for k, v in module.state_dict().items()}, buf)
            atomic_write_bytes(weights, buf.getvalue())
            atomic_write_bytes(meta, json.dumps(info, indent=2, sort_keys=True).encode())
            clf = cls(module, info, image_shape=dataset.shape, key=key, device=device, path=weights)
        cls._memo[memo_key] = clf
        return clf

    @classmethod
    def _load(
        cls, weights: Path, meta: Path, shape: tuple[int, ...], key: str, device: str
    ) -> DatasetClassifier | None:
        """The cached classifier, or None when either file is missing, unreadable or stale."""
        if not (weights.is_file() and meta.is_file()):
            return None
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
            if info.get("key") != key:
                return None
            state = torch.load(weights, map_location="cpu", weights_only=True)
            module = SmallCNN(shape[0], int(info["n_classes"]), width=int(info["width"]))
            module.load_state_dict(state)
        except (OSError, ValueError, KeyError, RuntimeError, EOFError, pickle.UnpicklingError):
            return None  # a torn or foreign file: retrain and overwrite it
        return cls(
            module, info, image_shape=shape, key=key, device=device, from_cache=True, path=weights
        )

    def _run(self, fn: Any, images: Any) -> np.ndarray:
        x = _as_images(images, self.image_shape)
        self.module.eval()
        return _batched(fn, x, self.device)

    def features(self, images: Any) -> np.ndarray:
        """Penultimate-layer features (n, feature_dim), float64 like the other extractors."""
        out = self._run(self.module.features, images).astype(np.float64)
        return out.reshape(-1, self.feature_dim)

    def __call__(self, images: Any) -> np.ndarray:
        return self.features(images)

    def predict(self, images: Any) -> np.ndarray:
        """Predicted class labels (n,), int64."""
        return self._run(lambda t: self.module(t).argmax(1), images).astype(np.int64)

    def log_proba(self, images: Any) -> np.ndarray:
        """Log-probabilities of every class (n, n_classes), float64 (curated rewards)."""
        out = self._run(lambda t: torch.log_softmax(self.module(t).float(), 1), images)
        return out.astype(np.float64).reshape(-1, self.n_classes)

    def __repr__(self) -> str:
        return (
            f"DatasetClassifier({self.name!r}, classes={self.n_classes}, "
            f"accuracy={self.accuracy:.3f}, from_cache={self.from_cache})"
        )


def clear_classifier_memo() -> None:
    """Forget the in-process classifiers (the disk cache is kept)."""
    DatasetClassifier._memo.clear()


def _slug(part: Any) -> str:
    return "".join(c if c.isalnum() or c in "._+-" else "_" for c in str(part)) or "_"


def _n_classes(dataset: Dataset) -> int:
    """Number of classes: one more than the largest label of any split (10 for the digits)."""
    top = max(
        int(np.max(dataset.params[k]))
        for k in ("train_labels", "test_labels", "pool_labels")
        if dataset.params.get(k) is not None and len(dataset.params[k]) > 0
    )
    return top + 1


# --- class coverage -------------------------------------------------------------------------


def class_histogram(pred: Any, n_classes: int) -> np.ndarray:
    """Share of ``pred`` falling in each of ``n_classes`` classes (sums to 1; zeros if empty)."""
    p = np.asarray(pred, dtype=np.int64).ravel()
    if p.size and (p.min() < 0 or p.max() >= n_classes):
        raise InputError(f"labels must lie in [0, {n_classes}), got [{p.min()}, {p.max()}]")
    counts = np.bincount(p, minlength=n_classes).astype(np.float64)
    return counts / counts.sum() if p.size else counts


def class_kl(pred_fake: Any, real_labels: Any, n_classes: int) -> float:
    """KL(p_fake || p_real) in nats between the class shares of generated and real data.

    Why this direction: mode collapse sends p_fake onto a few classes, and KL(p_fake || p_real)
    stays finite (it grows to log(1 / p_real(c)) when all mass sits on one class c), as long as
    the real data covers every class. The reverse, KL(p_real || p_fake), would be infinite at the
    first dropped class and could no longer rank later generations. Infinite here only if the
    generator produces a class the real data never has.
    """
    p = class_histogram(pred_fake, n_classes)
    q = class_histogram(real_labels, n_classes)
    if p.sum() == 0 or q.sum() == 0:
        return float("nan")
    mask = p > 0
    if np.any(q[mask] == 0):
        return float("inf")
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def classes_covered(pred: Any, n_classes: int, min_share: float | None = None) -> int:
    """Number of classes receiving at least ``min_share`` of ``pred``.

    Default ``1 / (10 K)``, a tenth of the uniform share: a stray misclassified sample or two does
    not count as covering a class, while a class produced at a tenth of its fair rate still does.
    """
    if min_share is None:
        min_share = 1.0 / (10.0 * n_classes)
    hist = class_histogram(pred, n_classes)
    if hist.sum() == 0:
        return 0
    return int(np.sum(hist >= min_share))


# --- metrics --------------------------------------------------------------------------------
