"""The dataset classifier (accuracy, determinism, disk cache) and the class-coverage metrics."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from scipy.stats import entropy

from autophagy.data import load_dataset
from autophagy.data.base import Dataset
from autophagy.metrics.base import EvalContext
from autophagy.metrics.classifier import (
    DatasetClassifier,
    SmallCNN,
    _dataset_key,
    class_histogram,
    class_kl,
    classes_covered,
    clear_classifier_memo,
    train_classifier,
)
from autophagy.metrics.feature_metrics import CLASSIFIER_METRICS


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: tiny convolutions gain nothing from two, and lose much on a busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits", n_train=1200, n_test=500, seed=0)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def private_cache(monkeypatch: pytest.MonkeyPatch, cache_dir):
    """Never write to the user's ~/.cache: the default cache (used by the metrics) is ours."""
    monkeypatch.setenv("AUTOPHAGY_CACHE", str(cache_dir))


@pytest.fixture(scope="module")
def clf(digits: Dataset, cache_dir) -> DatasetClassifier:
    clear_classifier_memo()
    return DatasetClassifier.for_dataset(digits, cache_dir=cache_dir)


def _states_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --- the network and its training -------------------------------------------------------------


@pytest.mark.parametrize("size", [8, 28, 32])
def test_small_cnn_shapes(size: int):
    m = SmallCNN(3 if size == 32 else 1, 10)
    x = torch.zeros(2, 3 if size == 32 else 1, size, size)
    assert m(x).shape == (2, 10)
    assert m.features(x).shape == (2, 128)


def test_train_classifier_accurate_and_deterministic(digits: Dataset):
    kw = dict(
        seed=3,
        epochs=3,
        test_images=digits.test,
        test_labels=digits.params["test_labels"],
    )
    m1, info1 = train_classifier(digits.train, digits.params["train_labels"], **kw)
    m2, info2 = train_classifier(digits.train, digits.params["train_labels"], **kw)
    assert info1["test_accuracy"] >= 0.9
    assert info1["n_test"] == 500 and info1["n_classes"] == 10
    assert _states_equal(m1, m2)
    assert info1["test_accuracy"] == info2["test_accuracy"]
    m3, _ = train_classifier(digits.train, digits.params["train_labels"], **{**kw, "seed": 4})
    assert not _states_equal(m1, m3)


def test_train_classifier_rejects_mismatched_labels(digits: Dataset):
    with pytest.raises(ValueError, match="as many labels"):
        train_classifier(digits.train, digits.params["train_labels"][:10], seed=0, epochs=1)


# --- the cached dataset classifier ------------------------------------------------------------


def test_dataset_classifier_accuracy_and_features(clf: DatasetClassifier, digits: Dataset):
    assert clf.accuracy >= 0.95
    assert clf.n_classes == 10
    feats = clf.features(digits.test)
    assert feats.shape == (500, 128) and feats.dtype == np.float64
    assert np.all(np.isfinite(feats))
    np.testing.assert_array_equal(clf(digits.test), feats)
    # flat rows are reshaped to the dataset's image shape
    np.testing.assert_array_equal(clf.features(digits.test.reshape(500, -1)), feats)
    pred = clf.predict(digits.test)
    assert pred.shape == (500,) and pred.dtype == np.int64
    assert np.mean(pred == digits.params["test_labels"]) == pytest.approx(clf.accuracy)
    assert clf.name.startswith("classifier")
    with pytest.raises(ValueError, match="do not match"):
        clf.features(np.zeros((2, 1, 28, 28), dtype=np.float32))


def test_dataset_classifier_cache_hit_loads_without_training(
    clf: DatasetClassifier, digits: Dataset, cache_dir
):
    before = DatasetClassifier.trainings
    assert not clf.from_cache  # the fixture trained it into an empty cache dir
    files = sorted(p.name for p in (cache_dir / "classifier").iterdir())
    assert [f.rsplit(".", 1)[1] for f in files] == ["json", "pt"]

    # in-process memo: the very same object
    assert DatasetClassifier.for_dataset(digits, cache_dir=cache_dir) is clf

    # from disk: identical weights, no training
    clear_classifier_memo()
    second = DatasetClassifier.for_dataset(digits, cache_dir=cache_dir)
    assert DatasetClassifier.trainings == before
    assert second.from_cache and second is not clf
    assert _states_equal(clf.module, second.module)
    assert second.accuracy == clf.accuracy
    np.testing.assert_array_equal(second.predict(digits.test), clf.predict(digits.test))

    # another split or seed is another key (and file)
    other = load_dataset("digits", n_train=1200, n_test=500, seed=1)
    assert _dataset_key(other, 0) != _dataset_key(digits, 0) != _dataset_key(digits, 1)

    # a corrupt weights file is not trusted: retrained (identically) and rewritten
    clear_classifier_memo()
    assert second.path is not None and second.path.suffix == ".pt"
    second.path.write_bytes(b"not a state dict")
    third = DatasetClassifier.for_dataset(digits, cache_dir=cache_dir)
    assert DatasetClassifier.trainings == before + 1 and not third.from_cache
    assert _states_equal(clf.module, third.module)
    clear_classifier_memo()
    assert DatasetClassifier.for_dataset(digits, cache_dir=cache_dir).from_cache


