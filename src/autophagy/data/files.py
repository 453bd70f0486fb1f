"""A user's own points: a ``.npy`` or ``.csv`` file, or an array passed from Python.

A finite set of rows is split, not sampled, so the split rule decides what is held out. The rule
(:func:`split_sizes`), for N rows after a shuffle with ``seed``:

- test = the first ``n_test`` shuffled rows; when ``n_test`` is not given,
  ``min(2000, max(1, floor(0.2 * N)))`` (2000 as for generated data, 20% for small files);
- pool = the next ``n_pool`` rows (default 0: no pool);
- train = the next ``n_train`` rows; when ``n_train`` is not given, all remaining rows;
- at least 2 train rows and 1 test row; a request that does not fit is an error, never silently
  shrunk, except the unset ``n_test`` default above.

Test comes first so that the held-out set depends only on (seed, N, n_test): changing ``n_train``
or ``n_pool`` never moves a row into or out of it, and train sets of growing ``n_train`` are
nested. Splits are disjoint by row index (rows that repeat in the file may repeat across splits);
the indices are kept in ``params["split"]``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from autophagy.data.base import Dataset
from autophagy.data.points import check_int, check_number
from autophagy.errors import InputError

SUPPORTED_SUFFIXES = (".npy", ".csv")
DEFAULT_N_TEST = 2000
DEFAULT_TEST_FRACTION = 0.2
MIN_TRAIN = 2
FILE_HINT = "lower n_test, n_pool or n_train (leave n_test unset to hold out 20%)"


def as_points(x: Any, where: str) -> np.ndarray:
    """Validate an array of points: numeric, (N, d) (1-D becomes (N, 1)), finite; as float64.

    ``where`` starts each error message (e.g. "data.path: 'x.csv'"), so it names the field.
    """
    try:
        a = np.asarray(x)
    except ValueError:
        raise InputError(f"{where} is ragged; every row must have the same length") from None
    if a.dtype.kind not in "biuf":
        raise InputError(f"{where} holds values of type {a.dtype}; only numeric data is supported")
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise InputError(
            f"{where} has shape {a.shape}; expected a 2-D array of shape (N, d), one row a sample"
        )
    a = a.astype(np.float64)
    bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
    if bad:
        raise InputError(f"{where} contains {bad} NaN/inf values; clean or drop those rows")
    return a


def check_counts(
    n_train: int | None, n_test: int | None, n_pool: int, seed: int
) -> tuple[int | None, int | None, int, int]:
    """Validate split sizes (``None`` = the default of the caller) and the seed."""
    return (
        None if n_train is None else check_int(n_train, "n_train", MIN_TRAIN),
        None if n_test is None else check_int(n_test, "n_test", 1),
        check_int(n_pool, "n_pool", 0),
        check_int(seed, "seed", 0),
    )


def split_sizes(
    n_rows: int,
    *,
    n_train: int | None,
    n_test: int | None,
    n_pool: int,
    where: str,
    hint: str = FILE_HINT,
) -> tuple[int, int, int]:
    """Sizes (n_train, n_test, n_pool) for ``n_rows`` rows under the module's split rule."""
    if n_test is None:
        n_test = min(DEFAULT_N_TEST, max(1, math.floor(DEFAULT_TEST_FRACTION * n_rows)))
    train_needed = MIN_TRAIN if n_train is None else n_train
    if n_test + n_pool + train_needed > n_rows:
        train = f"n_train={n_train}" if n_train is not None else f"at least {MIN_TRAIN} train"
        raise InputError(
            f"{where} has {n_rows} rows, too few for n_test={n_test} + n_pool={n_pool} + {train}; "
            f"{hint}"
        )
    if n_train is None:
        n_train = n_rows - n_test - n_pool
    return n_train, n_test, n_pool


def split_rows(
    x: np.ndarray,
    *,
    name: str,
    n_train: int | None = None,
    n_test: int | None = None,
    n_pool: int = 0,
    seed: int = 0,
    where: str,
    hint: str = FILE_HINT,
    params: dict[str, Any] | None = None,
) -> Dataset:
    """Shuffle the rows of ``x`` with ``seed`` and cut test, pool, train in that order."""
    n_train, n_test, n_pool, seed = check_counts(n_train, n_test, n_pool, seed)
    n_train, n_test, n_pool = split_sizes(
        len(x), n_train=n_train, n_test=n_test, n_pool=n_pool, where=where, hint=hint
    )
    order = np.random.default_rng(seed).permutation(len(x))
    test_idx = order[:n_test]
    pool_idx = order[n_test : n_test + n_pool]
    train_idx = order[n_test + n_pool : n_test + n_pool + n_train]
    split = {"train": train_idx, "test": test_idx, "pool": pool_idx}
    return Dataset(
        name=name,
        train=x[train_idx],
        test=x[test_idx],
        pool=x[pool_idx] if n_pool else None,
        kind="points",
        params={**(params or {}), "rows": len(x), "split": split},
    )


