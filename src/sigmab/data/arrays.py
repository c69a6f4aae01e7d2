"""In-memory image sets: uint8 images (N, C, H, W) with int64 labels, validated on load."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from sigmab.data.loader import ArrayLoader
from sigmab.data.transforms import AugmentSpec
from sigmab.errors import DataError

if TYPE_CHECKING:
    from sigmab.data.source import DataSplit


@dataclass(frozen=True)
class ImageArrays:
    """A labelled image set held in memory.

    ``images``: uint8 (N, C, H, W); ``labels``: int64 (N,) in [0, num_classes).
    ``source`` names the file(s) it came from, for error messages.
    """

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    class_names: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def subset(self, index: torch.Tensor, *, tag: str) -> ImageArrays:
        return ImageArrays(self.images[index], self.labels[index], self.num_classes, self.class_names,
                           f"{self.source} [{tag}]")

    def loader(self, *, batch_size: int, mean: Sequence[float], std: Sequence[float], shuffle: bool = False,
               augment_spec: AugmentSpec | None = None, drop_last: bool = False, seed: int = 0, rank: int = 0,
               world_size: int = 1, workers: int = 0, device: torch.device | str | None = None) -> ArrayLoader:
        """Batches of this set; ``workers`` is ignored (batches are sliced from memory); ``device``: keep the set
        there and cut the batches there (:class:`ArrayLoader`)."""
        return ArrayLoader(self, batch_size=batch_size, mean=mean, std=std, shuffle=shuffle,
                           augment_spec=augment_spec, drop_last=drop_last, seed=seed, rank=rank,
                           world_size=world_size, device=device)


def make_image_arrays(
    images: np.ndarray,
    labels: np.ndarray | Sequence[int],
    *,
    num_classes: int,
    source: str,
    layout: str,
    class_names: Sequence[str] | None = None,
) -> ImageArrays:
    """Validate raw arrays and convert them to an :class:`ImageArrays`.

    ``layout`` is ``"NHWC"``, ``"NCHW"`` or ``"NHW"`` (single channel); images must be uint8.
    Raises ``DataError`` naming ``source`` on a wrong shape, dtype, length or label range.
    """
    images = np.asarray(images)
    labels = np.asarray(labels).reshape(-1) if np.ndim(labels) == 2 and np.shape(labels)[1] == 1 else np.asarray(labels)
    expected_dims = {"NHWC": 4, "NCHW": 4, "NHW": 3}[layout]
    if images.ndim != expected_dims:
        raise DataError(f"{source}: images have shape {images.shape}, expected {expected_dims} dims ({layout})")
    if images.dtype != np.uint8:
        raise DataError(f"{source}: images have dtype {images.dtype}, expected uint8")
    if labels.ndim != 1:
        raise DataError(f"{source}: labels have shape {labels.shape}, expected (N,)")
    if labels.shape[0] != images.shape[0]:
        raise DataError(f"{source}: {images.shape[0]} images but {labels.shape[0]} labels")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{source}: labels have dtype {labels.dtype}, expected integers")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(
            f"{source}: labels out of range [0, {num_classes}): found min {labels.min()}, max {labels.max()}"
        )
    if layout == "NHWC":
        images = images.transpose(0, 3, 1, 2)
    elif layout == "NHW":
        images = images[:, None]
    names = tuple(class_names) if class_names is not None else tuple(str(i) for i in range(num_classes))
    if len(names) != num_classes:
        raise DataError(f"{source}: {len(names)} class names for {num_classes} classes")
    return ImageArrays(
        torch.from_numpy(np.require(images, requirements=["C", "W"])),
        torch.from_numpy(labels.astype(np.int64)),
        num_classes,
        names,
        source,
    )


def split_holdout(data: DataSplit, *, fraction: float, seed: int) -> tuple[DataSplit, DataSplit]:
    """Split off a seeded random ``fraction`` as a held-out set: returns (rest, held_out)."""
    if not 0.0 < fraction < 1.0:
        raise DataError(f"hold-out fraction must be in (0, 1), got {fraction}")
    n_hold = max(1, int(round(len(data) * fraction)))
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    return data.subset(perm[n_hold:].sort().values, tag="train"), data.subset(perm[:n_hold].sort().values, tag="val")
