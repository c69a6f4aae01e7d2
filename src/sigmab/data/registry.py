"""Dataset registry: each entry says how to read a split and what its images look like."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from sigmab.data.arrays import split_holdout
from sigmab.data.cifar import load_cifar
from sigmab.data.digits import load_digits_arrays
from sigmab.data.fashion_mnist import DEBIAN_FASHION_MNIST, load_fashion_mnist
from sigmab.data.image_folder import read_image_folder
from sigmab.data.points import image_point_sets, load_modelnet40
from sigmab.data.source import DataSplit
from sigmab.data.transforms import AugmentSpec
from sigmab.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is: its classes, image shape, usual normalisation and augmentation, and its reader.

    ``read(root, split)`` returns the official ``train`` or ``test`` split; ``root`` is ``None``
    for datasets that need no files. ``num_classes`` is ``None`` where the data says (image folders).
    """

    name: str
    num_classes: int | None
    in_channels: int
    input_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: AugmentSpec
    read: Callable[[Path | None, str], DataSplit]
    default_root: Path | None = None
    needs_root: bool = True


def _needs(root: Path | None, name: str) -> Path:
    if root is None:
        raise DataError(f"dataset {name!r} needs a data location (--data-root: an .npz file or a folder)")
    return root


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("cifar10", 10, 3, (32, 32), (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
                    AugmentSpec(crop_padding=4, hflip=True),
                    lambda root, split: load_cifar(_needs(root, "cifar10"), split=split, num_classes=10)),
        DatasetInfo("cifar100", 100, 3, (32, 32), (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
                    AugmentSpec(crop_padding=4, hflip=True),
                    lambda root, split: load_cifar(_needs(root, "cifar100"), split=split, num_classes=100)),
        DatasetInfo("fashion_mnist", 10, 1, (28, 28), (0.2860,), (0.3530,), AugmentSpec(crop_padding=2),
                    lambda root, split: load_fashion_mnist(_needs(root, "fashion_mnist"), split=split),
                    default_root=DEBIAN_FASHION_MNIST),
        # Digits are not mirror-symmetric, so no flip; a 1-pixel shift is the whole augmentation.
        DatasetInfo("digits", 10, 1, (8, 8), (0.3053,), (0.3760,), AugmentSpec(crop_padding=1),
                    lambda root, split: load_digits_arrays(split=split), needs_root=False),
        # Point sets (N, D, P): ModelNet40's HDF5 release (1,024 of its 2,048 points), and Fashion-MNIST
        # as 2-D sets of 256 bright pixels with their intensity (sigmab.data.points.image_point_sets).
        DatasetInfo("modelnet40", 40, 3, (1024,), (0.0,) * 3, (1.0,) * 3, AugmentSpec(points=True),
                    lambda root, split: load_modelnet40(_needs(root, "modelnet40"), split)),
        DatasetInfo("fashion_mnist_points", 10, 4, (256,), (0.0,) * 4, (1.0,) * 4, AugmentSpec(points=True),
                    lambda root, split: image_point_sets(load_fashion_mnist(_needs(root, "fashion_mnist_points"),
                                                                            split=split)),
                    default_root=DEBIAN_FASHION_MNIST),
        # <root>/train/<class>/*.jpg and <root>/val/... (or test/); ImageNet's statistics and preprocessing.
        DatasetInfo("imagefolder", None, 3, (224, 224), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225),
                    AugmentSpec(hflip=True),
                    lambda root, split: read_image_folder(_needs(root, "imagefolder"), split)),
    )
}

_SIZED_FOLDER = re.compile(r"imagefolder-(\d+)")


def get_dataset_info(name: str) -> DatasetInfo:
    """A registered dataset, or ``imagefolder-<size>``: an image folder preprocessed to ``size`` pixels."""
    sized = _SIZED_FOLDER.fullmatch(name)
    if sized and int(sized.group(1)) >= 8:
        size = int(sized.group(1))
        return replace(DATASETS["imagefolder"], name=name, input_size=(size, size),
                       read=lambda root, split: read_image_folder(_needs(root, name), split, size=size))
    try:
        return DATASETS[name]
    except KeyError:
        raise ConfigError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}, "
                          "imagefolder-<size> (size >= 8)") from None


def load_split(
    name: str, split: str, *, root: str | Path | None = None, val_fraction: float = 0.0, seed: int = 0
) -> DataSplit:
    """Load ``split`` of dataset ``name``.

    ``val_fraction`` > 0 holds out a seeded part of the training set: ``train`` then returns the
    rest and ``val`` the held-out part, so tuning never looks at ``test``.
    """
    info = get_dataset_info(name)
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if split == "val" and val_fraction <= 0.0:
        raise ConfigError("the 'val' split needs a hold-out fraction > 0 (--val-fraction)")
    path = Path(root).expanduser() if root is not None else info.default_root
    if split == "test":
        return info.read(path, "test")
    train = info.read(path, "train")
    if val_fraction <= 0.0:
        return train
    rest, held_out = split_holdout(train, fraction=val_fraction, seed=seed)
    return held_out if split == "val" else rest
