"""What every command starts from: a dense checkpoint checked against a dataset, and calibration images."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from sigmab.data import ArrayLoader, DatasetInfo, ImageArrays, Normalize, get_dataset_info, load_split
from sigmab.errors import ConfigError
from sigmab.models import load_model


def load_dense_for(checkpoint: str | os.PathLike[str], *, dataset: str, arch: str | None = None
                   ) -> tuple[nn.Module, DatasetInfo]:
    """The dense model of ``checkpoint`` (eval mode) and ``dataset``'s info, after checking that they fit."""
    info = get_dataset_info(dataset)
    model = load_model(checkpoint, arch=arch)
    meta = model.meta
    if meta.num_classes != info.num_classes or meta.in_channels != info.in_channels:
        raise ConfigError(f"{checkpoint} expects {meta.in_channels}-channel inputs and {meta.num_classes} "
                          f"classes; {dataset} has {info.in_channels} and {info.num_classes}")
    return model, info


def calibration_images(dataset: str, data_root: str | None, meta: Any, *, size: int, seed: int) -> torch.Tensor:
    """A seeded random subset of ``size`` training images, normalised as the model expects: (N, C, H, W)."""
    train = load_split(dataset, "train", root=data_root)
    if size > len(train):
        raise ConfigError(f"calib_size {size} exceeds the {len(train)} training images of {dataset}")
    index = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:size]
    return Normalize(meta.mean, meta.std)(train.images[index.sort().values])


def folder_eval_data(source: dict[str, Any], meta: Any, *, what: str, dataset: str | None, data_root: str | None,
                     split: str, val_fraction: float, seed: int, batch_size: int
                     ) -> tuple[str, ImageArrays, ArrayLoader]:
    """(dataset, split data, loader) to evaluate a ``what`` folder whose model came from ``source``;
    ``dataset``/``data_root`` default to the recorded ones."""
    dataset = dataset or source.get("dataset")
    if dataset is None:
        raise ConfigError(f"pass --dataset (the {what} folder does not record one)")
    data_root = data_root if data_root is not None else source.get("data_root")
    data = load_split(dataset, split, root=data_root, val_fraction=val_fraction, seed=seed)
    return dataset, data, ArrayLoader(data, batch_size=batch_size, mean=meta.mean, std=meta.std)


def load_model_or_folder(run: str | os.PathLike[str] | None, checkpoint: str | os.PathLike[str] | None = None, *,
                         arch: str | None = None) -> tuple[str, nn.Module, Any]:
    """(kind, model in eval mode, dense meta) of a tree folder, a pruned-model folder or a dense checkpoint;
    kind is ``tree``, ``pruned`` or ``dense``. Exactly one of ``run`` and ``checkpoint`` is given."""
    from sigmab.prune.spec import is_pruned_folder, load_pruned
    from sigmab.tree.spec import load_tree

    if (run is None) == (checkpoint is None):
        raise ConfigError("give either a tree or pruned-model folder, or a dense checkpoint")
    if checkpoint is not None:
        model = load_model(checkpoint, arch=arch)
        return "dense", model.eval(), model.meta
    if is_pruned_folder(run):
        net, spec = load_pruned(run)
        return "pruned", net.eval(), spec.dense_meta
    tree, spec = load_tree(run)
    return "tree", tree, spec.dense_meta
