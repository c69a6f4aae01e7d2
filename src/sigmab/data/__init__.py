"""Data: image sets from real on-disk formats (in memory, or image folders decoded on demand), seeded batch
loaders, augmentation."""

from sigmab.data.arrays import ImageArrays, make_image_arrays, split_holdout
from sigmab.data.image_folder import FolderSplit, read_image_folder
from sigmab.data.loader import ArrayLoader
from sigmab.data.registry import DATASETS, DatasetInfo, get_dataset_info, load_split
from sigmab.data.source import BatchLoader, DataSplit, sample_images
from sigmab.data.transforms import AugmentSpec, Normalize

__all__ = [
    "DATASETS",
    "ArrayLoader",
    "AugmentSpec",
    "BatchLoader",
    "DataSplit",
    "DatasetInfo",
    "FolderSplit",
    "ImageArrays",
    "Normalize",
    "get_dataset_info",
    "load_split",
    "make_image_arrays",
    "read_image_folder",
    "sample_images",
    "split_holdout",
]
