"""Fine-tuning of a pruned network, with the same recipe and budget knobs as SigmaB fine-tuning.

Run folder ``<pruned folder>/finetune/``: ``config.yaml``, ``metrics.csv``, ``last.pt`` (resume);
the weights go to ``<pruned folder>/finetuned.safetensors``. Under ``torchrun`` every rank trains on
its shard (DDP, BatchNorm buffers broadcast from rank 0); rank 0 alone evaluates and writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sigmab.config import option
from sigmab.errors import ConfigError
from sigmab.eval import EvalResult, evaluate
from sigmab.models.checkpoint import recorded_source
from sigmab.prune.spec import FINETUNED_WEIGHTS, PRUNED_WEIGHTS, PrunedNet, load_pruned, save_pruned_weights
from sigmab.train.distributed import DistInfo, barrier
from sigmab.train.driver import EpochStats, TrainingMethod, fit, start_run
from sigmab.train.inputs import finetune_inputs
from sigmab.train.losses import distill_loss
from sigmab.train.options import LoopOptions

CHECKPOINT_FORMAT = "sigmab.prune-finetune/1"
METRIC_FIELDS = ("epoch", "lr", "train_loss", "train_top1", "eval_split", "eval_top1", "epoch_seconds")


@dataclass
class PruneFinetuneConfig(LoopOptions):
    lr: float = option(0.01, "peak learning rate (SGD, cosine decay)")
    dataset: str | None = option(None, "dataset (default: the one the model was pruned on)")
    epochs: int = option(6, "fine-tuning epochs (0 with `sigmab prune` skips fine-tuning)")
    distill_weight: float = option(0.0, "weight of distillation from the dense teacher (0 = off)")
    distill_temperature: float = option(4.0, "distillation temperature")
    teacher: str | None = option(None, "dense teacher checkpoint (default: the pruned checkpoint)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.epochs < 0:
            raise ConfigError("epochs must be >= 0")
        if self.distill_weight < 0 or self.distill_temperature <= 0:
            raise ConfigError("distill_weight must be >= 0 and distill_temperature > 0")
        self.check_teacher()




class PrunedFinetuning(TrainingMethod):
    """Cross-entropy plus optional distillation from the dense teacher, as tree fine-tuning's hard phase."""

    checkpoint_format = CHECKPOINT_FORMAT
    metric_fields = METRIC_FIELDS

    def __init__(self, net: PrunedNet, cfg: PruneFinetuneConfig, *, teacher: nn.Module | None, eval_loader: Any,
                 eval_split: str) -> None:
        super().__init__(net)
        self.cfg, self.teacher, self.eval_loader, self.eval_split = cfg, teacher, eval_loader, eval_split
        self.result: EvalResult | None = None

    def loss(self, module: nn.Module, x: torch.Tensor, y: torch.Tensor, step: int
             ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = module(x)
        loss = F.cross_entropy(logits, y)
        if self.teacher is not None:
            with torch.no_grad():
                target = self.teacher(x)
            loss = loss + self.cfg.distill_weight * distill_loss(logits, target, self.cfg.distill_temperature)
        return loss, logits

    def evaluate(self, stats: EpochStats) -> dict[str, Any]:
        self.result = evaluate(self.model, self.eval_loader)
        return {"epoch": stats.epoch, "lr": round(stats.lr, 8), "train_loss": round(stats.loss, 6),
                "train_top1": round(stats.top1, 4), "eval_split": self.eval_split,
                "eval_top1": round(self.result.top1, 4)}

    def summary(self, row: dict[str, Any]) -> str:
        return (f"epoch {row['epoch']}/{self.cfg.epochs}: train loss {row['train_loss']:.4f} | {row['eval_split']} "
                f"top-1 {row['eval_top1']:.2f}%")


def finetune_pruned(folder: str | Path, cfg: PruneFinetuneConfig, *, resume: bool = False, progress: bool = True,
                    dist_info: DistInfo | None = None) -> tuple[PrunedNet, EvalResult | None]:
    """Fine-tune the pruned network in ``folder``; returns it and its evaluation (``None`` off rank 0)."""
    folder = Path(folder)
    if cfg.epochs < 1:
        raise ConfigError("fine-tuning needs epochs >= 1")
    ctx = start_run(cfg, folder / "finetune", resume=resume, dist_info=dist_info)
    net, spec = load_pruned(folder, weights=PRUNED_WEIGHTS)
    ds_info, train_set, eval_set, eval_split, teacher = finetune_inputs(
        cfg, recorded_source(folder, spec.prune_config.get("source")), meta=spec.dense_meta, what="pruned-model")
    meta = spec.dense_meta
    net.to(ctx.device)
    if teacher is not None:
        teacher.to(ctx.device)
    torch.manual_seed(cfg.seed)
    loader, eval_loader = cfg.loaders(ds_info, train_set, eval_set, mean=meta.mean, std=meta.std,
                                      rank=ctx.dist.rank, world_size=ctx.dist.world_size,
                                      device=ctx.device)
    method = PrunedFinetuning(net, cfg, teacher=teacher, eval_loader=eval_loader, eval_split=eval_split)
    fit(method, cfg, ctx, loader, epochs=cfg.epochs, progress=progress)
    net.eval().cpu()
    result = method.result
    if ctx.dist.is_main:
        if result is None:
            result = evaluate(net, eval_loader)
        save_pruned_weights(net, folder / FINETUNED_WEIGHTS)
    barrier(ctx.dist)
    return net, result
