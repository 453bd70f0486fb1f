"""Datasets for the retraining loop: generated 2-D toys and Gaussians, and a user's own points.

``load_dataset(name, ...)`` builds any registered dataset by name (what configs and the CLI use);
``dataset_from_array(x)`` wraps an in-memory array for the Python API. Image datasets (digits,
mnist5k, cifar10, image_folder) are built by ``data/images.py`` and registered in the same
``DATASETS`` mapping, with ``kind="images"`` and arrays (n, C, H, W) in [-1, 1].
"""

from autophagy.data.base import Dataset
from autophagy.data.files import dataset_from_array, load_file, read_points
from autophagy.data.images import (
    SafeUnpickler,
    load_cifar10,
    load_digits_images,
    load_image_folder,
    load_mnist5k,
)
from autophagy.data.registry import (
    DATASETS,
    DatasetEntry,
    dataset_options,
    describe_datasets,
    load_dataset,
)

__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetEntry",
    "SafeUnpickler",
    "dataset_from_array",
    "dataset_options",
    "describe_datasets",
    "load_cifar10",
    "load_dataset",
    "load_digits_images",
    "load_file",
    "load_image_folder",
    "load_mnist5k",
    "read_points",
]
