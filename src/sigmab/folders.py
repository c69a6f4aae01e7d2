"""One opener for every model a command can be pointed at: a run folder of any kind, or a dense checkpoint.

The kind comes from the folder's manifest (:mod:`sigmab.utils.manifest`); each kind has one loader
here, so a new kind of folder is one entry in ``_LOADERS``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from sigmab.errors import ConfigError
from sigmab.models import ModelMeta, load_model
from sigmab.models.checkpoint import file_in_folder, read_folder_spec, recorded_source
from sigmab.nested.training import load_nested
from sigmab.prune.spec import load_pruned
from sigmab.tree.spec import load_tree
from sigmab.utils.manifest import folder_kind


@dataclass(frozen=True)
class OpenedModel:
    """``kind`` (``tree``, ``pruned``, ``nested``, ``dense``), the model in eval mode, the dense model's metadata,
    the folder's spec (``None`` for a dense model) and its record of where the model came from (``dataset``,
    ``data_root``, ``checkpoint``...; paths resolved against the folder; empty when nothing is recorded)."""

    kind: str
    model: nn.Module
    meta: ModelMeta
    spec: Any = None
    source: dict[str, Any] = field(default_factory=dict)


def _tree(folder: Path) -> OpenedModel:
    tree, spec = load_tree(folder)
    return OpenedModel("tree", tree, spec.dense_meta, spec, recorded_source(folder, spec.convert_config.get("source")))


def _pruned(folder: Path) -> OpenedModel:
    net, spec = load_pruned(folder)
    return OpenedModel("pruned", net.eval(), spec.dense_meta, spec,
                       recorded_source(folder, spec.prune_config.get("source")))


def _nested(folder: Path) -> OpenedModel:
    net, spec = load_nested(folder)
    return OpenedModel("nested", net.eval(), net.meta, spec,
                       recorded_source(folder, dict(spec.get("config") or {}).get("source")))


def _dense(folder: Path) -> OpenedModel:
    model = load_model(file_in_folder(folder, "model.safetensors"))
    summary = read_folder_spec(folder / "summary.json", what="training run")
    return OpenedModel("dense", model.eval(), model.meta, None, {"dataset": summary.get("dataset")})


_LOADERS: dict[str, Callable[[Path], OpenedModel]] = {"tree": _tree, "pruned": _pruned, "nested": _nested,
                                                      "dense": _dense}


def open_folder(folder: str | os.PathLike[str]) -> OpenedModel:
    """The model of run folder ``folder``, loaded the way its kind is (fine-tuned weights when present)."""
    folder = Path(folder)
    return _LOADERS[folder_kind(folder)](folder)


def open_model(run: str | os.PathLike[str] | None, checkpoint: str | os.PathLike[str] | None = None, *,
               arch: str | None = None) -> OpenedModel:
    """A run folder (``run``) or a dense checkpoint (``checkpoint``, ``arch`` for files without sigmab
    metadata); exactly one of the two."""
    if (run is None) == (checkpoint is None):
        raise ConfigError("give either a run folder (tree, pruned, nested or dense training) or a dense checkpoint")
    if checkpoint is not None:
        model = load_model(checkpoint, arch=arch)
        return OpenedModel("dense", model.eval(), model.meta)
    return open_folder(run)


def load_model_or_folder(run: str | os.PathLike[str] | None, checkpoint: str | os.PathLike[str] | None = None, *,
                         arch: str | None = None) -> tuple[str, nn.Module, ModelMeta]:
    """(kind, model in eval mode, dense meta): :func:`open_model` as a tuple."""
    opened = open_model(run, checkpoint, arch=arch)
    return opened.kind, opened.model, opened.meta
