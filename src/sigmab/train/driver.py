"""The one training driver: set-up, the epoch loop, metrics rows and resume, shared by every method.

Dense training, tree fine-tuning, pruned fine-tuning and nested training differ only in what
trains, the loss of a batch and what is evaluated after an epoch. Each is a :class:`TrainingMethod`;
:func:`start_run` and :func:`fit` do the rest the same way for all of them:

- device (``--device``) and ``torchrun`` (DDP: every rank trains on its shard, BatchNorm buffers are
  broadcast from rank 0 after each epoch; rank 0 alone evaluates, logs and writes);
- the run folder: ``config.yaml``, ``metrics.csv`` (one row per epoch), ``last.pt`` (weights,
  optimizer, history; ``weights_only``-loadable), resume from it bit for bit;
- SGD over the method's parameter groups (a group's ``lr_scale`` multiplies the learning rate),
  cosine learning rate per step with optional linear warm-up.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from tqdm import tqdm

from sigmab.config import config_to_dict, save_config
from sigmab.errors import TrainingError
from sigmab.train.distributed import (
    DistInfo,
    barrier,
    broadcast_buffers,
    data_parallel,
    init_distributed,
    resolve_device,
)
from sigmab.train.meter import EpochMeter
from sigmab.train.options import LoopOptions
from sigmab.train.precision import auto_amp_for_model
from sigmab.train.run_folder import check_run_folder, restore_run, save_resume_checkpoint, write_metrics
from sigmab.train.schedule import cosine_lr
from sigmab.utils.io import check_writable
from sigmab.utils.progress import progress_bar


@dataclass(frozen=True)
class RunContext:
    """Where a run trains and writes: the resolved device, the process group, the folder and its resume file."""

    device: torch.device
    dist: DistInfo
    run_dir: Path
    last: Path
    resume: bool


def start_run(cfg: LoopOptions, run_dir: str | Path, *, resume: bool, dist_info: DistInfo | None = None
              ) -> RunContext:
    """Check the folder (refuse to overwrite a run or to resume nothing), pick the device, join ``torchrun``."""
    run_dir = Path(run_dir)
    device = resolve_device(cfg.device)
    dist = dist_info or init_distributed(device)
    last = check_run_folder(run_dir, resume=resume)
    check_writable(run_dir / "config.yaml", what="run folder")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    return RunContext(device, dist, run_dir, last, resume)


@dataclass(frozen=True)
class EpochStats:
    """What the driver measured over one training epoch (``epoch`` counts from 1)."""

    epoch: int
    lr: float
    loss: float
    top1: float


class TrainingMethod:
    """The per-method parts of a run. Subclasses set the class attributes and implement :meth:`loss`
    and :meth:`evaluate`; the defaults train every parameter of ``model`` in training mode."""

    checkpoint_format: ClassVar[str]
    metric_fields: ClassVar[tuple[str, ...]]
    find_unused_parameters: ClassVar[bool] = False

    def __init__(self, model: nn.Module) -> None:
        self.model = model  # what is saved in last.pt, resumed and broadcast

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": list(self.model.parameters())}]

    def train_module(self) -> nn.Module:
        """The module DDP wraps; :meth:`loss` calls it (wrapped) for everything that needs gradients."""
        return self.model

    def start_epoch(self, epoch: int) -> None:
        """Before epoch ``epoch`` (from 0): set training modes and phase."""
        self.model.train()

    def describe(self, epoch: int, epochs: int) -> str:
        return f"epoch {epoch + 1}/{epochs}"

    def loss(self, module: nn.Module, x: torch.Tensor, y: torch.Tensor, step: int
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """(scalar loss, predictions (B, K) for the running top-1) of batch ``x`` (B, ...), ``y`` (B,)."""
        raise NotImplementedError

    def before_step(self) -> None:
        """After the backward pass, before the optimizer step: change the gradients in place if need be."""

    def evaluate(self, stats: EpochStats) -> dict[str, Any]:
        """Rank 0, after an epoch: the metrics row (``epoch_seconds`` is added by the driver)."""
        raise NotImplementedError

    def summary(self, row: dict[str, Any]) -> str:
        """The line printed after an epoch."""
        raise NotImplementedError

    def checkpoint_extra(self) -> dict[str, Any]:
        """Fields stored in ``last.pt`` beside weights, optimizer, epoch, history and config."""
        return {}


def train_epoch(method: TrainingMethod, module: nn.Module, loader: Any, optimizer: torch.optim.Optimizer,
                lr_at: Callable[[int], float], *, epoch: int, device: torch.device, desc: str, progress: bool,
                autocast: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
                scaler: torch.amp.GradScaler | None = None, channels_last: bool = False) -> EpochStats:
    """One pass over ``loader`` with the learning rate set per step and batches moved to ``device`` (image batches
    (N, C, H, W) in channels-last layout with ``channels_last``); the loss is computed under ``autocast()`` and,
    with ``scaler`` (fp16), scaled for the backward pass."""
    meter, lr, steps = EpochMeter(), float("nan"), len(loader)
    bar = progress_bar(loader, enabled=progress, desc=desc)
    for i, (x, y) in enumerate(bar):
        step = epoch * steps + i
        lr = lr_at(step)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast():
            loss, prediction = method.loss(module, x, y, step)
        value = float(loss.detach())
        if not math.isfinite(value):
            # Stop before the step or any save: last.pt and the weights files keep the last good epoch.
            what = f"training diverged: the loss is {value} at epoch {epoch + 1}, batch {i + 1} (lr {lr:g})"
            raise TrainingError(f"{what}; nothing from this epoch was saved. Lower --lr (or other settings) and "
                                "start again, or --resume from the last good epoch", what=what)
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            method.before_step()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            method.before_step()  # on scaled gradients: what it does must be linear in them
            scaler.step(optimizer)
            scaler.update()
        meter.update(value, prediction, y)  # the value read for the divergence check: one device sync per step
        bar.set_postfix(meter.postfix(), refresh=False)
    return EpochStats(epoch + 1, lr, meter.loss, meter.top1)


def uses_conv2d(model: nn.Module) -> bool:
    """True for a model with 2-D convolutions: the nets whose (N, C, H, W) tensors channels-last speeds up."""
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def fit(method: TrainingMethod, cfg: LoopOptions, ctx: RunContext, loader: Any, *, epochs: int,
        warmup_epochs: float = 0.0, nesterov: bool = False, progress: bool = True) -> list[dict[str, Any]]:
    """Train ``method`` for ``epochs`` over ``loader`` (this rank's shard, with ``set_epoch``), resuming from
    ``ctx.last`` when asked; returns the metrics history (every epoch, resumed ones included)."""
    dist = ctx.dist
    optimizer = torch.optim.SGD(method.param_groups(), lr=cfg.lr, momentum=cfg.momentum, nesterov=nesterov,
                                weight_decay=cfg.weight_decay)
    history: list[dict[str, Any]] = []
    start = 0
    if ctx.resume:
        history, start = restore_run(ctx.last, fmt=method.checkpoint_format, model=method.model, optimizer=optimizer)
    if getattr(cfg, "amp_from_auto", False) and not ctx.resume:
        cfg.amp = auto_amp_for_model(cfg.amp, ctx.device, method.model)
    if dist.is_main:
        save_config(cfg, ctx.run_dir / "config.yaml", epoch=start)
    channels_last = cfg.channels_last and uses_conv2d(method.model)
    if channels_last:  # in place, so the method's own references (teacher, tree nodes) see the same layout
        method.model.to(memory_format=torch.channels_last)
    module = data_parallel(method.train_module(), ctx.device, dist,
                           find_unused_parameters=method.find_unused_parameters)
    steps = len(loader)
    autocast = partial(cfg.autocast, ctx.device)
    autocast()  # an amp setting the device cannot run fails here, before the first epoch
    # fp16 gradients underflow without loss scaling; bf16 has float32's range and needs none.
    scaler = torch.amp.GradScaler(ctx.device.type) if cfg.amp == "fp16" else None
    lr_at = partial(cosine_lr, total_steps=max(1, epochs * steps), warmup_steps=int(round(warmup_epochs * steps)),
                    peak_lr=cfg.lr)
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        loader.set_epoch(epoch)
        method.start_epoch(epoch)
        stats = train_epoch(method, module, loader, optimizer, lr_at, epoch=epoch, device=ctx.device,
                            desc=method.describe(epoch, epochs), progress=progress and dist.is_main,
                            autocast=autocast, scaler=scaler, channels_last=channels_last)
        broadcast_buffers(method.model, dist)
        if dist.is_main:
            row = method.evaluate(stats)
            row["epoch_seconds"] = round(time.perf_counter() - t0, 3)
            history.append(row)
            write_metrics(ctx.run_dir / "metrics.csv", history, method.metric_fields)
            save_resume_checkpoint(ctx.last, fmt=method.checkpoint_format, model=method.model.state_dict(),
                                   optimizer=optimizer.state_dict(), epoch=epoch, history=history,
                                   config=config_to_dict(cfg), **method.checkpoint_extra())
            if progress:
                tqdm.write(method.summary(row))
        barrier(dist)
    if channels_last:  # hand back the model as it is saved (NCHW), so it computes exactly what a reload does
        method.model.to(memory_format=torch.contiguous_format)
    return history
