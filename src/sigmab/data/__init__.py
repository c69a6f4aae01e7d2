"""Data: in-memory image sets from real on-disk formats, seeded batch loaders, batched augmentation."""

from sigmab.data.arrays import ImageArrays, make_image_arrays, split_holdout
from sigmab.data.loader import ArrayLoader
from sigmab.data.registry import DATASETS, DatasetInfo, get_dataset_info, load_split
from sigmab.data.transforms import AugmentSpec, Normalize

__all__ = [
    "DATASETS",
    "ArrayLoader",
    "AugmentSpec",
    "DatasetInfo",
    "ImageArrays",
    "Normalize",
    "get_dataset_info",
    "load_split",
    "make_image_arrays",
    "split_holdout",
]
