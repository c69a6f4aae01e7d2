"""What every consumer of data (training, fine-tuning, calibration, evaluation) may ask of a split.

Three kinds implement it: :class:`~sigmab.data.arrays.ImageArrays` (images held in memory),
:class:`~sigmab.data.image_folder.FolderSplit` (image files decoded on demand) and
:class:`~sigmab.data.points.PointArrays` (point sets), so no command needs to know which one it reads.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import torch

from sigmab.data.transforms import AugmentSpec


class BatchLoader(Protocol):
    """Yields ``(inputs float32 (B, C, H, W), labels int64 (B,))``; ``set_epoch`` reseeds shuffle and augmentation."""

    def set_epoch(self, epoch: int) -> None: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


class DataSplit(Protocol):
    """A labelled split: ``labels`` int64 (N,); each input, once preprocessed, has ``input_shape``
    ((C, H, W) for images, (D, P) for point sets)."""

    num_classes: int
    class_names: tuple[str, ...]
    source: str

    def __len__(self) -> int: ...

    @property
    def labels(self) -> torch.Tensor: ...

    @property
    def input_shape(self) -> tuple[int, ...]: ...

    def subset(self, index: torch.Tensor, *, tag: str) -> DataSplit: ...

    def loader(self, *, batch_size: int, mean: Sequence[float], std: Sequence[float], shuffle: bool = False,
               augment_spec: AugmentSpec | None = None, drop_last: bool = False, seed: int = 0, rank: int = 0,
               world_size: int = 1, workers: int = 0) -> BatchLoader: ...


def sample_images(split: DataSplit, size: int, *, seed: int, mean: Sequence[float], std: Sequence[float],
                  batch_size: int = 256) -> torch.Tensor:
    """A seeded random subset of ``size`` images (in split order), preprocessed for evaluation: (size, C, H, W)."""
    if size > len(split):
        raise ValueError(f"asked for {size} images of a split that holds {len(split)} ({split.source})")
    index = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:size].sort().values
    loader = split.subset(index, tag="sample").loader(batch_size=batch_size, mean=mean, std=std)
    return torch.cat([images for images, _ in loader])
