"""Point-set data: splits held in memory, seeded batches with the standard point-cloud augmentation,
ModelNet40 from its HDF5 release, and Fashion-MNIST as 2-D point sets.

Point sets are float32 (N, D, P), channels first: x, y, z in channels 0-2, then D-3 features.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sigmab.data.arrays import ImageArrays
from sigmab.data.loader import SeededLoader
from sigmab.data.transforms import AugmentSpec
from sigmab.errors import DataError


@dataclass(frozen=True)
class PointAugment:
    """Per sample: scale xyz by U(scale), shift by U(-shift, shift) per axis, add N(0, jitter) noise
    clipped to +-jitter_clip, and shuffle the point order (PointNet++'s training augmentation).
    ``planar`` leaves z untouched (2-D sets stay in their plane)."""

    scale: tuple[float, float] = (0.8, 1.25)
    shift: float = 0.1
    jitter: float = 0.01
    jitter_clip: float = 0.05
    shuffle: bool = True
    planar: bool = False

    def __call__(self, points: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(B, D, P) -> (B, D, P); features (channels 3+) are moved with their points, never changed."""
        b, _, p = points.shape
        axes = 2 if self.planar else 3
        lo, hi = self.scale
        scale = lo + (hi - lo) * torch.rand(b, 1, 1, generator=generator)
        shift = (torch.rand(b, axes, 1, generator=generator) * 2 - 1) * self.shift
        noise = (torch.randn(b, axes, p, generator=generator) * self.jitter).clamp_(-self.jitter_clip,
                                                                                     self.jitter_clip)
        out = points.clone()
        out[:, :axes] = points[:, :axes] * scale + shift + noise
        if self.shuffle:
            order = torch.rand(b, p, generator=generator).argsort(dim=1)
            out = out.gather(2, order[:, None, :].expand_as(out))
        return out


@dataclass(frozen=True)
class PointArrays:
    """A labelled set of point sets (:class:`~sigmab.data.source.DataSplit`): ``points`` float32 (N, D, P)."""

    points: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    class_names: tuple[str, ...]
    source: str
    augmentation: PointAugment = PointAugment()

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.points.shape[1:])

    def subset(self, index: torch.Tensor, *, tag: str) -> PointArrays:
        return PointArrays(self.points[index], self.labels[index], self.num_classes, self.class_names,
                           f"{self.source} [{tag}]", self.augmentation)

    def loader(self, *, batch_size: int, mean: Sequence[float], std: Sequence[float], shuffle: bool = False,
               augment_spec: AugmentSpec | None = None, drop_last: bool = False, seed: int = 0, rank: int = 0,
               world_size: int = 1, workers: int = 0) -> PointLoader:
        augment = self.augmentation if augment_spec is not None and augment_spec.active else None
        return PointLoader(self, batch_size=batch_size, mean=mean, std=std, shuffle=shuffle, augment=augment,
                           drop_last=drop_last, seed=seed, rank=rank, world_size=world_size)


class PointLoader(SeededLoader):
    """Seeded batches ``(points float32 (B, D, P), labels (B,))``; epoch ``e``'s order and augmentation
    depend only on (seed, e), as :class:`~sigmab.data.loader.ArrayLoader`'s do."""

    def __init__(self, data: PointArrays, *, batch_size: int, mean: Sequence[float], std: Sequence[float],
                 shuffle: bool = False, augment: PointAugment | None = None, drop_last: bool = False, seed: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        super().__init__(len(data), batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed, rank=rank,
                         world_size=world_size)
        d = data.points.shape[1]
        if len(mean) != d or len(std) != d:
            raise ValueError(f"point sets have {d} channels, normalisation gives {len(mean)} means and {len(std)} stds")
        self.data, self.augment = data, augment
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1)

    def batch(self, index: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        points = self.data.points[index]
        if self.augment is not None:
            points = self.augment(points, generator)
        return (points - self.mean) / self.std, self.data.labels[index]


def make_point_arrays(points: np.ndarray, labels: np.ndarray, *, num_classes: int, source: str,
                      class_names: Sequence[str] | None = None, augmentation: PointAugment = PointAugment()
                      ) -> PointArrays:
    """Validate (N, P, D) float points (points last, as files store them) and labels; DataError naming ``source``."""
    points, labels = np.asarray(points), np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if points.ndim != 3 or points.shape[2] < 3:
        raise DataError(f"{source}: points have shape {points.shape}, expected (N, P, D >= 3)")
    if not np.issubdtype(points.dtype, np.floating):
        raise DataError(f"{source}: points have dtype {points.dtype}, expected floats")
    if labels.ndim != 1 or labels.shape[0] != points.shape[0]:
        raise DataError(f"{source}: {points.shape[0]} point sets but labels of shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{source}: labels have dtype {labels.dtype}, expected integers")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"{source}: labels out of range [0, {num_classes}): found {labels.min()}..{labels.max()}")
    if not np.isfinite(points).all():
        raise DataError(f"{source}: points hold NaN or infinite values")
    names = tuple(class_names) if class_names is not None else tuple(str(i) for i in range(num_classes))
    tensor = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32)).transpose(1, 2).contiguous()
    return PointArrays(tensor, torch.from_numpy(labels.astype(np.int64)), num_classes, names, source, augmentation)