def _detect_header(path: Path) -> bool:
    """True when some non-empty field of the first line does not parse as a number.

    A header made only of numbers (e.g. "0,1") cannot be told from data; pass ``header=True``.
    """
    with path.open(encoding="utf-8", errors="replace") as f:
        first = f.readline()
    for field in first.strip().split(","):
        field = field.strip().strip("\"'")
        if not field:
            continue
        try:
            float(field)
        except ValueError:
            return True
    return False


def _read_csv(path: Path, where: str, header: bool | None) -> np.ndarray:
    if header is None:
        header = _detect_header(path)
    try:
        frame = pd.read_csv(path, header=0 if header else None)
    except pd.errors.EmptyDataError:
        raise InputError(f"{where} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"{where} could not be parsed as CSV ({first})") from None
    numeric = frame.apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna().to_numpy() & frame.notna().to_numpy()
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        value = frame.iat[row, col]
        raise InputError(
            f"{where} has a non-numeric value {value!r} at data row {row + 1}, column {col + 1}; "
            "only numeric columns are supported"
        )
    return numeric.to_numpy(dtype=np.float64)


def read_points(path: str | Path, *, header: bool | None = None) -> np.ndarray:
    """Read and validate a ``.npy`` or ``.csv`` file of points as an (N, d) float64 array.

    CSV: comma separated, numeric; a header row is detected when its first line has a
    non-numeric field (``header=True`` / ``False`` forces it); empty cells count as NaN.
    Every error is a one-line ValueError starting with ``data.path:``.
    """
    if path is None:
        raise InputError("data.path: dataset 'file' needs a path to a .npy or .csv file")
    p = Path(path).expanduser()
    where = f"data.path: '{path}'"
    if not p.exists():
        raise InputError(f"data.path: no such file '{path}'")
    if not p.is_file():
        raise InputError(f"{where} is not a file; give a .npy or .csv file")
    suffix = p.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InputError(
            f"data.path: unsupported file type '{p.suffix}' for '{path}'; use .npy or .csv"
        )
    if suffix == ".npy":
        try:
            raw = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InputError(f"{where} could not be read as .npy ({first})") from None
    else:
        raw = _read_csv(p, where, header)
    return as_points(raw, where)


def load_file(
    path: str | Path | None,
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    n_pool: int = 0,
    seed: int = 0,
    header: bool | None = None,
) -> Dataset:
    """The ``file`` dataset: a user's ``.npy`` / ``.csv`` of shape (N, d), split by the module rule.

    ``params`` records ``path``, ``rows``, ``columns`` and the row indices of each split.
    """
    if header is not None and not isinstance(header, bool):
        raise InputError(f"header must be true, false or unset (auto-detect), got {header!r}")
    n_train, n_test, n_pool, seed = check_counts(n_train, n_test, n_pool, seed)
    x = read_points(path, header=header)
    return split_rows(
        x,
        name="file",
        n_train=n_train,
        n_test=n_test,
        n_pool=n_pool,
        seed=seed,
        where=f"data.path: '{path}'",
        params={"path": str(path), "columns": x.shape[1]},
    )


def dataset_from_array(
    x: Any,
    *,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    n_pool: int = 0,
    seed: int = 0,
    name: str = "array",
) -> Dataset:
    """A Dataset from an in-memory array of points, for the Python API.

    The rows are shuffled with ``seed``; ``max(1, floor(test_fraction * N))`` rows are held out
    for testing, then ``n_pool`` rows kept as a pool, and the rest are trained on. The same
    validation as for files applies (2-D after 1-D becomes (N, 1), numeric, finite).
    """
    fraction = check_number(test_fraction, "test_fraction", positive=True)
    if fraction >= 1:
        raise InputError(f"test_fraction must be a number in (0, 1), got {test_fraction!r}")
    n_pool = check_int(n_pool, "n_pool", 0)
    seed = check_int(seed, "seed", 0)
    where = "x: the array"
    points = as_points(x, where)
    n_test = max(1, math.floor(fraction * len(points)))
    return split_rows(
        points,
        name=name,
        n_test=n_test,
        n_pool=n_pool,
        seed=seed,
        where=where,
        hint="pass more rows, or lower n_pool",
        params={"columns": points.shape[1]},
    )
