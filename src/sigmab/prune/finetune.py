"""Fine-tuning of a pruned network, with the same recipe and budget knobs as SigmaB fine-tuning.

Run folder ``<pruned folder>/finetune/``: ``config.yaml``, ``metrics.csv``, ``last.pt`` (resume);
the weights go to ``<pruned folder>/finetuned.safetensors``. Under ``torchrun`` every rank trains on
its shard (DDP, BatchNorm buffers broadcast from rank 0); rank 0 alone evaluates and writes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from sigmab.config import config_to_dict, save_config
from sigmab.errors import ConfigError
from sigmab.eval import EvalResult, evaluate
from sigmab.prune.spec import FINETUNED_WEIGHTS, PRUNED_WEIGHTS, PrunedNet, load_pruned, save_pruned_weights
from sigmab.train.distributed import (
    DistInfo,
    barrier,
    broadcast_buffers,
    data_parallel,
    init_distributed,
    resolve_device,
)
from sigmab.train.inputs import finetune_inputs
from sigmab.train.loop import train_epoch
from sigmab.train.losses import distill_loss
from sigmab.train.options import LOOP_HELP, LoopOptions
from sigmab.train.run_folder import check_run_folder, restore_run, save_resume_checkpoint, write_metrics
from sigmab.train.schedule import cosine_lr

CHECKPOINT_FORMAT = "sigmab.prune-finetune/1"
METRIC_FIELDS = ("epoch", "lr", "train_loss", "train_top1", "eval_split", "eval_top1", "epoch_seconds")


@dataclass
class PruneFinetuneConfig(LoopOptions):
    lr: float = 0.01
    dataset: str | None = None  # default: the dataset the model was pruned on
    epochs: int = 6
    distill_weight: float = 0.0
    distill_temperature: float = 4.0
    teacher: str | None = None  # default: the pruned checkpoint

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.epochs < 0:
            raise ConfigError("epochs must be >= 0")
        if self.distill_weight < 0 or self.distill_temperature <= 0:
            raise ConfigError("distill_weight must be >= 0 and distill_temperature > 0")


PRUNE_FINETUNE_HELP = {
    **LOOP_HELP,
    "lr": "peak learning rate (SGD, cosine decay)",
    "dataset": "dataset (default: the one the model was pruned on)",
    "epochs": "fine-tuning epochs (0 with `sigmab prune` skips fine-tuning)",
    "distill_weight": "weight of distillation from the dense teacher (0 = off)",
    "distill_temperature": "distillation temperature",
    "teacher": "dense teacher checkpoint (default: the pruned checkpoint)",
}


def finetune_pruned(folder: str | Path, cfg: PruneFinetuneConfig, *, resume: bool = False, progress: bool = True,
                    dist_info: DistInfo | None = None) -> tuple[PrunedNet, EvalResult | None]:
    """Fine-tune the pruned network in ``folder``; returns it and its evaluation (``None`` off rank 0)."""
    folder = Path(folder)
    if cfg.epochs < 1:
        raise ConfigError("fine-tuning needs epochs >= 1")
    device = resolve_device(cfg.device)
    info = dist_info or init_distributed(device)
    run_dir = folder / "finetune"
    last = check_run_folder(run_dir, resume=resume)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    net, spec = load_pruned(folder, weights=PRUNED_WEIGHTS)
    ds_info, train_set, eval_set, eval_split, teacher = finetune_inputs(
        cfg, dict(spec.prune_config.get("source") or {}), meta=spec.dense_meta, what="pruned-model")

    meta = spec.dense_meta
    net.to(device)
    if teacher is not None:
        teacher.to(device)
    torch.manual_seed(cfg.seed)
    optimizer = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if resume:
        history, start_epoch = restore_run(last, fmt=CHECKPOINT_FORMAT, model=net, optimizer=optimizer)
    if info.is_main:
        save_config(cfg, run_dir / "config.yaml")
    model = data_parallel(net, device, info)
    loader, eval_loader = cfg.loaders(ds_info, train_set, eval_set, mean=meta.mean, std=meta.std, rank=info.rank,
                                      world_size=info.world_size)
    lr_at = partial(cosine_lr, total_steps=cfg.epochs * len(loader), warmup_steps=0, peak_lr=cfg.lr)

    def loss_fn(logits: torch.Tensor, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(logits, labels)
        if teacher is not None:
            with torch.no_grad():
                target = teacher(inputs)
            loss = loss + cfg.distill_weight * distill_loss(logits, target, cfg.distill_temperature)
        return loss

    result: EvalResult | None = None
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        loader.set_epoch(epoch)
        train_loss, train_top1, lr = train_epoch(
            model, loader, optimizer, first_step=epoch * len(loader), lr_at=lr_at, loss_fn=loss_fn,
            desc=f"epoch {epoch + 1}/{cfg.epochs}", progress=progress and info.is_main, device=device)
        broadcast_buffers(net, info)
        if info.is_main:
            result = evaluate(net, eval_loader)
            history.append({"epoch": epoch + 1, "lr": round(lr, 8), "train_loss": round(train_loss, 6),
                            "train_top1": round(train_top1, 4), "eval_split": eval_split,
                            "eval_top1": round(result.top1, 4), "epoch_seconds": round(time.perf_counter() - t0, 3)})
            write_metrics(run_dir / "metrics.csv", history, METRIC_FIELDS)
            save_resume_checkpoint(last, fmt=CHECKPOINT_FORMAT, model=net.state_dict(),
                                   optimizer=optimizer.state_dict(), epoch=epoch, history=history,
                                   config=config_to_dict(cfg))
            if progress or not info.enabled:
                print(f"epoch {epoch + 1}/{cfg.epochs}: train loss {train_loss:.4f} | {eval_split} top-1 "
                      f"{result.top1:.2f}%", flush=True)
        barrier(info)
    net.eval().cpu()
    if info.is_main:
        if result is None:
            result = evaluate(net, eval_loader)
        save_pruned_weights(net, folder / FINETUNED_WEIGHTS)
    barrier(info)
    return net, result
