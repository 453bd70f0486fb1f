"""Metrics in a feature space: FID, KID, precision / recall / density / coverage, class coverage.

Which features: ``EvalContext.features`` (the config's ``eval.features``). ``"auto"`` takes the raw
values for points, the dataset's own small CNN classifier for labelled images (digits, MNIST,
CIFAR-10: the CPU default, where no Inception weights exist), and the Inception TorchScript file
for unlabelled images when ``AUTOPHAGY_INCEPTION`` names one (raw pixels otherwise). ``"pixels"``,
``"classifier"`` and ``"inception"`` force one.

Sharing work: a generation's sample features are computed once for all the metrics that use them,
memoized on its :class:`EvalContext`; precision / recall / density / coverage are one
:class:`MetricGroup` (one k-NN pass), and ``class_kl`` / ``classes_covered`` another (one
classifier prediction). The held-out set is the same every generation, so its features are kept by
a per-cell :class:`HeldOutFeatures` (and on disk across runs, keyed by the extractor and a hash of
the images).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import numpy as np

from autophagy.metrics.base import EvalContext, Metric, MetricGroup, metric_rng
from autophagy.metrics.extractors import (
    INCEPTION_ENV,
    FeatureCache,
    InceptionFeatures,
    PixelFeatures,
)
from autophagy.metrics.fid import frechet_distance, kid
from autophagy.signatures import ArgumentError

FEATURE_CHOICES = ("auto", "pixels", "classifier", "inception")
PRDC_NEAREST_K = 5
FEATURE_MAX_SAMPLES = 2000
"""Each set is subsampled to this many rows for precision / recall / density / coverage."""
KID_SUBSET = 1000
KID_SUBSETS = 10


def make_extractor(
    kind: str, dataset: Any, inception: str | None = None, *, check_only: bool = False
) -> Any:
    """The feature extractor ``kind`` (see the module docstring) for ``dataset``.

    ``check_only`` validates the choice (the Inception file loads, the classifier has labels)
    without training a classifier, so a config fails before its run directory exists."""
    if kind not in FEATURE_CHOICES:
        raise ArgumentError(
            "features", f"unknown extractor {kind!r}; choose from: {', '.join(FEATURE_CHOICES)}"
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
        raise ArgumentError(
            "features",
            f"'classifier' needs a labelled image dataset (digits, mnist5k, "
            f"cifar10), not {dataset.name!r}; use auto, pixels or inception"
        )
    return None if check_only else DatasetClassifier.for_dataset(dataset)


_INCEPTION: dict[str | None, InceptionFeatures] = {}


def _inception(path: str | None) -> InceptionFeatures:
    if path not in _INCEPTION:
        try:
            _INCEPTION[path] = InceptionFeatures(path)
        except ValueError as err:
            raise ArgumentError("inception", str(err)) from None
    return _INCEPTION[path]


def _digest(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()[:16]


class HeldOutFeatures:
    """The held-out set's features under each extractor: the same every generation of a cell.

    Create one per cell and pass it to every generation's context (``EvalContext.
    held_out_features``): the features are computed once per (extractor, held-out set). Inception
    and classifier features also go through the on-disk :class:`FeatureCache` (``cache``, default
    ``$AUTOPHAGY_CACHE``), so another run on the same split reads them back; raw pixels are cheap
    and never written.
    """

    def __init__(self, cache: FeatureCache | None = None):
        self.cache = cache
        self._features: dict[tuple[str, str], np.ndarray] = {}

    def get(self, extractor: Any, dataset: Any, held_out: Any) -> np.ndarray:
        """Features of ``held_out`` (the test split of ``dataset``) under ``extractor``."""
        held = np.asarray(held_out)
        key = (extractor.name, _digest(held))
        if key not in self._features:
            if isinstance(extractor, PixelFeatures):
                self._features[key] = extractor(held)
            else:
                self._features[key] = (self.cache or FeatureCache()).get_or_compute(
                    dataset.name,
                    f"test-{key[1]}",
                    extractor.name,
                    len(held),
                    lambda: extractor(held),
                )
        return self._features[key]


def feature_pair(ctx: EvalContext) -> tuple[np.ndarray, np.ndarray]:
    """(held-out features, sample features) of this generation, computed once per context."""

    def compute() -> tuple[np.ndarray, np.ndarray]:
        extractor = make_extractor(ctx.features, ctx.dataset, ctx.inception)
        held = ctx.held_out_features or HeldOutFeatures()
        real = held.get(extractor, ctx.dataset, ctx.held_out)
        return real, np.asarray(extractor(np.asarray(ctx.samples)), dtype=np.float64)

    return ctx.memo("features", compute)


def _subsample(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if len(x) > FEATURE_MAX_SAMPLES:
        x = x[np.sort(rng.choice(len(x), FEATURE_MAX_SAMPLES, replace=False))]
    return x


def _prdc(ctx: EvalContext) -> dict[str, float]:
    from autophagy.metrics.prdc import prdc

    real, fake = feature_pair(ctx)
    rng = metric_rng(ctx, "prdc")
    return prdc(_subsample(real, rng), _subsample(fake, rng), k=PRDC_NEAREST_K)


PRDC = MetricGroup("prdc", _prdc)
"""Precision, recall, density and coverage from one k-NN pass on one subsample of each set."""


def _fid(ctx: EvalContext) -> float:
    real, fake = feature_pair(ctx)
    return frechet_distance(fake, real)


def _kid(ctx: EvalContext) -> float:
    real, fake = feature_pair(ctx)
    size = min(KID_SUBSET, len(real), len(fake))
    return kid(real, fake, subsets=KID_SUBSETS, subset_size=size, rng=metric_rng(ctx, "kid")).mean


def _two_each(ctx: EvalContext) -> bool:
    return min(len(ctx.samples), len(ctx.held_out)) >= 2


def _enough(ctx: EvalContext) -> bool:
    return min(len(ctx.samples), len(ctx.held_out)) > PRDC_NEAREST_K


def _prdc_metric(name: str, what: str, order: int) -> Metric:
    return PRDC.metric(
        name,
        description=f"{what} (k={PRDC_NEAREST_K}, on eval.features, each set <= "
        f"{FEATURE_MAX_SAMPLES} rows; higher is better)",
        applies=_enough,
        lower_is_better=False,
        order=order,
        needs=frozenset({"features"}),
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


def _classes(ctx: EvalContext) -> dict[str, float]:
    from autophagy.metrics.classifier import DatasetClassifier, class_kl, classes_covered

    clf = DatasetClassifier.for_dataset(ctx.dataset)
    pred = clf.predict(ctx.samples)
    return {
        "class_kl": class_kl(pred, ctx.dataset.params["train_labels"], clf.n_classes),
        "classes_covered": float(classes_covered(pred, clf.n_classes)),
    }


CLASSES = MetricGroup("classes", _classes)
"""``class_kl`` and ``classes_covered`` from one prediction of the dataset's classifier."""

