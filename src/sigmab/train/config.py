"""Options of dense training (``sigmab train``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sigmab.errors import ConfigError


@dataclass
class TrainConfig:
    arch: str = "small_cnn"
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    dataset: str = "digits"
    data_root: str | None = None
    val_fraction: float = 0.0
    epochs: int = 10
    batch_size: int = 128
    eval_batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    crop_padding: int | None = None
    hflip: bool | None = None
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.batch_size >= 1 and self.eval_batch_size >= 1, "batch sizes must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (0.0 <= self.val_fraction < 1.0, "val_fraction must be in [0, 1)"),
            (0.0 <= self.warmup_epochs <= self.epochs, "warmup_epochs must be in [0, epochs]"),
            (0.0 <= self.label_smoothing < 1.0, "label_smoothing must be in [0, 1)"),
            (self.crop_padding is None or self.crop_padding >= 0, "crop_padding must be >= 0"),
            (self.threads is None or self.threads >= 1, "threads must be >= 1"),
            (isinstance(self.arch_kwargs, dict), "arch_kwargs must be a mapping"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


TRAIN_HELP = {
    "arch": "architecture name (see `sigmab models`)",
    "arch_kwargs": "extra builder arguments as YAML, e.g. '{widths: [8, 16, 32]}'",
    "dataset": "dataset name: cifar10, cifar100, fashion_mnist, digits",
    "data_root": "dataset location: an .npz file or a folder",
    "val_fraction": "hold out this fraction of the training set and report on it instead of test",
    "epochs": "number of epochs",
    "batch_size": "training batch size",
    "eval_batch_size": "evaluation batch size",
    "lr": "peak learning rate (SGD, cosine decay)",
    "momentum": "SGD momentum",
    "nesterov": "Nesterov momentum",
    "weight_decay": "L2 weight decay",
    "warmup_epochs": "linear warm-up length in epochs",
    "label_smoothing": "label smoothing of the cross-entropy",
    "crop_padding": "random-crop padding (default: the dataset's usual value)",
    "hflip": "random horizontal flips (default: the dataset's usual value)",
    "seed": "seed of initialisation, shuffling and augmentation",
    "threads": "torch CPU threads (default: torch's choice)",
}
