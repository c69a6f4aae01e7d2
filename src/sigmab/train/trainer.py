"""Dense training with a run folder: resolved config, ``metrics.csv``, atomic checkpoints, resume.

Run folder layout::

    config.yaml       resolved configuration (defaults < YAML < flags)
    metrics.csv       one row per epoch
    last.pt           resume checkpoint (weights, meta, optimizer, history; weights_only-loadable)
    model.safetensors final weights with model metadata
    summary.json      final evaluation, parameters and MACs

Under ``torchrun`` every rank trains on its shard of each epoch (DDP; BatchNorm buffers broadcast
from rank 0 after each epoch); rank 0 alone evaluates, logs and writes the run folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from sigmab.config import config_to_dict, save_config
from sigmab.data import get_dataset_info
from sigmab.eval import EvalResult, evaluate, profile_model
from sigmab.models import ModelMeta, build_model, save_model
from sigmab.train.config import TrainConfig
from sigmab.train.distributed import (
    DistInfo,
    barrier,
    broadcast_buffers,
    data_parallel,
    init_distributed,
    resolve_device,
)
from sigmab.train.loop import train_epoch
from sigmab.train.run_folder import (
    check_run_folder,
    restore_run,
    save_resume_checkpoint,
    write_metrics,
)
from sigmab.train.schedule import cosine_lr
from sigmab.utils.io import atomic_write_json

CHECKPOINT_FORMAT = "sigmab.train/1"
METRIC_FIELDS = ("epoch", "lr", "train_loss", "train_top1", "eval_split", "eval_loss", "eval_top1", "epoch_seconds")


@dataclass(frozen=True)
class TrainResult:
    model: nn.Module
    final: EvalResult | None  # None on ranks other than 0, which do not evaluate
    eval_split: str
    history: list[dict[str, Any]]
    params: int
    macs: int
    run_dir: Path


def train(cfg: TrainConfig, run_dir: str | Path, *, resume: bool = False, progress: bool = True,
          dist_info: DistInfo | None = None) -> TrainResult:
    """Train ``cfg.arch`` from scratch on ``cfg.dataset``; every input is checked before the first step."""
    run_dir = Path(run_dir)
    device = resolve_device(cfg.device)
    dist = dist_info or init_distributed(device)
    last = check_run_folder(run_dir, resume=resume)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    info = get_dataset_info(cfg.dataset)
    train_set, eval_set, eval_split = cfg.load_data(cfg.dataset, cfg.data_root)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.arch, num_classes=train_set.num_classes, in_channels=info.in_channels,
                        input_size=info.input_size, mean=info.mean, std=info.std, **cfg.arch_kwargs)
    meta: ModelMeta = model.meta
    model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                                weight_decay=cfg.weight_decay)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if resume:
        history, start_epoch = restore_run(last, fmt=CHECKPOINT_FORMAT, model=model, optimizer=optimizer)
    if dist.is_main:
        save_config(cfg, run_dir / "config.yaml")
    step_model = data_parallel(model, device, dist)
    train_loader, eval_loader = cfg.loaders(info, train_set, eval_set, mean=meta.mean, std=meta.std,
                                            rank=dist.rank, world_size=dist.world_size)
    total_steps = cfg.epochs * len(train_loader)
    warmup_steps = int(round(cfg.warmup_epochs * len(train_loader)))
    lr_at = partial(cosine_lr, total_steps=total_steps, warmup_steps=warmup_steps, peak_lr=cfg.lr)

    def loss_fn(logits: torch.Tensor, _inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, labels, label_smoothing=cfg.label_smoothing)

    result = None
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        train_loader.set_epoch(epoch)
        train_loss, train_top1, lr = train_epoch(
            step_model, train_loader, optimizer, first_step=epoch * len(train_loader), lr_at=lr_at, loss_fn=loss_fn,
            desc=f"epoch {epoch + 1}/{cfg.epochs}", progress=progress and dist.is_main, device=device)
        broadcast_buffers(model, dist)
        if not dist.is_main:
            barrier(dist)
            continue
        result = evaluate(model, eval_loader)
        row = {"epoch": epoch + 1, "lr": round(lr, 8), "train_loss": round(train_loss, 6),
               "train_top1": round(train_top1, 4), "eval_split": eval_split, "eval_loss": round(result.loss, 6),
               "eval_top1": round(result.top1, 4), "epoch_seconds": round(time.perf_counter() - t0, 3)}
        history.append(row)
        write_metrics(run_dir / "metrics.csv", history, METRIC_FIELDS)
        save_resume_checkpoint(last, fmt=CHECKPOINT_FORMAT, model=model.state_dict(), meta=meta.to_dict(),
                               optimizer=optimizer.state_dict(), epoch=epoch, history=history,
                               config=config_to_dict(cfg))
        if progress:
            tqdm.write(f"epoch {epoch + 1}/{cfg.epochs}: train loss {train_loss:.4f} top-1 {train_top1:.2f}% | "
                       f"{eval_split} loss {result.loss:.4f} top-1 {result.top1:.2f}%")
        barrier(dist)
    model.cpu()  # the run folder and the caller get CPU weights
    profile = profile_model(model, (meta.in_channels, *meta.input_size))
    if not dist.is_main:
        return TrainResult(model.eval(), None, eval_split, history, profile.params, profile.macs, run_dir)
    if result is None:  # resumed a finished run
        result = evaluate(model, eval_loader)
    save_model(model, run_dir / "model.safetensors")
    atomic_write_json(run_dir / "summary.json", {
        "arch": meta.arch, "dataset": cfg.dataset, "eval_split": eval_split, "top1": result.top1,
        "loss": result.loss, "n_samples": result.n_samples, "params": profile.params, "macs": profile.macs,
        "epochs": cfg.epochs,
    })
    return TrainResult(model.eval(), result, eval_split, history, profile.params, profile.macs, run_dir)
