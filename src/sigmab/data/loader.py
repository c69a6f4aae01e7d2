"""A seeded in-memory batch loader.

Epoch ``e`` draws its shuffle and augmentation from a generator seeded by ``(seed, e)``, so a
run resumed at epoch ``e`` sees exactly the batches an uninterrupted run would. ``rank`` and
``world_size`` shard each epoch's permutation for data-parallel training.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import torch

from sigmab.data.transforms import AugmentSpec, Normalize, augment

if TYPE_CHECKING:
    from sigmab.data.arrays import ImageArrays


class ArrayLoader:
    """Yields ``(inputs float32 (B, C, H, W), labels int64 (B,))`` batches from an :class:`ImageArrays`."""

    def __init__(
        self,
        data: ImageArrays,
        *,
        batch_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        shuffle: bool = False,
        augment_spec: AugmentSpec | None = None,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.data = data
        self.batch_size = batch_size
        self.normalize = Normalize(mean, std)
        self.shuffle = shuffle
        self.augment_spec = augment_spec or AugmentSpec()
        self.drop_last = drop_last
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self, generator: torch.Generator) -> torch.Tensor:
        n = len(self.data)
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        if self.world_size > 1:
            # Every rank gets the same number of samples (the last few wrap around), as DistributedSampler does.
            per_rank = -(-n // self.world_size)
            order = torch.cat([order, order[: per_rank * self.world_size - n]])
            order = order[self.rank :: self.world_size]
        return order

    def __len__(self) -> int:
        n = -(-len(self.data) // self.world_size)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = self._indices(generator)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start : start + self.batch_size]
            images = self.data.images[index]
            if self.augment_spec.active:
                images = augment(images, self.augment_spec, generator)
            yield self.normalize(images), self.data.labels[index]
