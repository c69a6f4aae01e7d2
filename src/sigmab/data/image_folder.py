"""ImageFolder-style data (``<root>/<split>/<class>/*.jpg``) with the standard ImageNet preprocessing.

Training: random-resized crop (scale 0.08-1, aspect 3/4-4/3) to ``size`` and a horizontal flip;
evaluation: resize the shorter side to ``resize`` and center-crop ``size``. Images are decoded with
Pillow on demand, so the set never has to fit in memory. Each sample's augmentation comes from a
generator seeded by (seed, epoch, index): a resumed or re-sharded run draws the same crops.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from sigmab.data.transforms import AugmentSpec
from sigmab.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True)
class FolderIndex:
    """Every image file of one split, with its class id (classes sorted by folder name)."""

    root: Path
    classes: list[str]
    files: list[Path]
    labels: list[int]


def _class_folders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def index_image_folder(root: str | os.PathLike[str], split: str, *, classes: Sequence[str] | None = None
                       ) -> FolderIndex:
    """Scan ``root/split/<class>/``; a missing split, no class folders or an empty class is a DataError.

    ``classes`` (e.g. the training split's) fixes the class ids: the split must hold exactly those folders.
    """
    folder = Path(root) / split
    if not folder.is_dir():
        raise DataError(f"{folder}: no such split folder (expected <root>/{split}/<class>/<image>)")
    found = _class_folders(folder)
    if not found:
        raise DataError(f"{folder}: no class folders")
    if classes is not None and found != sorted(classes):
        missing, extra = sorted(set(classes) - set(found)), sorted(set(found) - set(classes))
        raise DataError(f"{folder}: class folders differ from the training split's "
                        f"(missing: {', '.join(missing) or '-'}; unknown: {', '.join(extra) or '-'})")
    classes = found
    files, labels = [], []
    for label, name in enumerate(classes):
        images = sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not images:
            raise DataError(f"{folder / name}: class folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        files += images
        labels += [label] * len(images)
    return FolderIndex(folder, classes, files, labels)


def read_image_folder(root: str | os.PathLike[str], split: str, *, size: int = 224) -> FolderSplit:
    """``split`` "train" reads ``root/train``; "test" reads ``root/test``, or ``root/val`` where there is no
    ``test`` folder (ImageNet's layout: its validation set is the usual test set). Class ids follow the
    training folder's sorted class names whenever it exists."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such image folder (expected <root>/train/<class>/<image> and <root>/val/...)")
    if split == "test":
        split = "test" if (root / "test").is_dir() else "val"
    classes = _class_folders(root / "train") if split != "train" and (root / "train").is_dir() else None
    return FolderSplit(index_image_folder(root, split, classes=classes), size=size,
                       resize=round(size * 256 / 224))


def _open_rgb(path: Path):  # noqa: ANN202 (PIL is imported lazily)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"{path}: cannot decode image ({exc})") from None


def random_resized_box(width: int, height: int, g: torch.Generator, *, scale: tuple[float, float] = (0.08, 1.0),
                       ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """(left, top, w, h) of a crop covering ``scale`` of the area at an aspect ratio in ``ratio``
    (log-uniform); after 10 misses, the largest center crop within ``ratio``."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        u = torch.rand(3, generator=g).tolist()
        target = area * (scale[0] + u[0] * (scale[1] - scale[0]))
        aspect = math.exp(log_ratio[0] + u[1] * (log_ratio[1] - log_ratio[0]))
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            left = int(torch.randint(0, width - w + 1, (1,), generator=g))
            top = int(torch.randint(0, height - h + 1, (1,), generator=g))
            return left, top, w, h
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        w, h = round(height * ratio[1]), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


class ImageFolderDataset(Dataset):
    """Items: (normalised float32 image (3, size, size), class id)."""

    def __init__(self, index: FolderIndex, *, train: bool, mean: Sequence[float], std: Sequence[float],
                 size: int = 224, resize: int = 256, seed: int = 0) -> None:
        self.index, self.train, self.size, self.resize, self.seed = index, train, size, resize, seed
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.index.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        img = _open_rgb(self.index.files[i])
        if self.train:
            g = torch.Generator().manual_seed(((self.seed * 1_000_003 + self.epoch) * 1_000_003 + i) % 2**62)
            left, top, w, h = random_resized_box(*img.size, g)
            img = img.resize((self.size, self.size), Image.BILINEAR, box=(left, top, left + w, top + h))
            if bool(torch.rand(1, generator=g) < 0.5):
                img = img.transpose(Image.FLIP_LEFT_RIGHT)
        else:
            width, height = img.size
            short = min(width, height)
            img = img.resize((round(width * self.resize / short), round(height * self.resize / short)),
                             Image.BILINEAR)
            left, top = (img.size[0] - self.size) // 2, (img.size[1] - self.size) // 2
            img = img.crop((left, top, left + self.size, top + self.size))
        x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(255)
        return (x - self.mean) / self.std, self.index.labels[i]


@dataclass(frozen=True)
class FolderSplit:
    """A split of an image folder (:class:`~sigmab.data.source.DataSplit`): images are decoded per batch,
    preprocessed to (3, ``size``, ``size``); evaluation resizes the shorter side to ``resize`` first."""

    index: FolderIndex
    size: int = 224
    resize: int = 256
    tag: str = ""

    @property
    def source(self) -> str:
        return f"{self.index.root}{self.tag}"

    @property
    def num_classes(self) -> int:
        return len(self.index.classes)

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.index.classes)

    def __len__(self) -> int:
        return len(self.index.files)

    @property
    def labels(self) -> torch.Tensor:
        return torch.tensor(self.index.labels, dtype=torch.int64)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (3, self.size, self.size)

    def subset(self, index: torch.Tensor, *, tag: str) -> FolderSplit:
        keep = index.tolist()
        sub = FolderIndex(self.index.root, self.index.classes, [self.index.files[i] for i in keep],
                          [self.index.labels[i] for i in keep])
        return FolderSplit(sub, size=self.size, resize=self.resize, tag=f"{self.tag} [{tag}]")

    def loader(self, *, batch_size: int, mean: Sequence[float], std: Sequence[float], shuffle: bool = False,
               augment_spec: AugmentSpec | None = None, drop_last: bool = False, seed: int = 0, rank: int = 0,
               world_size: int = 1, workers: int = 0) -> FolderLoader:
        """Training preprocessing (random-resized crop and flip) wherever ``augment_spec`` is active."""
        train = augment_spec is not None and augment_spec.active
        dataset = ImageFolderDataset(self.index, train=train, mean=mean, std=std, size=self.size,
                                     resize=self.resize, seed=seed)
        return FolderLoader(dataset, batch_size=batch_size, shuffle=shuffle, seed=seed, rank=rank,
                            world_size=world_size, num_workers=workers, drop_last=drop_last)


class FolderLoader:
    """Batches (x (B, 3, size, size), y (B,)) of an :class:`ImageFolderDataset`, sharded over ranks by a
    ``DistributedSampler``; ``set_epoch`` reshuffles and redraws the augmentation."""

    def __init__(self, dataset: ImageFolderDataset, *, batch_size: int, shuffle: bool, seed: int = 0, rank: int = 0,
                 world_size: int = 1, num_workers: int = 0, drop_last: bool = False) -> None:
        self.dataset = dataset
        self.sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed,
                                          drop_last=drop_last)
        self.loader = DataLoader(dataset, batch_size=batch_size, sampler=self.sampler, num_workers=num_workers,
                                 drop_last=drop_last)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)
        self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):  # noqa: ANN204
        return iter(self.loader)
