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

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sigmab.data import get_dataset_info
from sigmab.eval import EvalResult, evaluate, profile_model
from sigmab.models import ModelMeta, build_model, save_model
from sigmab.train.distributed import DistInfo
from sigmab.train.driver import EpochStats, TrainingMethod, fit, start_run
from sigmab.train.train_config import TrainConfig
from sigmab.utils.io import atomic_write_json, check_only_own_files
from sigmab.utils.manifest import FOLDER_MANIFEST, write_folder_manifest

CHECKPOINT_FORMAT = "sigmab.train/1"
# Every file a training run writes in its folder (config-history.yaml: the settings of a resumed run's earlier epochs)
RUN_FILES = ("config.yaml", "config-history.yaml", "metrics.csv", "last.pt", "model.safetensors", "summary.json",
             FOLDER_MANIFEST)
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


class DenseTraining(TrainingMethod):
    """Cross-entropy (with optional label smoothing) on a dense model; evaluation loss and top-1 per epoch."""

    checkpoint_format = CHECKPOINT_FORMAT
    metric_fields = METRIC_FIELDS

    def __init__(self, model: nn.Module, cfg: TrainConfig, eval_loader: Any, eval_split: str) -> None:
        super().__init__(model)
        self.cfg, self.eval_loader, self.eval_split = cfg, eval_loader, eval_split
        self.result: EvalResult | None = None

    def loss(self, module: nn.Module, x: torch.Tensor, y: torch.Tensor, step: int
             ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = module(x)
        return F.cross_entropy(logits, y, label_smoothing=self.cfg.label_smoothing), logits

    def evaluate(self, stats: EpochStats) -> dict[str, Any]:
        self.result = evaluate(self.model, self.eval_loader)
        return {"epoch": stats.epoch, "lr": round(stats.lr, 8), "train_loss": round(stats.loss, 6),
                "train_top1": round(stats.top1, 4), "eval_split": self.eval_split,
                "eval_loss": round(self.result.loss, 6), "eval_top1": round(self.result.top1, 4)}

    def summary(self, row: dict[str, Any]) -> str:
        return (f"epoch {row['epoch']}/{self.cfg.epochs}: train loss {row['train_loss']:.4f} top-1 "
                f"{row['train_top1']:.2f}% | {row['eval_split']} loss {row['eval_loss']:.4f} top-1 "
                f"{row['eval_top1']:.2f}%")

    def checkpoint_extra(self) -> dict[str, Any]:
        return {"meta": self.model.meta.to_dict()}


def train(cfg: TrainConfig, run_dir: str | Path, *, resume: bool = False, progress: bool = True,
          dist_info: DistInfo | None = None) -> TrainResult:
    """Train ``cfg.arch`` from scratch on ``cfg.dataset``; every input is checked before the first step."""
    check_only_own_files(run_dir, RUN_FILES, what="training run")
    ctx = start_run(cfg, run_dir, resume=resume, dist_info=dist_info)
    info = get_dataset_info(cfg.dataset)
    train_set, eval_set, eval_split = cfg.load_data(cfg.dataset, cfg.data_root)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.arch, num_classes=train_set.num_classes, in_channels=info.in_channels,
                        input_size=info.input_size, mean=info.mean, std=info.std, **cfg.arch_kwargs)
    meta: ModelMeta = model.meta
    model.to(ctx.device)
    train_loader, eval_loader = cfg.loaders(info, train_set, eval_set, mean=meta.mean, std=meta.std,
                                            rank=ctx.dist.rank, world_size=ctx.dist.world_size,
                                            device=ctx.device)
    method = DenseTraining(model, cfg, eval_loader, eval_split)
    history = fit(method, cfg, ctx, train_loader, epochs=cfg.epochs, warmup_epochs=cfg.warmup_epochs,
                  nesterov=cfg.nesterov, progress=progress)
    model.cpu()  # the run folder and the caller get CPU weights
    profile = profile_model(model, (meta.in_channels, *meta.input_size))
    if not ctx.dist.is_main:
        return TrainResult(model.eval(), None, eval_split, history, profile.params, profile.macs, ctx.run_dir)
    result = method.result
    if result is None:  # resumed a finished run
        result = evaluate(model, eval_loader)
    save_model(model, ctx.run_dir / "model.safetensors")
    write_folder_manifest(ctx.run_dir, kind="dense", spec_format=CHECKPOINT_FORMAT)
    atomic_write_json(ctx.run_dir / "summary.json", {
        "arch": meta.arch, "dataset": cfg.dataset, "eval_split": eval_split, "top1": result.top1,
        "loss": result.loss, "n_samples": result.n_samples, "params": profile.params, "macs": profile.macs,
        "epochs": cfg.epochs,
    })
    return TrainResult(model.eval(), result, eval_split, history, profile.params, profile.macs, ctx.run_dir)
