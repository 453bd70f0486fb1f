"""Metrics in a feature space: FID, KID, precision / recall / density / coverage, class coverage.

Which features: ``EvalContext.features`` (the config's ``eval.features``). ``"auto"`` takes the raw
values for points, the dataset's own small CNN classifier for labelled images (digits, MNIST,
CIFAR-10: the CPU default, where no Inception weights exist), and the Inception TorchScript file
for unlabelled images when ``AUTOPHAGY_INCEPTION`` names one (raw pixels otherwise). ``"pixels"``,
``"classifier"`` and ``"inception"`` force one.

Why the memos: every generation compares fresh samples with the *same* held-out set, so its
features are computed once per process (and kept on disk across runs, keyed by the extractor and a
hash of the images); a generation's sample features are computed once for all the metrics that
use them.
"""

from __future__ import annotations

import hashlib
import os
import weakref
from typing import Any

import numpy as np

from autophagy.metrics.base import EvalContext, Metric
from autophagy.metrics.features import (
    INCEPTION_ENV,
    FeatureCache,
    InceptionFeatures,
    PixelFeatures,
)
from autophagy.metrics.fid import frechet_distance, kid

FEATURE_CHOICES = ("auto", "pixels", "classifier", "inception")
PRDC_NEAREST_K = 5
FEATURE_MAX_SAMPLES = 2000
"""Each set is subsampled to this many rows for precision / recall / density / coverage."""
KID_SUBSET = 1000
KID_SUBSETS = 10

_REAL: dict[tuple[str, str], np.ndarray] = {}
_PER_CTX: dict[str, Any] = {}


def make_extractor(
    kind: str, dataset: Any, inception: str | None = None, *, check_only: bool = False
) -> Any:
    """The feature extractor ``kind`` (see the module docstring) for ``dataset``.

    ``check_only`` validates the choice (the Inception file loads, the classifier has labels)
    without training a classifier, so a config fails before its run directory exists."""
    if kind not in FEATURE_CHOICES:
        raise ValueError(
            f"eval.features: unknown extractor {kind!r}; choose from: {', '.join(FEATURE_CHOICES)}"
        )
    from autophagy.metrics.classifier import DatasetClassifier, has_labels

    images = getattr(dataset, "kind", "points") == "images"
    if kind == "auto":
        if not images:
            kind = "pixels"
        elif has_labels(dataset):
            kind = "classifier"
        else:
            kind = "inception" if (inception or os.environ.get(INCEPTION_ENV)) else "pixels"
    if kind == "pixels":
        return PixelFeatures()
    if kind == "inception":
        return _inception(inception)
    if not (images and has_labels(dataset)):
        raise ValueError(
            f"eval.features: 'classifier' needs a labelled image dataset (digits, mnist5k, "
            f"cifar10), not {dataset.name!r}; use auto, pixels or inception"
        )
    return None if check_only else DatasetClassifier.for_dataset(dataset)


_INCEPTION: dict[str | None, InceptionFeatures] = {}


def _inception(path: str | None) -> InceptionFeatures:
    if path not in _INCEPTION:
        try:
            _INCEPTION[path] = InceptionFeatures(path)
        except ValueError as err:
            raise ValueError(f"eval.inception: {err}") from None
    return _INCEPTION[path]


