"""Architectures from other model zoos, named ``ZOO:NAME`` (``torchvision:mobilenet_v3_small``, ``timm:resnet18d``).

Such a model is built with random weights (never downloaded) and gets its weights from ``--checkpoint``; its metadata
records the full name, so a run folder rebuilds it as it rebuilds a sigmab architecture. The channel structure comes
from the model's ``torch.fx`` trace (:mod:`sigmab.graph.traced`). The zoos are optional: ``pip install
'sigmab[zoo]'``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from sigmab.errors import ConfigError
from sigmab.models.meta import ModelMeta

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The detection ops torchvision declares at import; classification models never call them.
_TORCHVISION_OPS = ("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
                    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
_declared: list[torch.library.Library] = []


def _import_zoo(module: str) -> Any:
    from sigmab.utils.extras import import_extra

    return import_extra(module, extra="zoo", purpose=f"a {module} architecture")


def import_torchvision() -> Any:
    """``torchvision``, also where its compiled ops do not load: PyPI's torchvision wheel is a CUDA build, and on a
    CPU-only torch its import stops at ``operator torchvision::nms does not exist``. Then the op schemas it needs
    at import are declared (without kernels) and the import retried: the model definitions are plain Python, and
    calling a detection op stays an error."""
    try:
        return _import_zoo("torchvision")
    except RuntimeError as exc:
        if "torchvision::" not in str(exc) or _declared:
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]  # the half-imported package
    library = torch.library.Library("torchvision", "DEF")  # noqa: TOR901 - kept alive in _declared
    for schema in _TORCHVISION_OPS:
        library.define(schema)
    _declared.append(library)
    return importlib.import_module("torchvision")


def _torchvision_builder(name: str) -> Callable[..., nn.Module]:
    models = import_torchvision().models
    if name not in models.list_models(module=models):
        raise ConfigError(f"torchvision has no classification model {name!r}")

    def build(*, num_classes: int, in_channels: int, **kwargs: Any) -> nn.Module:
        _three_channels(f"torchvision:{name}", in_channels)
        return models.get_model(name, weights=None, num_classes=num_classes, **kwargs)

    return build


def _timm_builder(name: str) -> Callable[..., nn.Module]:
    import_torchvision()  # timm imports torchvision's transforms
    timm = _import_zoo("timm")
    if name not in timm.list_models():
        raise ConfigError(f"timm has no model {name!r}")

    def build(*, num_classes: int, in_channels: int, **kwargs: Any) -> nn.Module:
        return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_channels, **kwargs)

    return build


def _three_channels(name: str, in_channels: int) -> None:
    if in_channels != 3:
        raise ConfigError(f"{name} takes 3 input channels, not {in_channels}")


ZOOS: dict[str, Callable[[str], Callable[..., nn.Module]]] = {"torchvision": _torchvision_builder,
                                                              "timm": _timm_builder}


def zoo_entry(name: str) -> tuple[Callable[..., nn.Module], ModelMeta]:
    """The builder and default metadata (ImageNet: 1000 classes, 224x224, ImageNet normalisation) of ``ZOO:NAME``."""
    zoo, _, model = name.partition(":")
    if zoo not in ZOOS or not model:
        raise ConfigError(f"unknown architecture {name!r}: a model of another zoo is named "
                          f"{' or '.join(f'{z}:NAME' for z in ZOOS)}")
    return ZOOS[zoo](model), ModelMeta(name, 1000, 3, (224, 224), IMAGENET_MEAN, IMAGENET_STD)
