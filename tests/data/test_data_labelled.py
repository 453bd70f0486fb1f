"""Labelled datasets with a group attribute: colours, correlation, splits, and CIFAR-20 files."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from cifar_files import write_cifar100

from autophagy.data import load_dataset
from autophagy.data.labelled import has_groups, has_labels, split_labels
from autophagy.errors import InputError
from autophagy.testing import check_dataset


@pytest.mark.parametrize("name", ["coloured_digits", "minority_modes"])
def test_labelled_datasets_keep_the_dataset_contract(name):
    check_dataset(name)


def test_coloured_digits_draw_each_digit_in_its_group_s_colour():
    ds = load_dataset("coloured_digits", n_train=1000, n_test=500, seed=3, correlation=0.8)
    assert ds.shape == (3, 8, 8) and has_labels(ds) and has_groups(ds)
    y, g = split_labels(ds, "train")
    lit = ds.train > -1  # background is -1 in every channel
    assert not lit[g == 0][:, 1:].any() and not lit[g == 1][:, [0, 2]].any()  # red / green only
    # the colour follows the label's half with probability 0.8 (binomial, n = 1000: sd 0.013)
    assert abs(np.mean(y == g) - 0.8) < 0.045
    digits = load_dataset("digits", n_train=1000, n_test=500, seed=3)
    grey = ds.train.max(axis=1)  # the lit channel carries the digit's grey values
    np.testing.assert_allclose(grey, digits.train[:, 0], atol=1e-6)
    assert np.array_equal(y, (digits.params["train_labels"] >= 5).astype(int))


def test_coloured_digits_options_and_determinism():
    a = load_dataset("coloured_digits", n_train=300, n_test=100, seed=1, target="digit",
                     correlation=0.5)
    b = load_dataset("coloured_digits", n_train=300, n_test=100, seed=1, target="digit",
                     correlation=0.5)
    assert np.array_equal(a.train, b.train) and a.params["n_classes"] == 10
    assert split_labels(a, "test")[0].max() > 1
    with pytest.raises(InputError, match="data.options.correlation"):
        load_dataset("coloured_digits", n_train=300, n_test=100, correlation=1.5)


def test_coloured_mnist_is_mnist_in_colour():
    ds = load_dataset("coloured_mnist", n_train=200, n_test=100, seed=0, correlation=1.0)
    y, g = split_labels(ds, "test")
    assert ds.shape == (3, 28, 28) and np.array_equal(y, g)


def test_minority_modes_flip_the_labels_of_the_minority():
    ds = load_dataset("minority_modes", n_train=4000, n_test=10, seed=0, minority=0.25)
    x, (y, g) = ds.train, split_labels(ds, "train")
    assert abs(np.mean(g) - 0.25) < 0.03
    right = x[:, 0] > 0
    assert np.mean(right[g == 0] == (y[g == 0] == 1)) > 0.99
    assert np.mean(right[g == 1] == (y[g == 1] == 0)) > 0.99


def test_cifar20_reads_the_coarse_labels_of_the_official_files(tmp_path):
    folder = write_cifar100(tmp_path / "cifar-100-python")
    ds = load_dataset("cifar20", path=str(tmp_path), n_train=50, n_test=30, n_pool=5, seed=0)
    raw = pickle.loads((folder / "test").read_bytes())
    idx = ds.params["split"]["test"]
    expect = raw[b"data"][idx].reshape(-1, 3, 32, 32).astype(np.float32) / 127.5 - 1
    np.testing.assert_allclose(ds.test, expect, atol=1e-6)
    assert np.array_equal(ds.params["test_labels"], np.array(raw[b"coarse_labels"])[idx])
    assert ds.params["label_names"][3] == "c3" and ds.params["n_classes"] == 20
    assert ds.pool.shape == (5, 3, 32, 32) and has_labels(ds) and not has_groups(ds)


def test_cifar20_refuses_missing_and_foreign_files(tmp_path):
    with pytest.raises(InputError, match="data.path: .* lacks train, test"):
        load_dataset("cifar20", path=str(tmp_path), n_train=10, n_test=10)
    (tmp_path / "train").write_bytes(pickle.dumps({b"data": 1}))
    (tmp_path / "test").write_bytes(b"not a pickle")
    with pytest.raises(InputError, match="not a CIFAR-100 file|could not be read"):
        load_dataset("cifar20", path=str(tmp_path), n_train=10, n_test=10)