def _digest(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()[:16]


def feature_pair(ctx: EvalContext) -> tuple[np.ndarray, np.ndarray]:
    """(held-out features, sample features) of this generation, computed once per context."""
    memo = _PER_CTX.get("last")
    if memo is not None and memo[0]() is ctx:
        return memo[1]
    extractor = make_extractor(ctx.features, ctx.dataset, ctx.inception)
    held = np.asarray(ctx.held_out)
    key = (extractor.name, _digest(held))
    if key not in _REAL:
        if isinstance(extractor, PixelFeatures):
            _REAL[key] = extractor(held)
        else:
            _REAL[key] = FeatureCache().get_or_compute(
                ctx.dataset.name,
                f"test-{key[1]}",
                extractor.name,
                len(held),
                lambda: extractor(held),
            )
    pair = (_REAL[key], np.asarray(extractor(np.asarray(ctx.samples)), dtype=np.float64))
    _PER_CTX["last"] = (weakref.ref(ctx), pair)
    return pair


def _subsample(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if len(x) > FEATURE_MAX_SAMPLES:
        x = x[np.sort(rng.choice(len(x), FEATURE_MAX_SAMPLES, replace=False))]
    return x


def _prdc_of(ctx: EvalContext) -> dict[str, float]:
    from autophagy.metrics.prdc import prdc
    from autophagy.metrics.registry import metric_rng

    memo = _PER_CTX.get("prdc")
    if memo is not None and memo[0]() is ctx:
        return memo[1]
    real, fake = feature_pair(ctx)
    rng = metric_rng(ctx, "prdc")
    values = prdc(_subsample(real, rng), _subsample(fake, rng), k=PRDC_NEAREST_K)
    _PER_CTX["prdc"] = (weakref.ref(ctx), values)
    return values


def _fid(ctx: EvalContext) -> float:
    real, fake = feature_pair(ctx)
    return frechet_distance(fake, real)


def _kid(ctx: EvalContext) -> float:
    from autophagy.metrics.registry import metric_rng

    real, fake = feature_pair(ctx)
    size = min(KID_SUBSET, len(real), len(fake))
    return kid(real, fake, subsets=KID_SUBSETS, subset_size=size, rng=metric_rng(ctx, "kid")).mean


def _enough(ctx: EvalContext) -> bool:
    return min(len(ctx.samples), len(ctx.held_out)) > PRDC_NEAREST_K


def _prdc_metric(name: str, what: str) -> Metric:
    return Metric(
        name=name,
        compute=lambda ctx: _prdc_of(ctx)[name],
        description=f"{what} (k={PRDC_NEAREST_K}, on eval.features, each set <= "
        f"{FEATURE_MAX_SAMPLES} rows; higher is better)",
        applies=_enough,
        lower_is_better=False,
    )


def _raw_frechet(ctx: EvalContext) -> float:
    return frechet_distance(ctx.samples, ctx.held_out)


def _raw_frechet_applies(ctx: EvalContext) -> bool:
    from autophagy.metrics.fid import FRECHET_MAX_DIM

    dim = int(np.prod(np.shape(ctx.samples)[1:]))
    return dim <= FRECHET_MAX_DIM and min(len(ctx.samples), len(ctx.held_out)) >= 2


def _labelled_images(ctx: EvalContext) -> bool:
    """An image dataset with training labels, and samples that are images of its shape."""
    if ctx.dataset.kind != "images" or "train_labels" not in ctx.dataset.params:
        return False
    samples = np.asarray(ctx.samples)
    return samples.ndim >= 2 and len(samples) > 0 and samples[0].size == ctx.dataset.dim


def _predictions(ctx: EvalContext) -> tuple[np.ndarray, int]:
    """The classifier's labels for this generation's samples, computed once for both metrics."""
    from autophagy.metrics.classifier import DatasetClassifier

    memo = _PER_CTX.get("labels")
    if memo is not None and memo[0]() is ctx:
        return memo[1]
    clf = DatasetClassifier.for_dataset(ctx.dataset)
    result = (clf.predict(ctx.samples), clf.n_classes)
    _PER_CTX["labels"] = (weakref.ref(ctx), result)
    return result


def _class_kl(ctx: EvalContext) -> float:
    from autophagy.metrics.classifier import class_kl

    pred, n_classes = _predictions(ctx)
    return class_kl(pred, ctx.dataset.params["train_labels"], n_classes)


def _classes_covered(ctx: EvalContext) -> float:
    from autophagy.metrics.classifier import classes_covered

    pred, n_classes = _predictions(ctx)
    return float(classes_covered(pred, n_classes))


CLASSIFIER_METRICS: list[Metric] = [
    Metric(
        name="class_kl",
        compute=_class_kl,
        description="KL(p_fake || p_real) in nats between the class shares the dataset's "
        "classifier gives the samples and the real training labels; grows as classes drop out",
        applies=_labelled_images,
    ),
    Metric(
        name="classes_covered",
        compute=_classes_covered,
        description="classes receiving at least a tenth of the uniform share of the samples "
        "(dataset classifier); falls under mode collapse",
        applies=_labelled_images,
        lower_is_better=False,
    ),
]
"""Class coverage (mode collapse, generation by generation) from the dataset's classifier."""


FEATURE_METRICS: list[Metric] = [
    Metric(
        name="fid",
        compute=_fid,
        description="Fréchet distance of Gaussians fitted to sample and held-out features "
        "(eval.features: classifier / Inception for images, raw for points)",
        applies=lambda ctx: min(len(ctx.samples), len(ctx.held_out)) >= 2,
    ),
    Metric(
        name="kid",
        compute=_kid,
        description=f"kernel inception distance: unbiased MMD^2, cubic kernel, on eval.features "
        f"(mean of {KID_SUBSETS} subsets)",
        applies=lambda ctx: min(len(ctx.samples), len(ctx.held_out)) >= 2,
    ),
    _prdc_metric("precision", "share of samples inside some held-out point's k-NN ball"),
    _prdc_metric("recall", "share of held-out points inside some sample's k-NN ball"),
    _prdc_metric("density", "mean number of held-out k-NN balls holding a sample, over k"),
    _prdc_metric("coverage", "share of held-out points whose k-NN ball holds a sample"),
    Metric(
        name="frechet",
        compute=_raw_frechet,
        description="Fréchet distance on the raw flattened values (up to 1,024 features)",
        applies=_raw_frechet_applies,
    ),
    *CLASSIFIER_METRICS,
]
"""Feature-space metrics: Heusel et al. (2017), Binkowski et al. (2018), Kynkäänniemi et al.
(2019), Naeem et al. (2020), and class coverage from the dataset's classifier."""
