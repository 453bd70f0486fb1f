"""Feature extractors for feature-space metrics (FID, KID, precision / recall), and a disk cache.

A :class:`FeatureExtractor` maps a batch of samples (images (n, C, H, W) in [-1, 1], or points
(n, ...)) to an (n, f) float64 array. Metrics compare features rather than raw values because
pixel distances say little about image quality (Heusel et al., 2017; Kynkäänniemi et al., 2019).

- :class:`PixelFeatures`: the raw values, flattened (for points and small toy images).
- :class:`InceptionFeatures`: the 2048-d pool features of the TorchScript Inception-v3 that
  StyleGAN2-ADA and clean-fid use (``inception-2015-12-05.pt``), loaded from a local file; never
  downloaded.
- A classifier-feature extractor trained on the image datasets (for MNIST-like data, where
  Inception features are a poor fit) will implement the same interface here.

:class:`FeatureCache` stores the features of real sets on disk, since they are the same for every
run that uses the same data, split and extractor.
"""

from __future__ import annotations

import os
import re
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from autophagy.atomic import atomic_open
from autophagy.errors import InputError

__all__ = [
    "INCEPTION_ENV",
    "INCEPTION_FILE",
    "CACHE_ENV",
    "FeatureCache",
    "FeatureExtractor",
    "InceptionFeatures",
    "PixelFeatures",
]

INCEPTION_ENV = "AUTOPHAGY_INCEPTION"
"""Environment variable holding the path of the TorchScript Inception file."""
INCEPTION_FILE = "inception-2015-12-05.pt"
"""The expected file: StyleGAN2-ADA's / clean-fid's TorchScript port of the TF FID Inception."""
INCEPTION_SIZE = 299
CACHE_ENV = "AUTOPHAGY_CACHE"
"""Environment variable overriding the cache directory (default ``~/.cache/autophagy``)."""


class FeatureExtractor(ABC):
    """Maps samples to features: ``extractor(x) -> np.ndarray`` of shape (n, f), float64.

    ``name`` identifies the features (it keys the on-disk cache), so two extractors with the same
    name must give the same features.
    """

    name: str

    @abstractmethod
    def __call__(self, x: Any) -> np.ndarray:
        """Features of ``x`` (n samples), shape (n, f)."""


class PixelFeatures(FeatureExtractor):
    """The raw values, flattened to (n, -1): points as they are, images pixel by pixel."""

    name = "pixels"

    def __call__(self, x: Any) -> np.ndarray:
        if hasattr(x, "detach"):
            x = x.detach().cpu().numpy()
        a = np.asarray(x, dtype=np.float64)
        if a.ndim == 0:
            raise InputError("expected a batch of samples, got a scalar")
        return a.reshape(len(a), -1)