CLASSIFIER_METRICS: list[Metric] = [
    CLASSES.metric(
        "class_kl",
        description="KL(p_fake || p_real) in nats between the class shares the dataset's "
        "classifier gives the samples and the real training labels; grows as classes drop out",
        applies=_labelled_images,
        title="class KL divergence",
        order=110,
        needs=frozenset({"classifier"}),
    ),
    CLASSES.metric(
        "classes_covered",
        description="classes receiving at least a tenth of the uniform share of the samples "
        "(dataset classifier); falls under mode collapse",
        applies=_labelled_images,
        lower_is_better=False,
        title="classes covered",
        order=120,
        needs=frozenset({"classifier"}),
    ),
]
"""Class coverage (mode collapse, generation by generation) from the dataset's classifier."""


FEATURE_METRICS: list[Metric] = [
    Metric(
        name="fid",
        compute=_fid,
        description="Fréchet distance of Gaussians fitted to sample and held-out features "
        "(eval.features: classifier / Inception for images, raw for points)",
        applies=_two_each,
        title="FID",
        order=60,
        needs=frozenset({"features"}),
    ),
    Metric(
        name="kid",
        compute=_kid,
        description=f"kernel inception distance: unbiased MMD^2, cubic kernel, on eval.features "
        f"(mean of {KID_SUBSETS} subsets)",
        applies=_two_each,
        title="KID",
        order=65,
        needs=frozenset({"features"}),
    ),
    _prdc_metric("precision", "share of samples inside some held-out point's k-NN ball", 70),
    _prdc_metric("recall", "share of held-out points inside some sample's k-NN ball", 80),
    _prdc_metric("density", "mean number of held-out k-NN balls holding a sample, over k", 90),
    _prdc_metric("coverage", "share of held-out points whose k-NN ball holds a sample", 100),
    Metric(
        name="frechet",
        compute=_raw_frechet,
        description="Fréchet distance on the raw flattened values (up to 1,024 features)",
        applies=_raw_frechet_applies,
        title="Fréchet distance (raw values)",
        order=45,
    ),
    *CLASSIFIER_METRICS,
]
"""Feature-space metrics: Heusel et al. (2017), Binkowski et al. (2018), Kynkäänniemi et al.
(2019), Naeem et al. (2020), and class coverage from the dataset's classifier."""
