"""One supervised training epoch, shared by dense training and the fine-tuning of pruned models."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from sigmab.train.meter import EpochMeter
from sigmab.utils.progress import progress_bar

# (logits (B, K), inputs (B, C, H, W), labels (B,)) -> scalar loss
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def train_epoch(model: nn.Module, loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
                optimizer: torch.optim.Optimizer, *, first_step: int, lr_at: Callable[[int], float],
                loss_fn: LossFn, desc: str, progress: bool, device: torch.device | None = None
                ) -> tuple[float, float, float]:
    """One pass over ``loader`` with the learning rate set per step, batches moved to ``device``;
    returns (mean loss, top-1 %, last lr)."""
    model.train()
    meter, lr = EpochMeter(), float("nan")
    bar = progress_bar(loader, enabled=progress, desc=desc)
    for i, (inputs, labels) in enumerate(bar):
        lr = lr_at(first_step + i)
        for group in optimizer.param_groups:
            group["lr"] = lr
        if device is not None:
            inputs, labels = inputs.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        logits = model(inputs)
        loss = loss_fn(logits, inputs, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        meter.update(loss, logits, labels)
        bar.set_postfix(meter.postfix(), refresh=False)
    return meter.loss, meter.top1, lr
