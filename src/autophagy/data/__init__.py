"""Datasets for the retraining loop: generated 2-D toys and Gaussians, and a user's own points.

``load_dataset(name, ...)`` builds any registered dataset by name (what configs and the CLI use);
``dataset_from_array(x)`` wraps an in-memory array for the Python API. Image datasets (digits,
MNIST, CIFAR-10) will join the same ``DATASETS`` mapping from ``data/images.py``.
"""

from autophagy.data.base import Dataset
from autophagy.data.files import dataset_from_array, load_file, read_points
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
    "dataset_from_array",
    "dataset_options",
    "describe_datasets",
    "load_dataset",
    "load_file",
    "read_points",
]