class InceptionFeatures(FeatureExtractor):
    """2048-d pool features of the FID Inception-v3, from a TorchScript file on disk.

    ``path`` defaults to the environment variable ``AUTOPHAGY_INCEPTION``; the file is the
    standard ``inception-2015-12-05.pt`` (StyleGAN2-ADA / clean-fid). Nothing is downloaded: a
    missing or unreadable file raises ``ValueError``. Images are (n, C, H, W) (or (n, H, W))
    floats in [-1, 1], C = 1 or 3; they are mapped to the [0, 255] range the network expects
    (clipped, not quantised to integers), grayscale is repeated to 3 channels, and they are
    resized to 299 x 299 bilinearly (``align_corners=False``) before the call
    ``module(x, return_features=True)`` (or ``module(x)`` when the module has no such argument).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        batch_size: int = 64,
        device: Any = None,
    ):
        import torch

        source = "the path argument" if path is not None else f"${INCEPTION_ENV}"
        if path is None:
            path = os.environ.get(INCEPTION_ENV) or None
        if path is None:
            raise InputError(
                f"no Inception weights: pass path=... or set {INCEPTION_ENV} to the TorchScript "
                f"file {INCEPTION_FILE!r} (StyleGAN2-ADA / clean-fid); it is never downloaded"
            )
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise InputError(
                f"Inception weights not found at {str(self.path)!r} (from {source}); expected "
                f"the TorchScript file {INCEPTION_FILE!r}; set {INCEPTION_ENV} or pass path=..."
            )
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        try:
            # torch.jit is deprecated, but the standard Inception file is TorchScript.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                self.module = torch.jit.load(str(self.path), map_location=self.device)
        except Exception as e:  # torch raises RuntimeError, zipfile/pickle errors, ...
            raise InputError(
                f"{str(self.path)!r} (from {source}) is not a TorchScript module ({e}); expected "
                f"the TorchScript file {INCEPTION_FILE!r}; set {INCEPTION_ENV} or pass path=..."
            ) from e
        self.module.eval()
        self.batch_size = int(batch_size)
        self.name = f"inception:{self.path.stem}"
        self._return_features = _accepts(self.module, "return_features")

    def preprocess(self, x: Any) -> Any:
        """[-1, 1] images (n, C, H, W) -> float32 (n, 3, 299, 299) in [0, 255], on the device."""
        import torch
        import torch.nn.functional as F

        t = x.detach() if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
        t = t.to(device=self.device, dtype=torch.float32)
        if t.ndim == 3:
            t = t[:, None]
        if t.ndim != 4 or t.shape[1] not in (1, 3):
            raise InputError(f"expected images (n, 1 or 3, H, W), got shape {tuple(t.shape)}")
        t = ((t + 1.0) * 127.5).clamp_(0.0, 255.0)
        if t.shape[1] == 1:
            t = t.expand(-1, 3, -1, -1)
        if tuple(t.shape[2:]) != (INCEPTION_SIZE, INCEPTION_SIZE):
            size = (INCEPTION_SIZE, INCEPTION_SIZE)
            t = F.interpolate(t, size=size, mode="bilinear", align_corners=False)
            t = t.clamp_(0.0, 255.0)  # float rounding can overshoot by ~1e-5
        return t.contiguous()

    def __call__(self, x: Any) -> np.ndarray:
        import torch

        n = len(x)
        out: list[np.ndarray] = []
        with torch.no_grad():
            for start in range(0, n, self.batch_size):
                batch = self.preprocess(x[start : start + self.batch_size])
                if self._return_features:
                    f = self.module(batch, return_features=True)
                else:
                    f = self.module(batch)
                out.append(f.reshape(len(batch), -1).double().cpu().numpy())
        if not out:
            return np.zeros((0, 2048))
        return np.concatenate(out)


def _accepts(module: Any, argument: str) -> bool:
    """Whether a TorchScript module's ``forward`` takes ``argument`` (from its schema)."""
    try:
        schema = module.forward.schema
    except Exception:
        return False
    return any(a.name == argument for a in schema.arguments)


# --- cache ----------------------------------------------------------------------------------------


def _slug(part: Any) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", str(part)) or "_"


class FeatureCache:
    """Features of real sets on disk, keyed by (dataset, split, extractor name, n).

    ``root`` defaults to ``$AUTOPHAGY_CACHE`` or ``~/.cache/autophagy``; files are
    ``<root>/features/<dataset>__<split>__<extractor>__n<n>.npy``. Writes go to a temporary file
    in the same directory, then ``os.replace`` it into place, so concurrent runs never read a
    half-written file (the last writer wins, with identical content).

    Example:
        >>> feats = FeatureCache().get_or_compute("mnist", "test", ext.name, 10000,
        ...                                       lambda: ext(images))
    """

    def __init__(self, root: str | os.PathLike[str] | None = None):
        if root is None:
            root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "autophagy"
        self.root = Path(root).expanduser()

    def path(self, dataset: str, split: str, extractor: str, n: int) -> Path:
        name = f"{_slug(dataset)}__{_slug(split)}__{_slug(extractor)}__n{int(n)}.npy"
        return self.root / "features" / name

    def load(self, dataset: str, split: str, extractor: str, n: int) -> np.ndarray | None:
        """The cached array, or None when absent."""
        p = self.path(dataset, split, extractor, n)
        if not p.is_file():
            return None
        return np.load(p, allow_pickle=False)

    def save(self, dataset: str, split: str, extractor: str, n: int, feats: Any) -> Path:
        """Write ``feats`` atomically and return the file's path."""
        p = self.path(dataset, split, extractor, n)
        with atomic_open(p, "wb") as f:
            np.save(f, np.asarray(feats), allow_pickle=False)
        return p

    def get_or_compute(
        self,
        dataset: str,
        split: str,
        extractor: str,
        n: int,
        compute: Callable[[], np.ndarray],
    ) -> np.ndarray:
        """The cached features, or ``compute()`` stored and returned (checked to have n rows)."""
        cached = self.load(dataset, split, extractor, n)
        if cached is not None:
            return cached
        feats = np.asarray(compute())
        if len(feats) != n:
            raise InputError(f"computed {len(feats)} feature rows, expected n={n}")
        self.save(dataset, split, extractor, n, feats)
        return feats
