"""Model registry: architectures by name, built with keyword-only arguments and carrying ``ModelMeta``."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from sigmab.errors import ArchitectureError, ConfigError
from sigmab.models.meta import ModelMeta

ModelBuilder = Callable[..., nn.Module]


@dataclass(frozen=True)
class LayoutReading:
    """What a family's layout reader found in a checkpoint without sigmab metadata: the builder keywords it
    implies (``arch_kwargs``), the state_dict renamed into the family's parameter names, and metadata fields
    the layout fixes (e.g. the input ``mean``/``std`` its publisher trained with)."""

    arch_kwargs: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any]


LayoutReader = Callable[[dict[str, torch.Tensor]], LayoutReading]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: ModelBuilder
    default_meta: ModelMeta
    layout: LayoutReader | None = None


_MODELS: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    *,
    num_classes: int,
    in_channels: int,
    input_size: tuple[int, ...],
    mean: tuple[float, ...],
    std: tuple[float, ...],
    layout: LayoutReader | None = None,
) -> Callable[[ModelBuilder], ModelBuilder]:
    """Register ``builder(*, num_classes, in_channels, **arch_kwargs)`` under ``name`` with default metadata.

    ``layout`` reads the published checkpoint layouts of the family (files without sigmab metadata)."""

    def decorator(builder: ModelBuilder) -> ModelBuilder:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        meta = ModelMeta(name, num_classes, in_channels, input_size, mean, std)
        _MODELS[name] = ModelEntry(name, builder, meta, layout)
        return builder

    return decorator


def list_models() -> list[str]:
    return sorted(_MODELS)


def get_entry(name: str) -> ModelEntry:
    """The registered architecture ``name``, or a model of another zoo named ``ZOO:NAME`` (:mod:`sigmab.models.zoo`)."""
    if name in _MODELS:
        return _MODELS[name]
    if ":" in name:
        from sigmab.models.zoo import zoo_entry

        builder, meta = zoo_entry(name)
        return ModelEntry(name, builder, meta)
    raise ConfigError(f"unknown architecture {name!r}; known: {', '.join(list_models())}, or torchvision:NAME, "
                      "timm:NAME")


def default_meta(name: str) -> ModelMeta:
    return get_entry(name).default_meta


def build_model(name: str, *, meta: ModelMeta | None = None, **overrides: Any) -> nn.Module:
    """Build architecture ``name``; the returned module has a ``meta`` attribute.

    ``overrides`` may set any ``ModelMeta`` field (``num_classes``, ``mean``...); any other
    key is an architecture keyword argument (e.g. ``widths``) and is recorded in ``meta.arch_kwargs``.
    """
    entry = get_entry(name)
    base = meta if meta is not None else entry.default_meta
    meta_fields = set(ModelMeta.__dataclass_fields__) - {"arch", "arch_kwargs"}
    meta_updates = {k: v for k, v in overrides.items() if k in meta_fields}
    arch_kwargs = _canonical({**base.arch_kwargs, **{k: v for k, v in overrides.items() if k not in meta_fields}})
    resolved = base.with_updates(arch=name, arch_kwargs=arch_kwargs, **meta_updates)
    try:
        model = entry.builder(num_classes=resolved.num_classes, in_channels=resolved.in_channels, **arch_kwargs)
    except (TypeError, ValueError, RuntimeError) as exc:  # e.g. a negative or fractional width
        raise ArchitectureError(f"bad arguments for architecture {name!r} ({arch_kwargs}): {exc}") from None
    model.meta = resolved
    return model


def _canonical(arch_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The JSON form of ``arch_kwargs`` (tuples become lists), so metadata survives a save/load unchanged."""
    try:
        return json.loads(json.dumps(arch_kwargs))
    except TypeError as exc:
        raise ConfigError(f"architecture arguments must be plain JSON values: {exc}") from None


def build_from_meta(meta: ModelMeta) -> nn.Module:
    return build_model(meta.arch, meta=meta)
