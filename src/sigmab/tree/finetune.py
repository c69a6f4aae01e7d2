"""Soft-routing fine-tuning of a SigmaB-Net, then a final phase under the hard routing of inference.

Run folder ``<tree folder>/finetune/``: ``config.yaml``, ``metrics.csv`` (one row per epoch, with
the hard-routed accuracy and the leaf histogram), ``last.pt`` (resume). The fine-tuned weights go
to ``<tree folder>/finetuned.safetensors``. Under ``torchrun`` every rank trains on its shard
(DDP, BatchNorm buffers broadcast from rank 0); rank 0 alone evaluates, logs and writes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sigmab.config import option
from sigmab.errors import check_settings
from sigmab.models.checkpoint import recorded_source
from sigmab.routing import chosen_path_log_prob
from sigmab.train.distributed import DistInfo, barrier
from sigmab.train.driver import EpochStats, TrainingMethod, fit, start_run
from sigmab.train.inputs import finetune_inputs
from sigmab.train.losses import distill_loss
from sigmab.train.options import LoopOptions
from sigmab.tree.evaluate import TreeEval, evaluate_tree
from sigmab.tree.losses import anchor_loss, balance_loss, routed_leaf_loss
from sigmab.tree.model import SigmaBTree, SoftOutput
from sigmab.tree.sharing import TiedGroups, share_gradients, tied_parameters
from sigmab.tree.spec import TreeSpec, load_tree, save_tree_weights

CHECKPOINT_FORMAT = "sigmab.finetune/1"
FINETUNED_WEIGHTS = "finetuned.safetensors"
METRIC_FIELDS = ("epoch", "phase", "temperature", "lr", "train_loss", "train_top1", "eval_split", "eval_top1",
                 "leaf_shares", "min_leaf_share", "route_agreement", "epoch_seconds")


@dataclass
class FinetuneConfig(LoopOptions):
    lr: float = option(0.01, "peak learning rate of the nodes (SGD, cosine decay)")
    dataset: str | None = option(None, "dataset (default: the one the tree was converted on)")
    soft_epochs: int = option(2, "epochs of soft routing (all nodes on all inputs, temperature annealed)")
    hard_epochs: int = option(1, "final epochs under hard argmax routing, as at inference")
    router_lr: float = option(0.0, "router learning rate; 0 keeps the k-means routers fixed")
    router_gradient: str = option(
        "none",
        "hard phase: none (routers get no gradient), or straight-through (the routed leaf's logits are multiplied by "
        "path probability / its detached value: 1 in the forward pass, so each router learns end to end to favour "
        "the branch whose leaf lowers the loss; needs router_lr > 0)")
    train_backbone: bool = option(False, "also train the shared backbone (changes every router's input)")
    temperature_start: float = option(1.0, "routing softmax temperature at the start of the soft phase")
    temperature_end: float = option(0.1, "temperature at the end of the soft phase (geometric schedule)")
    mixture_weight: float = option(1.0, "weight of the cross-entropy of the probability-weighted leaf mixture")
    routed_weight: float = option(1.0, "weight of the per-leaf cross-entropy weighted by (detached) path probability")
    distill_weight: float = option(0.0, "weight of distillation from the dense teacher (0 = off)")
    distill_temperature: float = option(4.0, "distillation temperature")
    balance_weight: float = option(0.1, "weight of the routing-balance term (with router_lr > 0)")
    balance_temperature: float = option(
        0.0,
        "straight-through: temperature of the router softmax the balance term reads (0 = temperature_end; a warmer "
        "one still has a gradient once the routers have saturated)")
    anchor_weight: float = option(
        1.0, "routing anchor: keeps each router's decisions at their conversion-time values while the nodes before it "
        "train (0 = off)")
    shared_gradient: float = option(
        0.0, "hard phase: each node's gradient becomes (1 - s) x its own + s x the sum over the nodes at its depth, so "
        "leaves also learn from the inputs routed elsewhere (0 = only their own; 1 = nodes that start equal stay "
        "equal, the static prune); needs nodes with the same channels (a tree from `convert --from-pruned`)")
    teacher: str | None = option(None, "dense teacher checkpoint (default: the converted checkpoint)")

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = [
            (self.soft_epochs >= 0 and self.hard_epochs >= 0 and self.soft_epochs + self.hard_epochs >= 1,
             "soft_epochs + hard_epochs must be >= 1"),
            (self.router_lr >= 0, "router_lr must be >= 0"),
            (self.router_gradient in ROUTER_GRADIENTS, f"router_gradient must be one of {', '.join(ROUTER_GRADIENTS)}"),
            (self.router_gradient == "none" or (self.router_lr > 0 and self.hard_epochs > 0),
             "router_gradient straight-through trains the routers in the hard phase: it needs router_lr > 0 and "
             "hard_epochs > 0"),
            (0 < self.temperature_end <= self.temperature_start, "need 0 < temperature_end <= temperature_start"),
            (self.distill_temperature > 0, "distill_temperature must be > 0"),
            (0.0 <= self.shared_gradient <= 1.0, "shared_gradient must be in [0, 1]"),
            (self.balance_temperature >= 0, "balance_temperature must be >= 0 (0: temperature_end)"),
            (min(self.mixture_weight, self.routed_weight, self.distill_weight, self.balance_weight,
                 self.anchor_weight) >= 0,
             "loss weights must be >= 0"),
        ]
        check_settings(checks)
        self.check_teacher()

    @property
    def epochs(self) -> int:
        return self.soft_epochs + self.hard_epochs


#: How the hard phase's loss reaches the routers: not at all, or through the chosen path's probability.
ROUTER_GRADIENTS = ("none", "straight-through")



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


def _source(tree_dir: Path, spec: TreeSpec) -> dict[str, Any]:
    return recorded_source(tree_dir, spec.convert_config.get("source"))


class TreeFinetuning(TrainingMethod):
    """Soft phase (every node on every input, temperature annealed; mixture, routed-leaf, balance, distillation
    and anchor terms), then a hard phase under argmax routing as at inference."""

    checkpoint_format = CHECKPOINT_FORMAT
    metric_fields = METRIC_FIELDS
    find_unused_parameters = True

    def __init__(self, tree: SigmaBTree, cfg: FinetuneConfig, *, steps_per_epoch: int, teacher: nn.Module | None,
                 anchor: SigmaBTree | None, targets: dict[str, torch.Tensor], eval_loader: Any, eval_split: str,
                 num_classes: int, initial_leaves: torch.Tensor | None, tied: TiedGroups | None = None) -> None:
        super().__init__(tree)
        self.tied = tied or []
        self.tree, self.cfg, self.teacher, self.anchor, self.targets = tree, cfg, teacher, anchor, targets
        self.soft_steps = cfg.soft_epochs * steps_per_epoch
        self.eval_loader, self.eval_split, self.num_classes = eval_loader, eval_split, num_classes
        self.initial_leaves = initial_leaves
        self.soft_phase, self.temperature = True, float("nan")
        self.result: TreeEval | None = None

    def param_groups(self) -> list[dict[str, Any]]:
        """What trains; frozen parts get ``requires_grad=False``."""
        tree, cfg = self.tree, self.cfg
        for p in tree.backbone.parameters():
            p.requires_grad_(cfg.train_backbone)
        for p in tree.routers.parameters():
            p.requires_grad_(cfg.router_lr > 0)
        groups = [{"params": list(tree.nodes.parameters()), "lr_scale": 1.0}]
        if cfg.train_backbone:
            groups.append({"params": list(tree.backbone.parameters()), "lr_scale": 1.0})
        if cfg.router_lr > 0:
            groups.append({"params": list(tree.routers.parameters()), "lr_scale": cfg.router_lr / cfg.lr,
                           "weight_decay": 0.0})
        return groups

    def train_module(self) -> nn.Module:
        return _TrainStep(self.tree)

    def start_epoch(self, epoch: int) -> None:
        self.soft_phase = epoch < self.cfg.soft_epochs
        self.tree.train()
        if not self.cfg.train_backbone:
            self.tree.backbone.eval()  # a frozen backbone keeps its BatchNorm statistics: routing inputs stay put

    def describe(self, epoch: int, epochs: int) -> str:
        return f"{'soft' if epoch < self.cfg.soft_epochs else 'hard'} epoch {epoch + 1}/{epochs}"

    def loss(self, module: nn.Module, x: torch.Tensor, y: torch.Tensor, step: int
             ) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        teacher_logits = None
        if self.teacher is not None:
            with torch.no_grad():
                teacher_logits = self.teacher(x)
        decisions = self.anchor.router_decisions(x) if self.anchor is not None else None
        if not self.soft_phase:
            logits, hard_router_logits = module(x, None)
            loss = torch.zeros((), device=x.device)
            if cfg.router_gradient == "straight-through":
                log_p = chosen_path_log_prob(hard_router_logits, x.shape[0], cfg.temperature_end)
                logits = logits * (log_p - log_p.detach()).exp()[:, None]  # x 1 forward; d/d(router) backward
                if cfg.balance_weight > 0:  # without it, the routers may send everything down one path
                    t = cfg.balance_temperature or cfg.temperature_end
                    probs = {name: (z / t).softmax(1) for name, (_, z) in hard_router_logits.items()}
                    loss = cfg.balance_weight * balance_loss(probs, self.targets)
            loss = loss + F.cross_entropy(logits, y)
            if decisions is not None:
                loss = loss + cfg.anchor_weight * anchor_loss(hard_router_logits, decisions, cfg.temperature_end)
            if teacher_logits is not None:
                loss = loss + cfg.distill_weight * distill_loss(logits, teacher_logits, cfg.distill_temperature)
            return loss, logits
        self.temperature = _temperature(cfg, step, self.soft_steps)
        soft = SoftOutput(*module(x, self.temperature))
        mixture = soft.mixture_log_probs()
        loss = cfg.mixture_weight * F.nll_loss(mixture, y) + cfg.routed_weight * routed_leaf_loss(soft, y)
        if cfg.balance_weight > 0 and cfg.router_lr > 0:
            loss = loss + cfg.balance_weight * balance_loss(soft.router_probs, self.targets)
        if teacher_logits is not None:
            weights = soft.leaf_probs.detach()
            loss = loss + cfg.distill_weight * sum(
                distill_loss(z, teacher_logits, cfg.distill_temperature, weights[:, leaf])
                for leaf, z in enumerate(soft.leaf_logits))
        if decisions is not None:
            loss = loss + cfg.anchor_weight * anchor_loss(
                {name: (None, z) for name, z in soft.router_logits.items()}, decisions, self.temperature)
        return loss, mixture

    def before_step(self) -> None:
        if not self.soft_phase and self.cfg.shared_gradient > 0:
            share_gradients(self.tied, self.cfg.shared_gradient)

    def evaluate(self, stats: EpochStats) -> dict[str, Any]:
        self.result = result = evaluate_tree(self.tree, self.eval_loader, self.num_classes)
        shares = result.leaf_share
        return {
            "epoch": stats.epoch, "phase": "soft" if self.soft_phase else "hard",
            "temperature": round(self.temperature, 5) if self.soft_phase else "", "lr": round(stats.lr, 8),
            "train_loss": round(stats.loss, 6), "train_top1": round(stats.top1, 4),
            "eval_split": self.eval_split, "eval_top1": round(result.top1, 4),
            "leaf_shares": ";".join(f"{float(s):.4f}" for s in shares),
            "min_leaf_share": round(float(shares.min()), 4),
            "route_agreement": round(float((result.leaf_ids == self.initial_leaves).double().mean()), 4),
        }

    def summary(self, row: dict[str, Any]) -> str:
        return (f"epoch {row['epoch']}/{self.cfg.epochs} ({row['phase']}): train loss {row['train_loss']:.4f} | "
                f"hard-routed {row['eval_split']} top-1 {row['eval_top1']:.2f}% | leaf shares {row['leaf_shares']} | "
                f"same leaf as converted {100 * row['route_agreement']:.1f}%")


def finetune(tree_dir: str | Path, cfg: FinetuneConfig, *, resume: bool = False, progress: bool = True,
             dist_info: DistInfo | None = None) -> tuple[SigmaBTree, TreeEval | None]:
    """Fine-tune the tree saved in ``tree_dir``; returns the tree and its hard-routed evaluation
    (``None`` on ranks other than 0, which do not evaluate)."""
    tree_dir = Path(tree_dir)
    tree, spec = load_tree(tree_dir, weights="tree.safetensors")
    tied = tied_parameters(tree, spec) if cfg.shared_gradient > 0 else None  # refused before the run folder
    ctx = start_run(cfg, tree_dir / "finetune", resume=resume, dist_info=dist_info)
    device, info = ctx.device, ctx.dist
    ds_info, train_set, eval_set, eval_split, teacher = finetune_inputs(
        cfg, _source(tree_dir, spec), meta=spec.dense_meta, what="tree")

    meta = spec.dense_meta
    tree.to(device)
    if teacher is not None:
        teacher.to(device)
    # The converted tree fixes the routing the anchor holds on to (also on resume: taken before loading).
    routing_can_drift = tree.depth > 1 or cfg.train_backbone or cfg.router_lr > 0
    converted = copy.deepcopy(tree).eval()
    anchor = converted if cfg.anchor_weight > 0 and routing_can_drift else None
    torch.manual_seed(cfg.seed)
    loader, eval_loader = cfg.loaders(ds_info, train_set, eval_set, mean=meta.mean, std=meta.std, rank=info.rank,
                                      world_size=info.world_size, device=device)
    targets = {name: torch.tensor(spec.router_target(name) or [0.5, 0.5], device=device) for name in tree.routers}
    # Leaves of the evaluation inputs under the converted routing: the reference for routing drift.
    initial_leaves = evaluate_tree(converted, eval_loader, eval_set.num_classes).leaf_ids if info.is_main else None
    method = TreeFinetuning(tree, cfg, steps_per_epoch=len(loader), teacher=teacher, anchor=anchor, targets=targets,
                            eval_loader=eval_loader, eval_split=eval_split, num_classes=eval_set.num_classes,
                            initial_leaves=initial_leaves, tied=tied)
    fit(method, cfg, ctx, loader, epochs=cfg.epochs, progress=progress)
    tree.eval().cpu()
    result = method.result
    if info.is_main:
        if result is None:
            result = evaluate_tree(tree, eval_loader, eval_set.num_classes)
        save_tree_weights(tree, tree_dir / FINETUNED_WEIGHTS)
    barrier(info)
    return tree, result