def load_modelnet40(root: str | Path, split: str, *, num_points: int = 1024) -> PointArrays:
    """ModelNet40 from its standard HDF5 release (``modelnet40_ply_hdf5_2048``): ``{train,test}_files.txt``
    list ``.h5`` files holding ``data`` float32 (N, 2048, 3) and ``label`` (N, 1); class names come from
    ``shape_names.txt`` where present. Keeps the first ``num_points`` points of each set (the usual
    protocol; the release's points are already in random order)."""
    try:
        import h5py
    except ImportError:
        raise DataError("reading ModelNet40 needs h5py: pip install 'sigmab[points]'") from None
    root = Path(root)
    listing = root / f"{'train' if split == 'train' else 'test'}_files.txt"
    if not listing.is_file():
        raise DataError(f"{listing}: missing (expected the modelnet40_ply_hdf5_2048 folder as --data-root)")
    # The release's lists name files as data/modelnet40_ply_hdf5_2048/<file>: look them up beside the list.
    files = [root / Path(line.strip()).name for line in listing.read_text().splitlines() if line.strip()]
    if not files:
        raise DataError(f"{listing}: lists no files")
    points, labels = [], []
    for path in files:
        if not path.is_file():
            raise DataError(f"{path}: missing (listed in {listing.name})")
        try:
            with h5py.File(path, "r") as f:
                if "data" not in f or "label" not in f:
                    raise DataError(f"{path}: needs datasets 'data' and 'label', found {sorted(f.keys())}")
                points.append(np.asarray(f["data"]))
                labels.append(np.asarray(f["label"]))
        except OSError as exc:
            raise DataError(f"{path}: not a readable HDF5 file ({exc})") from None
    names_file = root / "shape_names.txt"
    names = [n.strip() for n in names_file.read_text().splitlines() if n.strip()] if names_file.is_file() else None
    if names is not None and len(names) != 40:
        raise DataError(f"{names_file}: {len(names)} class names, expected 40")
    data = np.concatenate(points)
    if data.ndim != 3 or data.shape[2] != 3:
        raise DataError(f"{listing}: point sets have shape {data.shape[1:]}, expected (points, 3)")
    if data.shape[1] < num_points:
        raise DataError(f"{listing}: sets hold {data.shape[1]} points, fewer than the {num_points} asked for")
    return make_point_arrays(data[:, :num_points], np.concatenate(labels), num_classes=40, source=str(listing),
                             class_names=names)


def image_point_sets(images: ImageArrays, *, num_points: int = 256, threshold: int = 32, seed: int = 0
                     ) -> PointArrays:
    """Grey images (N, 1, H, W) -> 2-D point sets (N, 4, num_points), following PointNet++'s MNIST protocol.

    Points are the pixels brighter than ``threshold`` (of 255), drawn without replacement in a random
    order seeded by (``seed``, image index), or all of them repeated cyclically when an image has fewer.
    Channels: x = (col - (W-1)/2) / (W/2) and y = ((H-1)/2 - row) / (H/2), both in [-1, 1]; z = 0;
    intensity / 255. The augmentation is planar (z stays 0).
    """
    if images.images.shape[1] != 1:
        raise DataError(f"{images.source}: point sets are made from 1-channel images, got {images.images.shape[1]}")
    n, _, h, w = images.images.shape
    flat = images.images.reshape(n, h * w).float()
    bright = flat > threshold
    counts = bright.sum(1)
    if bool((counts == 0).any()):
        first = int((counts == 0).nonzero()[0])
        raise DataError(f"{images.source}: image {first} has no pixel above {threshold}")
    g = torch.Generator().manual_seed(seed)
    keys = torch.where(bright, torch.rand(n, h * w, generator=g), torch.full((n, h * w), 2.0))
    order = keys.argsort(dim=1)  # bright pixels first, in a random order
    slots = torch.arange(num_points)[None, :] % counts[:, None]
    pixel = order.gather(1, slots)  # (N, P)
    rows, cols = pixel // w, pixel % w
    x = (cols.float() - (w - 1) / 2) / (w / 2)
    y = ((h - 1) / 2 - rows.float()) / (h / 2)
    points = torch.stack([x, y, torch.zeros_like(x), flat.gather(1, pixel) / 255.0], dim=1)
    return PointArrays(points, images.labels.clone(), images.num_classes, images.class_names,
                       f"{images.source} [points {num_points}, threshold {threshold}]", PointAugment(planar=True))