def test_dataset_classifier_needs_labels():
    x = np.zeros((20, 1, 8, 8), dtype=np.float32)
    ds = Dataset("nolabels", x, x, kind="images")
    with pytest.raises(ValueError, match="train_labels"):
        DatasetClassifier.for_dataset(ds)


# --- class coverage on arrays -----------------------------------------------------------------


def test_class_histogram():
    np.testing.assert_allclose(class_histogram([0, 0, 1, 3], 4), [0.5, 0.25, 0.0, 0.25])
    np.testing.assert_array_equal(class_histogram([], 3), [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="labels must lie"):
        class_histogram([0, 5], 4)


def test_class_kl_hand_values():
    uniform = np.repeat(np.arange(10), 10)
    assert class_kl(uniform, uniform, 10) == pytest.approx(0.0, abs=1e-12)
    # all mass on one class: KL = log(1 / p_real(c)) = log 10
    assert class_kl(np.zeros(50, dtype=int), uniform, 10) == pytest.approx(math.log(10))
    # generated class absent from the real data: infinite
    assert class_kl([0, 1], [0, 0, 0], 2) == math.inf
    # real class absent from the fake data: finite (this is the direction that survives collapse)
    assert class_kl([0, 0], [0, 1], 2) == pytest.approx(math.log(2))
    assert math.isnan(class_kl([], uniform, 10))


def test_class_kl_matches_scipy():
    rng = np.random.default_rng(0)
    for _ in range(5):
        fake = rng.integers(0, 6, size=200)
        real = rng.choice(6, size=300, p=rng.dirichlet(np.ones(6)))
        real = np.concatenate([real, np.arange(6)])  # every class present
        p = np.bincount(fake, minlength=6) / len(fake)
        q = np.bincount(real, minlength=6) / len(real)
        assert class_kl(fake, real, 6) == pytest.approx(entropy(p, q), rel=1e-12)


def test_classes_covered():
    uniform = np.repeat(np.arange(10), 10)
    assert classes_covered(uniform, 10) == 10
    assert classes_covered(np.zeros(100, dtype=int), 10) == 1
    assert classes_covered([], 10) == 0
    # threshold 1 / (10 K) = 0.01: 9 of 1000 is below it, 10 of 1000 reaches it
    below = np.concatenate([np.zeros(991, dtype=int), np.full(9, 9)])
    at = np.concatenate([np.zeros(990, dtype=int), np.full(10, 9)])
    assert classes_covered(below, 10) == 1
    assert classes_covered(at, 10) == 2
    assert classes_covered(at, 10, min_share=0.5) == 1


# --- the metrics ------------------------------------------------------------------------------


def _ctx(samples: np.ndarray, dataset: Dataset) -> EvalContext:
    return EvalContext(
        model=None,
        samples=samples,
        held_out=dataset.test,
        dataset=dataset,
        rng=np.random.default_rng(0),
    )


def _metric(name: str):
    return next(m for m in CLASSIFIER_METRICS if m.name == name)


def test_metric_objects():
    assert [m.name for m in CLASSIFIER_METRICS] == ["class_kl", "classes_covered"]
    assert _metric("class_kl").lower_is_better
    assert not _metric("classes_covered").lower_is_better


def test_metrics_on_real_and_collapsed_samples(clf: DatasetClassifier, digits: Dataset):
    trainings = DatasetClassifier.trainings
    real = _ctx(digits.test, digits)
    kl, covered = _metric("class_kl"), _metric("classes_covered")
    assert kl.applies(real) and covered.applies(real)
    assert kl(real) < 0.05
    assert covered(real) == 10

    labels = np.concatenate([digits.params["train_labels"], digits.params["test_labels"]])
    zeros = np.concatenate([digits.train, digits.test])[labels == 0]
    collapsed = _ctx(zeros, digits)
    assert kl(collapsed) > 2.0  # log(1 / p_real(0)) ~ log 10 = 2.30
    assert covered(collapsed) == 1
    # the memoized (or, after another test cleared the memo, the cached) classifier served
    assert DatasetClassifier.trainings == trainings


def test_metrics_do_not_apply_without_labelled_images(digits: Dataset):
    points = Dataset("pts", np.zeros((10, 2)), np.zeros((5, 2)))
    unlabelled = Dataset("img", digits.train, digits.test, kind="images")
    for m in CLASSIFIER_METRICS:
        assert not m.applies(_ctx(points.test, points))
        assert not m.applies(_ctx(digits.test, unlabelled))
        assert not m.applies(_ctx(np.zeros((5, 3)), digits))  # samples not of the image shape
