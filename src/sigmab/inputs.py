"""What every command starts from: a dense checkpoint checked against a dataset, and calibration images."""

from __future__ import annotations

import os
import sys
from typing import Any

import torch
from torch import nn

from sigmab.data import BatchLoader, DatasetInfo, DataSplit, get_dataset_info, load_split, sample_images
from sigmab.errors import ConfigError
from sigmab.models import load_model


def load_dense_for(checkpoint: str | os.PathLike[str], *, dataset: str, arch: str | None = None
                   ) -> tuple[nn.Module, DatasetInfo]:
    """The dense model of ``checkpoint`` (eval mode) and ``dataset``'s info, after checking that they fit."""
    info = get_dataset_info(dataset)
    model = load_model(checkpoint, arch=arch)
    meta = model.meta
    classes = meta.num_classes if info.num_classes is None else info.num_classes  # folders: checked on reading
    if meta.num_classes != classes or meta.in_channels != info.in_channels:
        raise ConfigError(f"{checkpoint} expects {meta.in_channels}-channel inputs and {meta.num_classes} "
                          f"classes; {dataset} has {info.in_channels} and {info.num_classes}")
    return model, info


def check_classes(meta: Any, split: DataSplit, dataset: str) -> None:
    """A model with ``meta.num_classes`` outputs can be scored on ``split`` (image folders count their classes)."""
    if split.num_classes != meta.num_classes:
        raise ConfigError(f"the model has {meta.num_classes} classes; {dataset} at {split.source} has "
                          f"{split.num_classes}")


def calibration_images(dataset: str, data_root: str | None, meta: Any, *, size: int | None, seed: int,
                       default_size: int | None = None) -> torch.Tensor:
    """A seeded random subset of ``size`` training images, preprocessed as the model expects: (N, C, H, W).
    ``size=None`` takes ``default_size`` images, or the whole training set when it is smaller (with a note);
    an explicit ``size`` larger than the training set is an error."""
    train = load_split(dataset, "train", root=data_root)
    check_classes(meta, train, dataset)
    if size is None:
        if default_size is None:
            raise ConfigError("calibration_images needs a size or a default_size")
        size = min(default_size, len(train))
        if size < default_size:
            print(f"note: calibrating on all {size:,} training images of {dataset} (fewer than the default "
                  f"{default_size:,})", file=sys.stderr)
    if size > len(train):
        raise ConfigError(f"calib_size {size} exceeds the {len(train)} training images of {dataset}")
    return sample_images(train, size, seed=seed, mean=meta.mean, std=meta.std)


def folder_eval_data(source: dict[str, Any], meta: Any, *, what: str, dataset: str | None, data_root: str | None,
                     split: str, val_fraction: float, seed: int, batch_size: int
                     ) -> tuple[str, DataSplit, BatchLoader]:
    """(dataset, split data, loader) to evaluate a ``what`` folder whose model came from ``source``;
    ``dataset``/``data_root`` default to the recorded ones."""
    dataset = dataset or source.get("dataset")
    if dataset is None:
        raise ConfigError(f"pass --dataset (the {what} folder does not record one)")
    data_root = data_root if data_root is not None else source.get("data_root")
    data = load_split(dataset, split, root=data_root, val_fraction=val_fraction, seed=seed)
    check_classes(meta, data, dataset)
    return dataset, data, data.loader(batch_size=batch_size, mean=meta.mean, std=meta.std)
