"""Options and data set-up shared by every training loop (dense training and tree fine-tuning)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from sigmab.config import option
from sigmab.data import AugmentSpec, BatchLoader, DatasetInfo, DataSplit, load_split
from sigmab.data.arrays import ImageArrays
from sigmab.errors import ConfigError, DataError, check_settings
from sigmab.train.distributed import DEVICES
from sigmab.train.precision import AMP_CHOICES, auto_amp

#: The autocast dtype of the forward pass per resolved ``--amp`` (weights, optimizer and gradients stay float32).
AMP_DTYPES: dict[str, torch.dtype | None] = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class LoopOptions:
    data_root: str | None = option(
        None, "dataset location: an .npz file or a folder (image folders: <root>/train/<class>/*.jpg)")
    val_fraction: float = option(0.0, "hold out this fraction of the training set and report on it instead of test")
    batch_size: int = option(128, "training batch size (per process)")
    eval_batch_size: int = option(256, "evaluation batch size")
    lr: float = option(0.1, "peak learning rate (SGD, cosine decay)")
    momentum: float = option(0.9, "SGD momentum")
    weight_decay: float = option(5e-4, "L2 weight decay")
    crop_padding: int | None = option(None, "random-crop padding (default: the dataset's usual value)")
    hflip: bool | None = option(None, "random horizontal flips (default: the dataset's usual value)")
    seed: int = option(0, "seed of initialisation, shuffling and augmentation")
    threads: int | None = option(None, "torch CPU threads per process (default: torch's choice)")
    workers: int = option(0, "data-loading worker processes for image folders (0 = in the main process)")
    device: str = option(
        "auto",
        "where training runs: auto (this process's GPU when CUDA is available, else the CPU), cpu, cuda, cuda:N")
    data_on_device: bool = option(
        False,
        "keep the whole (in-memory) dataset on the training device and augment there: on a GPU, no batch crosses the "
        "host link")
    amp: str = option(
        "auto",
        "mixed precision of the forward pass: auto (bf16 on a CPU with AMX or AVX512-BF16 and on a CUDA device with "
        "bf16, else off), off, bf16 or fp16 (CUDA, with loss scaling); the run's config records the choice")
    channels_last: bool = option(
        True, "train conv nets on channels-last (NHWC) tensors, faster with oneDNN and on tensor cores")

    def __post_init__(self) -> None:
        checks = [
            (self.batch_size >= 1 and self.eval_batch_size >= 1, "batch sizes must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (0.0 <= self.momentum < 1.0, "momentum must be in [0, 1)"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (0.0 <= self.val_fraction < 1.0, "val_fraction must be in [0, 1)"),
            (self.crop_padding is None or self.crop_padding >= 0, "crop_padding must be >= 0"),
            (self.threads is None or self.threads >= 1, "threads must be >= 1"),
            (self.workers >= 0, "workers must be >= 0"),
            (self.device in DEVICES or self.device.startswith("cuda:"),
             "device must be auto, cpu, cuda or cuda:N"),
            (self.amp in AMP_CHOICES, f"amp must be one of {', '.join(AMP_CHOICES)}"),
        ]
        check_settings(checks)
        # resolved here (and revised by the driver once the model is known: auto_amp_for_model), so the saved
        # config and every report name the precision used
        self.amp_from_auto = self.amp == "auto"
        if self.amp_from_auto:
            self.amp = auto_amp(self.device)

    def check_teacher(self) -> None:
        """For configs with ``teacher`` and ``distill_weight``: a teacher that would not be used is a mistake."""
        if getattr(self, "teacher", None) is not None and getattr(self, "distill_weight", 0) == 0:
            raise ConfigError(f"--teacher {self.teacher} is given but distill_weight is 0, so it would not be used; "
                              "set --distill-weight > 0 or drop --teacher")

    def augment_spec(self, info: DatasetInfo) -> AugmentSpec:
        """The dataset's usual augmentation, with any option set here taking precedence."""
        return AugmentSpec(crop_padding=info.augment.crop_padding if self.crop_padding is None else self.crop_padding,
                           hflip=info.augment.hflip if self.hflip is None else self.hflip, points=info.augment.points)

    def load_data(self, dataset: str, data_root: str | None) -> tuple[DataSplit, DataSplit, str]:
        """(train set, evaluation set, evaluation split): the held-out part when ``val_fraction`` > 0, else test.
        Either being empty is an error: training on nothing would finish and report success."""
        eval_split = "val" if self.val_fraction > 0 else "test"
        common = dict(root=data_root, val_fraction=self.val_fraction, seed=self.seed)
        train, evaluation = load_split(dataset, "train", **common), load_split(dataset, eval_split, **common)
        for split, data in (("train", train), (eval_split, evaluation)):
            if len(data) == 0:
                raise DataError(f"the {split} split of {dataset} at {data.source} holds no samples")
        return train, evaluation, eval_split

    def loaders(self, info: DatasetInfo, train_set: DataSplit, eval_set: DataSplit, *, mean: Sequence[float],
                std: Sequence[float], rank: int = 0, world_size: int = 1, device: torch.device | None = None
                ) -> tuple[BatchLoader, BatchLoader]:
        """(training loader: shuffled, augmented, this rank's shard; evaluation loader: in order). With
        ``data_on_device``, both keep their images on ``device`` and cut, augment and normalise batches there."""
        on_device: dict[str, torch.device] = {}
        if self.data_on_device:
            if not all(isinstance(s, ImageArrays) for s in (train_set, eval_set)):
                raise ConfigError("data_on_device needs an in-memory image dataset (.npz, CIFAR, Fashion-MNIST, "
                                  "digits); image folders and point sets stream from the host")
            on_device["device"] = device or torch.device("cpu")
        train = train_set.loader(batch_size=self.batch_size, mean=mean, std=std, shuffle=True,
                                 augment_spec=self.augment_spec(info), seed=self.seed, rank=rank,
                                 world_size=world_size, workers=self.workers,
                                 drop_last=len(train_set) > self.batch_size * world_size, **on_device)
        return train, eval_set.loader(batch_size=self.eval_batch_size, mean=mean, std=std, workers=self.workers,
                                      **on_device)

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager[Any]:
        """The forward pass's mixed-precision context (``amp``): bf16 on CPU or CUDA, fp16 on CUDA only."""
        if self.amp == "off":
            return contextlib.nullcontext()
        if self.amp == "fp16" and device.type != "cuda":
            raise ConfigError("amp fp16 needs a CUDA device; use amp bf16 (or off) on the CPU")
        return torch.autocast(device.type, dtype=AMP_DTYPES[self.amp])


