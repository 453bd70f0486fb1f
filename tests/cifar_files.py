"""Small files in the official CIFAR-100 python format, for the tests that read them (the
cifar20 dataset, the cifar20-bias preset's rehearsal)."""

from __future__ import annotations

import pickle

import numpy as np


def write_cifar100(folder, n_train=60, n_test=40, seed=0):
    """Files in the format of cifar-100-python.tar.gz: protocol-2 pickles with bytes keys."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for name, n in (("train", n_train), ("test", n_test)):
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"coarse_labels": [int(v) for v in rng.integers(0, 20, n)],
                 b"fine_labels": [int(v) for v in rng.integers(0, 100, n)],
                 b"filenames": [b"x.png"] * n, b"batch_label": name.encode()}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"coarse_label_names": [f"c{i}".encode() for i in range(20)],
            b"fine_label_names": [f"f{i}".encode() for i in range(100)]}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder
