"""Soft-routing fine-tuning of a SigmaB-Net, then a final phase under the hard routing of inference.

Run folder ``<tree folder>/finetune/``: ``config.yaml``, ``metrics.csv`` (one row per epoch, with
the hard-routed accuracy and the leaf histogram), ``last.pt`` (resume). The fine-tuned weights go
to ``<tree folder>/finetuned.safetensors``. Under ``torchrun`` every rank trains on its shard
(DDP, BatchNorm buffers broadcast from rank 0); rank 0 alone evaluates, logs and writes.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sigmab.config import config_to_dict, save_config
from sigmab.errors import ConfigError
from sigmab.train.distributed import (
    DistInfo,
    barrier,
    broadcast_buffers,
    data_parallel,
    init_distributed,
    resolve_device,
)
from sigmab.train.inputs import finetune_inputs
from sigmab.train.losses import anchor_loss, balance_loss, distill_loss, routed_leaf_loss
from sigmab.train.meter import EpochMeter
from sigmab.train.options import LOOP_HELP, LoopOptions
from sigmab.train.run_folder import check_run_folder, restore_run, save_resume_checkpoint, write_metrics
from sigmab.train.schedule import cosine_lr
from sigmab.tree.evaluate import TreeEval, evaluate_tree
from sigmab.tree.model import SigmaBTree, SoftOutput
from sigmab.tree.spec import TreeSpec, load_tree, save_tree_weights
from sigmab.utils.progress import progress_bar

CHECKPOINT_FORMAT = "sigmab.finetune/1"
FINETUNED_WEIGHTS = "finetuned.safetensors"
METRIC_FIELDS = ("epoch", "phase", "temperature", "lr", "train_loss", "train_top1", "eval_split", "eval_top1",
                 "leaf_shares", "min_leaf_share", "route_agreement", "epoch_seconds")


@dataclass
class FinetuneConfig(LoopOptions):
    lr: float = 0.01
    dataset: str | None = None  # default: the conversion's dataset
    soft_epochs: int = 2
    hard_epochs: int = 1
    router_lr: float = 0.0  # 0 keeps the routers at their k-means start
    train_backbone: bool = False
    temperature_start: float = 1.0
    temperature_end: float = 0.1
    mixture_weight: float = 1.0
    routed_weight: float = 1.0
    distill_weight: float = 0.0
    distill_temperature: float = 4.0
    balance_weight: float = 0.1
    anchor_weight: float = 1.0
    teacher: str | None = None  # dense checkpoint for distillation; default: the converted one

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = [
            (self.soft_epochs >= 0 and self.hard_epochs >= 0 and self.soft_epochs + self.hard_epochs >= 1,
             "soft_epochs + hard_epochs must be >= 1"),
            (self.router_lr >= 0, "router_lr must be >= 0"),
            (0 < self.temperature_end <= self.temperature_start, "need 0 < temperature_end <= temperature_start"),
            (min(self.mixture_weight, self.routed_weight, self.distill_weight, self.balance_weight,
                 self.anchor_weight) >= 0,
             "loss weights must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    @property
    def epochs(self) -> int:
        return self.soft_epochs + self.hard_epochs


FINETUNE_HELP = {
    **LOOP_HELP,
    "dataset": "dataset (default: the one the tree was converted on)",
    "data_root": "dataset location (default: the conversion's)",
    "lr": "peak learning rate of the nodes (SGD, cosine decay)",
    "soft_epochs": "epochs of soft routing (all nodes on all inputs, temperature annealed)",
    "hard_epochs": "final epochs under hard argmax routing, as at inference",
    "router_lr": "router learning rate; 0 keeps the k-means routers fixed",
    "train_backbone": "also train the shared backbone (changes every router's input)",
    "temperature_start": "routing softmax temperature at the start of the soft phase",
    "temperature_end": "temperature at the end of the soft phase (geometric schedule)",
    "mixture_weight": "weight of the cross-entropy of the probability-weighted leaf mixture",
    "routed_weight": "weight of the per-leaf cross-entropy weighted by (detached) path probability",
    "distill_weight": "weight of distillation from the dense teacher (0 = off)",
    "distill_temperature": "distillation temperature",
    "balance_weight": "weight of the routing-balance term (with router_lr > 0)",
    "anchor_weight": "routing anchor: keeps each router's decisions at their conversion-time values while the "
                     "nodes before it train (0 = off)",
    "teacher": "dense teacher checkpoint (default: the converted checkpoint)",
}


class _TrainStep(nn.Module):
    """What DDP wraps: soft forward (temperature given) or hard forward (None), returning plain tensors."""

    def __init__(self, tree: SigmaBTree) -> None:
        super().__init__()
        self.tree = tree

    def forward(self, x: torch.Tensor, temperature: float | None) -> tuple[Any, ...]:
        if temperature is None:
            router_logits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
            logits, _ = self.tree.forward_hard(x, router_logits)
            return logits, router_logits
        soft = self.tree.forward_soft(x, temperature)
        return soft.leaf_logits, soft.leaf_log_probs, soft.router_probs, soft.router_logits


def _temperature(cfg: FinetuneConfig, step: int, soft_steps: int) -> float:
    if soft_steps <= 1:
        return cfg.temperature_end
    frac = min(1.0, step / (soft_steps - 1))
    return cfg.temperature_start * (cfg.temperature_end / cfg.temperature_start) ** frac


def _freeze(tree: SigmaBTree, cfg: FinetuneConfig) -> list[dict[str, Any]]:
    """Parameter groups of what trains; frozen parts get ``requires_grad=False``."""
    for p in tree.backbone.parameters():
        p.requires_grad_(cfg.train_backbone)
    for p in tree.routers.parameters():
        p.requires_grad_(cfg.router_lr > 0)
    groups = [{"params": [p for p in tree.nodes.parameters()], "lr_scale": 1.0}]
    if cfg.train_backbone:
        groups.append({"params": list(tree.backbone.parameters()), "lr_scale": 1.0})
    if cfg.router_lr > 0:
        groups.append({"params": list(tree.routers.parameters()), "lr_scale": cfg.router_lr / cfg.lr,
                       "weight_decay": 0.0})
    return groups


def _set_train_mode(tree: SigmaBTree, cfg: FinetuneConfig) -> None:
    tree.train()
    if not cfg.train_backbone:
        tree.backbone.eval()  # a frozen backbone keeps its BatchNorm statistics, so routing inputs do not drift


def _source(spec: TreeSpec) -> dict[str, Any]:
    return dict(spec.convert_config.get("source") or {})


def finetune(tree_dir: str | Path, cfg: FinetuneConfig, *, resume: bool = False, progress: bool = True,
             dist_info: DistInfo | None = None) -> tuple[SigmaBTree, TreeEval | None]:
    """Fine-tune the tree saved in ``tree_dir``; returns the tree and its hard-routed evaluation
    (``None`` on ranks other than 0, which do not evaluate)."""
    tree_dir = Path(tree_dir)
    device = resolve_device(cfg.device)
    info = dist_info or init_distributed(device)
    run_dir = tree_dir / "finetune"
    last = check_run_folder(run_dir, resume=resume)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    tree, spec = load_tree(tree_dir, weights="tree.safetensors")
    ds_info, train_set, eval_set, eval_split, teacher = finetune_inputs(
        cfg, _source(spec), meta=spec.dense_meta, what="tree")

    meta = spec.dense_meta
    tree.to(device)
    if teacher is not None:
        teacher.to(device)
    # The converted tree fixes the routing the anchor holds on to (also on resume: taken before loading).
    routing_can_drift = tree.depth > 1 or cfg.train_backbone or cfg.router_lr > 0
    converted = copy.deepcopy(tree).eval()
    anchor = converted if cfg.anchor_weight > 0 and routing_can_drift else None
    torch.manual_seed(cfg.seed)
    groups = _freeze(tree, cfg)
    optimizer = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if resume:
        history, start_epoch = restore_run(last, fmt=CHECKPOINT_FORMAT, model=tree, optimizer=optimizer)
    if info.is_main:
        save_config(cfg, run_dir / "config.yaml")

    step_module = data_parallel(_TrainStep(tree), device, info, find_unused_parameters=True)
    loader, eval_loader = cfg.loaders(ds_info, train_set, eval_set, mean=meta.mean, std=meta.std, rank=info.rank,
                                      world_size=info.world_size)
    steps_per_epoch = len(loader)
    total_steps, soft_steps = cfg.epochs * steps_per_epoch, cfg.soft_epochs * steps_per_epoch
    targets = {name: torch.tensor(spec.router_target(name) or [0.5, 0.5], device=device) for name in tree.routers}
    # Leaves of the evaluation inputs under the converted routing: the reference for routing drift.
    initial_leaves = evaluate_tree(converted, eval_loader, eval_set.num_classes).leaf_ids if info.is_main else None

    result: TreeEval | None = None
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        soft_phase = epoch < cfg.soft_epochs
        loader.set_epoch(epoch)
        _set_train_mode(tree, cfg)
        meter, lr, temperature = EpochMeter(), cfg.lr, float("nan")
        bar = progress_bar(loader, enabled=progress and info.is_main,
                           desc=f"{'soft' if soft_phase else 'hard'} epoch {epoch + 1}/{cfg.epochs}")
        for i, (x, y) in enumerate(bar):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            step = epoch * steps_per_epoch + i
            lr = cosine_lr(step, total_steps=total_steps, warmup_steps=0, peak_lr=cfg.lr)
            for group in optimizer.param_groups:
                group["lr"] = lr * group["lr_scale"]
            teacher_logits = None
            if teacher is not None:
                with torch.no_grad():
                    teacher_logits = teacher(x)
            decisions = anchor.router_decisions(x) if anchor is not None else None
            if soft_phase:
                temperature = _temperature(cfg, step, soft_steps)
                leaf_logits, leaf_log_probs, router_probs, raw_router_logits = step_module(x, temperature)
                soft = SoftOutput(leaf_logits, leaf_log_probs, router_probs, raw_router_logits)
                mixture = soft.mixture_log_probs()
                loss = cfg.mixture_weight * F.nll_loss(mixture, y) + cfg.routed_weight * routed_leaf_loss(soft, y)
                if cfg.balance_weight > 0 and cfg.router_lr > 0:
                    loss = loss + cfg.balance_weight * balance_loss(router_probs, targets)
                if teacher_logits is not None:
                    weights = soft.leaf_probs.detach()
                    loss = loss + cfg.distill_weight * sum(
                        distill_loss(z, teacher_logits, cfg.distill_temperature, weights[:, leaf])
                        for leaf, z in enumerate(leaf_logits))
                if decisions is not None:
                    loss = loss + cfg.anchor_weight * anchor_loss(
                        {name: (None, z) for name, z in raw_router_logits.items()}, decisions, temperature)
                prediction = mixture
            else:
                logits, hard_router_logits = step_module(x, None)
                loss = F.cross_entropy(logits, y)
                if decisions is not None:
                    loss = loss + cfg.anchor_weight * anchor_loss(hard_router_logits, decisions, cfg.temperature_end)
                if teacher_logits is not None:
                    loss = loss + cfg.distill_weight * distill_loss(logits, teacher_logits, cfg.distill_temperature)
                prediction = logits
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            meter.update(loss, prediction, y)
            bar.set_postfix(meter.postfix(), refresh=False)
        broadcast_buffers(tree, info)
        if info.is_main:
            result = evaluate_tree(tree, eval_loader, eval_set.num_classes)
            shares = result.leaf_share
            history.append({
                "epoch": epoch + 1, "phase": "soft" if soft_phase else "hard",
                "temperature": round(temperature, 5) if soft_phase else "", "lr": round(lr, 8),
                "train_loss": round(meter.loss, 6), "train_top1": round(meter.top1, 4),
                "eval_split": eval_split, "eval_top1": round(result.top1, 4),
                "leaf_shares": ";".join(f"{float(s):.4f}" for s in shares),
                "min_leaf_share": round(float(shares.min()), 4),
                "route_agreement": round(float((result.leaf_ids == initial_leaves).double().mean()), 4),
                "epoch_seconds": round(time.perf_counter() - t0, 3),
            })
            write_metrics(run_dir / "metrics.csv", history, METRIC_FIELDS)
            save_resume_checkpoint(last, fmt=CHECKPOINT_FORMAT, model=tree.state_dict(),
                                   optimizer=optimizer.state_dict(), epoch=epoch, history=history,
                                   config=config_to_dict(cfg))
            if progress or not info.enabled:
                bar.write(f"epoch {epoch + 1}/{cfg.epochs} ({history[-1]['phase']}): train loss "
                          f"{history[-1]['train_loss']:.4f} | hard-routed {eval_split} top-1 {result.top1:.2f}% | "
                          f"leaf shares {history[-1]['leaf_shares']} | same leaf as converted "
                          f"{100 * history[-1]['route_agreement']:.1f}%")
        barrier(info)
    tree.eval().cpu()
    if info.is_main:
        if result is None:
            result = evaluate_tree(tree, eval_loader, eval_set.num_classes)
        save_tree_weights(tree, tree_dir / FINETUNED_WEIGHTS)
    barrier(info)
    return tree, result
