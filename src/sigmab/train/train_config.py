"""Options of dense training (``sigmab train``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sigmab.config import option
from sigmab.errors import check_settings
from sigmab.train.options import LoopOptions


@dataclass
class TrainConfig(LoopOptions):
    arch: str = option("small_cnn", "architecture name (see `sigmab models`)")
    arch_kwargs: dict[str, Any] = option(
        factory=dict, help="extra builder arguments as YAML, e.g. '{widths: [8, 16, 32]}'")
    dataset: str = option(
        "digits",
        "dataset name: cifar10, cifar100, fashion_mnist, digits, imagefolder, imagefolder-<size>")
    epochs: int = option(10, "number of epochs")
    nesterov: bool = option(False, "Nesterov momentum")
    warmup_epochs: float = option(0.0, "linear warm-up length in epochs")
    label_smoothing: float = option(0.0, "label smoothing of the cross-entropy")

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = [
            (self.epochs >= 1, "epochs must be >= 1"),
            (0.0 <= self.warmup_epochs <= self.epochs, "warmup_epochs must be in [0, epochs]"),
            (0.0 <= self.label_smoothing < 1.0, "label_smoothing must be in [0, 1)"),
            (isinstance(self.arch_kwargs, dict), "arch_kwargs must be a mapping"),
        ]
        check_settings(checks)


