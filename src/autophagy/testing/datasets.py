"""``check_dataset``: a dataset's arrays, splits and seeds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from autophagy.data import DATASETS, Dataset, DatasetEntry, load_dataset
from autophagy.testing.common import (
    _Rules,
    _same,
)


def check_dataset(
    dataset: str | DatasetEntry | Dataset,
    *,
    options: Mapping[str, Any] | None = None,
    n_train: int = 64,
    n_test: int = 32,
    n_pool: int = 16,
    seed: int = 0,
) -> list[str]:
    """Check a dataset against what the loop relies on; return the rules passed.

    ``dataset`` is a registered name or ``module:attr`` naming a
    :class:`~autophagy.data.DatasetEntry`, an entry itself (registered for the check under a
    temporary name), or a built :class:`~autophagy.data.Dataset` (only its arrays are checked).

    Rules (each one sentence of why):

    - *loads*: ``load_dataset(name, n_train=, n_test=, n_pool=, seed=, **options)`` builds it,
      as a config does.
    - *arrays*: train, test (and pool) are numpy float arrays of finite values, the sizes asked
      for, one per-sample shape: the model fits them and metrics compare against them.
    - *kind and shape*: ``kind`` is ``points`` (rows ``(n, d)``) or ``images`` (``(n, C, H,
      W)`` in [-1, 1]), as the entry says: the report draws and the families build by it.
    - *disjoint splits*: no test or pool row is a training row; evaluation on seen data would
      flatter every model.
    - *determinism*: the same seed gives the same arrays bit for bit, another seed others: one
      seed, the same run.
    """
    temporary = None
    if isinstance(dataset, DatasetEntry):
        temporary = f"_contract_check_{id(dataset)}"
        DATASETS.register(temporary, dataset)
    try:
        return _check_dataset(temporary or dataset, options or {}, n_train, n_test, n_pool, seed)
    finally:
        if temporary is not None:
            DATASETS.unregister(temporary)


def _check_dataset(dataset, options, n_train, n_test, n_pool, seed) -> list[str]:
    built = isinstance(dataset, Dataset)
    rules = _Rules(dataset.name if built else str(dataset))
    sizes = {"n_train": n_train, "n_test": n_test, "n_pool": n_pool}

    def load(s: int) -> Dataset:
        return load_dataset(dataset, **sizes, seed=s, **options)

    with rules.rule("loads"):
        data = dataset if built else load(seed)
        if not isinstance(data, Dataset):
            rules.fail("loads", f"load_dataset gave {type(data).__name__}, not a Dataset")
    parts = {"train": data.train, "test": data.test}
    if data.pool is not None:
        parts["pool"] = data.pool
    with rules.rule("arrays"):
        for part, x in parts.items():
            if not isinstance(x, np.ndarray) or x.ndim < 2:
                rules.fail("arrays", f"{part} is {type(x).__name__} of shape "
                                     f"{getattr(x, 'shape', None)}, not an array (n, ...)")
            kind = np.integer if data.kind == "text" else np.floating  # text: token ids
            if not np.issubdtype(x.dtype, kind) or not np.all(np.isfinite(x)):
                rules.fail("arrays", f"{part} has dtype {x.dtype}, finite "
                                     f"{bool(np.all(np.isfinite(x)))}; models fit finite floats")
            if x.shape[1:] != data.train.shape[1:]:
                rules.fail("arrays", f"{part} rows have shape {x.shape[1:]}, train rows "
                                     f"{data.train.shape[1:]}")
            want = sizes.get(f"n_{part}")
            if not built and want and len(x) != want:
                rules.fail("arrays", f"{part} has {len(x)} rows, {want} were asked for")
        if not built and n_pool and data.pool is None:
            rules.fail("arrays", f"no pool, {n_pool} rows were asked for")
    with rules.rule("kind and shape"):
        if data.kind not in ("points", "images", "text"):
            rules.fail("kind and shape", f"kind is {data.kind!r}, not 'points', 'images' or "
                                         "'text'")
        if data.kind == "text" and (data.train.ndim != 2
                                    or not np.issubdtype(data.train.dtype, np.integer)):
            rules.fail("kind and shape", f"text of shape {data.train.shape} and dtype "
                                         f"{data.train.dtype}, not integer (n, block_len)")
        if data.kind == "points" and data.train.ndim != 2:
            rules.fail("kind and shape", f"points of shape {data.train.shape}, not (n, d)")
        if data.kind == "images":
            x = data.train
            if x.ndim != 4 or x.min() < -1 or x.max() > 1:
                rules.fail("kind and shape", f"images of shape {x.shape} in [{x.min():g}, "
                                             f"{x.max():g}], not (n, C, H, W) in [-1, 1]")
        if data.shape != tuple(data.train.shape[1:]):
            rules.fail("kind and shape", f"shape {data.shape} is not the rows' "
                                         f"{data.train.shape[1:]}")
        if not built and DATASETS.entry(dataset).load().kind != data.kind:
            rules.fail("kind and shape", f"the entry says {DATASETS.entry(dataset).load().kind}"
                                         f", the dataset is {data.kind}")
    with rules.rule("disjoint splits"):
        seen = {row.tobytes() for row in data.train.reshape(len(data.train), -1)}
        for part in ("test", "pool"):
            if part in parts:
                x = parts[part]
                shared = sum(row.tobytes() in seen for row in x.reshape(len(x), -1))
                if shared:
                    rules.fail("disjoint splits", f"{shared} of {len(x)} {part} rows are "
                                                  "also training rows")
    if built:
        return rules.passed
    with rules.rule("determinism"):
        again, other = load(seed), load(seed + 1)
        for part in parts:
            if not _same(parts[part], getattr(again, part)):
                rules.fail("determinism", f"two loads with seed {seed} give different {part} "
                                          "arrays")
        if _same(data.train, other.train):
            rules.fail("determinism", f"seeds {seed} and {seed + 1} give the same train array; "
                                      "draw from the seed's rng")
    return rules.passed
