"""Metadata kept with every model: what it is and how its inputs must be prepared."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sigmab.errors import CheckpointError

MAX_CLASSES = 100_000


@dataclass(frozen=True)
class ModelMeta:
    """Architecture name, classes and input normalisation, saved beside the weights.

    ``mean`` and ``std`` apply per channel to inputs scaled to [0, 1].
    ``arch_kwargs`` are the extra keyword arguments the builder needs (e.g. ``widths``).
    """

    arch: str
    num_classes: int
    in_channels: int
    input_size: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    arch_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise CheckpointError(
                f"model metadata for {self.arch!r}: mean/std need {self.in_channels} values "
                f"(one per input channel), got {len(self.mean)} and {len(self.std)}"
            )
        if any(s <= 0 for s in self.std):
            raise CheckpointError(f"model metadata for {self.arch!r}: std must be positive, got {self.std}")
        # Bounds far beyond any real model: an edited file must not make sigmab allocate a classifier of 10**12 rows.
        if not 1 <= self.num_classes <= MAX_CLASSES or not 1 <= self.in_channels <= MAX_CLASSES:
            raise CheckpointError(f"model metadata for {self.arch!r}: num_classes and in_channels must be in "
                                  f"1..{MAX_CLASSES:,}, got {self.num_classes} and {self.in_channels}")

    def with_updates(self, **changes: Any) -> ModelMeta:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("input_size", "mean", "std"):
            d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelMeta:
        try:
            return cls(
                arch=str(d["arch"]),
                num_classes=int(d["num_classes"]),
                in_channels=int(d["in_channels"]),
                input_size=tuple(int(v) for v in d["input_size"]),
                mean=tuple(float(v) for v in d["mean"]),
                std=tuple(float(v) for v in d["std"]),
                arch_kwargs=dict(d.get("arch_kwargs") or {}),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"malformed model metadata ({exc!r}): {d!r}") from None


def meta_of(model: Any, example: Any = None) -> ModelMeta:
    """``model.meta`` when sigmab built the model; for any other ``nn.Module``, what the module itself says: its
    type name as ``arch`` (such a model is used in memory; a run folder rebuilds only registered or ``ZOO:NAME``
    architectures), the last linear layer's outputs as classes, the first convolution's inputs as channels,
    ``example``'s (N, C, H, W) spatial size (default 224x224), and mean 0 / std 1: its inputs come normalised."""
    from torch import nn

    meta = getattr(model, "meta", None)
    if isinstance(meta, ModelMeta):
        return meta
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    if not linears or not convs:
        raise CheckpointError(f"{type(model).__name__}: sigmab needs a convolutional model ending in an nn.Linear")
    size = tuple(int(s) for s in example.shape[2:]) if example is not None else (224, 224)
    channels = convs[0].in_channels
    return ModelMeta(type(model).__name__, linears[-1].out_features, channels, size, (0.0,) * channels,
                     (1.0,) * channels)
