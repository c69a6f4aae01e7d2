"""Seeded in-memory batch loaders.

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


class SeededLoader:
    """Batches of one epoch over ``n`` samples: this rank's shard of a (seed, epoch)-seeded order; subclasses
    turn a batch's sample indices into ``(inputs, labels)`` with ``batch``."""

    def __init__(self, n: int, *, batch_size: int, shuffle: bool = False, drop_last: bool = False, seed: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.n, self.batch_size, self.shuffle, self.drop_last = n, batch_size, shuffle, drop_last
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return batch_count(self.n, self.batch_size, self.world_size, self.drop_last)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = epoch_generator(self.seed, self.epoch)
        for index in epoch_batches(self.n, self.batch_size, generator, shuffle=self.shuffle, rank=self.rank,
                                   world_size=self.world_size, drop_last=self.drop_last):
            yield self.batch(index, generator)

    def batch(self, index: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class ArrayLoader(SeededLoader):
    """Yields ``(inputs float32 (B, C, H, W), labels int64 (B,))`` batches from an :class:`ImageArrays`.

    With ``device``, the whole set (uint8) moves there once and batches are cut, augmented and normalised
    there: on a GPU no batch crosses the host link. The random draws still come from the epoch's CPU
    generator, so a device changes no batch."""

    def __init__(self, data: ImageArrays, *, batch_size: int, mean: Sequence[float], std: Sequence[float],
                 shuffle: bool = False, augment_spec: AugmentSpec | None = None, drop_last: bool = False,
                 seed: int = 0, rank: int = 0, world_size: int = 1, device: torch.device | str | None = None) -> None:
        super().__init__(len(data), batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed, rank=rank,
                         world_size=world_size)
        self.device = torch.device(device) if device is not None else data.images.device
        self.images, self.labels = data.images.to(self.device), data.labels.to(self.device)
        self.normalize = Normalize(mean, std, device=self.device)
        self.augment_spec = augment_spec or AugmentSpec()

    def batch(self, index: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        index = index.to(self.device)
        images = self.images[index]
        if self.augment_spec.active:
            images = augment(images, self.augment_spec, generator)
        return self.normalize(images), self.labels[index]


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator of epoch ``epoch``'s shuffle and augmentation: a function of (seed, epoch) only."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def batch_count(n: int, batch_size: int, world_size: int, drop_last: bool) -> int:
    per_rank = -(-n // world_size)
    return per_rank // batch_size if drop_last else -(-per_rank // batch_size)


def epoch_batches(n: int, batch_size: int, generator: torch.Generator, *, shuffle: bool, rank: int = 0,
                  world_size: int = 1, drop_last: bool = False) -> Iterator[torch.Tensor]:
    """Sample indices of this rank's batches of one epoch over ``n`` samples."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    if world_size > 1:
        # Every rank gets the same number of samples (the last few wrap around), as DistributedSampler does.
        per_rank = -(-n // world_size)
        order = torch.cat([order, order[: per_rank * world_size - n]])
        order = order[rank::world_size]
    for start in range(0, batch_count(n, batch_size, world_size, drop_last) * batch_size, batch_size):
        yield order[start : start + batch_size]
