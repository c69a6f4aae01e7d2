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

from sigmab.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True)
class FolderIndex:
    """Every image file of one split, with its class id (classes sorted by folder name)."""

    root: Path
    classes: list[str]
    files: list[Path]
    labels: list[int]


def index_image_folder(root: str | os.PathLike[str], split: str) -> FolderIndex:
    """Scan ``root/split/<class>/``; a missing split, no class folders or an empty class is a DataError."""
    folder = Path(root) / split
    if not folder.is_dir():
        raise DataError(f"{folder}: no such split folder (expected <root>/{split}/<class>/<image>)")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{folder}: no class folders")
    files, labels = [], []
    for label, name in enumerate(classes):
        images = sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not images:
            raise DataError(f"{folder / name}: class folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        files += images
        labels += [label] * len(images)
    return FolderIndex(folder, classes, files, labels)


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
