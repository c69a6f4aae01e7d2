"""Options of dense training (``sigmab train``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sigmab.errors import check_settings
from sigmab.train.options import LOOP_HELP, LoopOptions


@dataclass
class TrainConfig(LoopOptions):
    arch: str = "small_cnn"
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    dataset: str = "digits"
    epochs: int = 10
    nesterov: bool = False
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = [
            (self.epochs >= 1, "epochs must be >= 1"),
            (0.0 <= self.warmup_epochs <= self.epochs, "warmup_epochs must be in [0, epochs]"),
            (0.0 <= self.label_smoothing < 1.0, "label_smoothing must be in [0, 1)"),
            (isinstance(self.arch_kwargs, dict), "arch_kwargs must be a mapping"),
        ]
        check_settings(checks)


TRAIN_HELP = {
    **LOOP_HELP,
    "arch": "architecture name (see `sigmab models`)",
    "arch_kwargs": "extra builder arguments as YAML, e.g. '{widths: [8, 16, 32]}'",
    "dataset": "dataset name: cifar10, cifar100, fashion_mnist, digits, imagefolder, imagefolder-<size>",
    "epochs": "number of epochs",
    "nesterov": "Nesterov momentum",
    "warmup_epochs": "linear warm-up length in epochs",
    "label_smoothing": "label smoothing of the cross-entropy",
}
