"""Batched, seeded augmentation and normalisation on uint8 image tensors.

Working on whole batches (not per-sample PIL calls) keeps data loading negligible on 2 cores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentSpec:
    """Training augmentation. Images: random crop after ``crop_padding`` zero pixels per side, optional
    h-flip. Point sets: ``points`` turns on :class:`~sigmab.data.points.PointAugment`."""

    crop_padding: int = 0
    hflip: bool = False
    points: bool = False

    @property
    def active(self) -> bool:
        return self.crop_padding > 0 or self.hflip or self.points


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H, W): pad by ``padding`` zeros, then crop each image at a random offset.
    The offsets come from the CPU ``generator`` on any device, so a device changes no crop."""
    n, _, h, w = images.shape
    device = images.device
    padded = F.pad(images, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(device)
    rows = (dy[:, None] + torch.arange(h, device=device))[:, :, None]  # (N, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=device))[:, None, :]  # (N, 1, W)
    batch = torch.arange(n, device=device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def random_hflip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H, W): each image mirrored left-right with probability 1/2."""
    flip = (torch.rand(images.shape[0], generator=generator) < 0.5).to(images.device)
    return torch.where(flip[:, None, None, None], images.flip(3), images)


def augment(images: torch.Tensor, spec: AugmentSpec, generator: torch.Generator) -> torch.Tensor:
    if spec.crop_padding > 0:
        images = random_crop(images, spec.crop_padding, generator)
    if spec.hflip:
        images = random_hflip(images, generator)
    return images


class Normalize:
    """uint8 (N, C, H, W) -> float32 (N, C, H, W): scale to [0, 1], subtract ``mean``, divide by ``std``."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], *, device: torch.device | str | None = None
                 ) -> None:
        self.scale = (1.0 / (255.0 * torch.tensor(std, dtype=torch.float32))).view(1, -1, 1, 1).to(device)
        self.shift = (torch.tensor(mean, dtype=torch.float32) / torch.tensor(std, dtype=torch.float32)).view(
            1, -1, 1, 1
        ).to(device)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] != self.scale.shape[1]:
            raise ValueError(f"images have {images.shape[1]} channels, normalisation expects {self.scale.shape[1]}")
        return images.float() * self.scale - self.shift
