"""Model zoo: a registry of architectures with keyword-only builders and checkpoint metadata."""

from sigmab.models import (  # noqa: F401  (registers the architectures)
    cifar_resnet,
    imagenet_resnet,
    mobilenet_v2,
    pointnet2,
    small_cnn,
)
from sigmab.models.checkpoint import Checkpoint, check_fits, load_checkpoint, load_model, load_weights, save_model
from sigmab.models.meta import ModelMeta
from sigmab.models.registry import build_from_meta, build_model, default_meta, list_models, register_model

__all__ = [
    "Checkpoint",
    "ModelMeta",
    "build_from_meta",
    "build_model",
    "check_fits",
    "default_meta",
    "list_models",
    "load_checkpoint",
    "load_model",
    "load_weights",
    "register_model",
    "save_model",
]
