"""Build, train and evaluate a nested sparse network from a dense checkpoint (``sigmab nested``).

Folder: ``nested.json`` (sparsities, masked layers, dense metadata, settings, source),
``nested.safetensors`` (shared weights + per-layer level counts), ``config.yaml``, ``metrics.csv``,
``last.pt`` (resume) and ``report.json`` (Top-1, non-zero parameters, MACs per route, storage).
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sigmab.config import config_to_dict, option
from sigmab.errors import CheckpointError, ConfigError
from sigmab.eval import count_params, evaluate
from sigmab.inputs import check_classes, folder_eval_data, load_dense_for
from sigmab.models import ModelMeta, build_from_meta, load_model
from sigmab.models.checkpoint import (
    load_weights,
    read_folder_spec,
    read_folder_weights,
    recorded_source,
    save_state_dict,
)
from sigmab.nested.net import (
    NestedSparseNet,
    Route,
    calibrate_route,
    check_sparsities,
    default_routes,
    route_cost,
    storage_cost,
)
from sigmab.train.driver import EpochStats, TrainingMethod, fit, start_run
from sigmab.train.losses import distill_loss
from sigmab.train.options import LoopOptions
from sigmab.utils.io import atomic_write_json
from sigmab.utils.manifest import write_folder_manifest

# /2: per-level BatchNorm running statistics (/1 shared one set, which no level evaluates with).
NESTED_FORMAT = "sigmab.nested/2"
SPEC, WEIGHTS = "nested.json", "nested.safetensors"
CHECKPOINT_FORMAT = "sigmab.nested-train/2"
METRIC_FIELDS = ("epoch", "lr", "train_loss", "train_top1_densest", "eval_split", "eval_top1_densest",
                 "eval_top1_sparsest", "epoch_seconds")


@dataclass
class NestedConfig(LoopOptions):
    dataset: str | None = option(None, "dataset name (training and evaluation data)")
    sparsities: list[float] = option(
        factory=lambda: [0.8, 0.9, 0.95],
        help="sparsity of each level, densest first, as YAML, e.g. '[0.8, 0.9, 0.95]'")
    epochs: int = option(4, "joint training epochs over all levels (0 = masks only)")
    lr: float = option(0.01, "peak learning rate (SGD, cosine decay)")
    distill_weight: float = option(1.0, "weight of distillation from the dense model, per level (0 = off)")
    distill_temperature: float = option(4.0, "distillation temperature")
    calibration_batches: int = option(
        50,
        "training batches that give each rerouting its own BatchNorm statistics after training (0 = reroutings read "
        "each layer's level's)")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_sparsities(self.sparsities)
        if self.epochs < 0:
            raise ConfigError("epochs must be >= 0")
        if self.distill_weight < 0 or self.distill_temperature <= 0:
            raise ConfigError("distill_weight must be >= 0 and distill_temperature > 0")
        if self.calibration_batches < 0:
            raise ConfigError("calibration_batches must be >= 0")




class _EveryLevel(nn.Module):
    """What DDP wraps: the nested net at every level on one batch, (B, ...) -> (levels, B, K)."""

    def __init__(self, net: NestedSparseNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.net.forward_at(x, level) for level in range(self.net.num_levels)])


class NestedTraining(TrainingMethod):
    """Every level on every batch: mean over levels of cross-entropy plus distillation from the dense model;
    after an epoch, the densest and the sparsest level are evaluated."""

    checkpoint_format = CHECKPOINT_FORMAT
    metric_fields = METRIC_FIELDS

    def __init__(self, net: NestedSparseNet, cfg: NestedConfig, *, teacher: nn.Module | None, eval_loader: Any,
                 eval_split: str, source: dict[str, Any]) -> None:
        super().__init__(net)
        self.net, self.cfg, self.teacher, self.eval_loader, self.eval_split = net, cfg, teacher, eval_loader, eval_split
        self.source = source

    def checkpoint_extra(self) -> dict[str, Any]:
        return {"source": self.source}  # so that `sigmab nested --resume` needs no --checkpoint

    def train_module(self) -> nn.Module:
        return _EveryLevel(self.net)

    def loss(self, module: nn.Module, x: torch.Tensor, y: torch.Tensor, step: int
             ) -> tuple[torch.Tensor, torch.Tensor]:
        target = None
        if self.teacher is not None:
            with torch.no_grad():
                target = self.teacher(x)
        total = x.new_zeros(())
        levels = module(x)
        for logits in levels:
            total = total + F.cross_entropy(logits, y)
            if target is not None:
                total = total + self.cfg.distill_weight * distill_loss(logits, target, self.cfg.distill_temperature)
        return total / len(levels), levels[0]

    def evaluate(self, stats: EpochStats) -> dict[str, Any]:
        tops = [evaluate(self.net.set_route(level), self.eval_loader).top1 for level in (0, self.net.num_levels - 1)]
        self.net.set_route(0)
        return {"epoch": stats.epoch, "lr": round(stats.lr, 8), "train_loss": round(stats.loss, 6),
                "train_top1_densest": round(stats.top1, 4), "eval_split": self.eval_split,
                "eval_top1_densest": round(tops[0], 4), "eval_top1_sparsest": round(tops[1], 4)}

    def summary(self, row: dict[str, Any]) -> str:
        return (f"epoch {row['epoch']}/{self.cfg.epochs}: train loss {row['train_loss']:.4f} | {row['eval_split']} "
                f"top-1 densest {row['eval_top1_densest']:.2f}% sparsest {row['eval_top1_sparsest']:.2f}%")


def save_nested(net: NestedSparseNet, meta: ModelMeta, folder: Path, *, config: dict[str, Any]) -> None:
    atomic_write_json(folder / SPEC, {"format": NESTED_FORMAT, "dense_meta": meta.to_dict(),
                                      "sparsities": list(net.sparsities), "layers": net.layers,
                                      "calibrated_routes": [list(r.levels) for r in net.route_stats], "config": config})
    save_state_dict(net, folder / WEIGHTS, metadata={"format": NESTED_FORMAT})
    write_folder_manifest(folder, kind="nested", spec_format=NESTED_FORMAT)


def load_nested(folder: str | Path) -> tuple[NestedSparseNet, dict[str, Any]]:
    folder = Path(folder)
    spec = read_folder_spec(folder / SPEC, what="nested", fmt=NESTED_FORMAT)
    state = read_folder_weights(folder, WEIGHTS)
    try:
        meta = ModelMeta.from_dict(spec["dense_meta"])
        levels = [state[f"keep_levels_{i}"] for i in range(len(spec["layers"]))]
        net = NestedSparseNet(build_from_meta(meta), spec["sparsities"], layers=spec["layers"], keep_levels=levels)
        for route in spec.get("calibrated_routes", []):
            net.add_route_stats(Route(tuple(route)))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise CheckpointError(f"{folder / SPEC}: malformed nested spec ({exc!r})") from None
    load_weights(net, state, source=str(folder / WEIGHTS))
    net.meta = meta
    return net.eval(), spec


def evaluate_routes(net: NestedSparseNet, loader: Any, input_shape: tuple[int, ...], routes: list[Route],
                    *, dense_params: int, progress: bool = False) -> list[dict[str, Any]]:
    rows = []
    for route in routes:
        net.set_route(route)
        result = evaluate(net, loader, progress=progress, desc=route.label())
        cost = route_cost(net, input_shape, route)
        rows.append({"route": route.label(), "levels": list(route.levels), "calibrated": route in net.route_stats,
                     "top1": round(result.top1, 4),
                     "params": cost.params, "macs": cost.macs, "params_fraction": cost.params / dense_params})
    net.set_route(0)
    return rows


def train_nested(checkpoint: str | Path, cfg: NestedConfig, out: str | Path, *, arch: str | None = None,
                 resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Mask ``checkpoint``'s dense model at every level, train all levels jointly, evaluate every default
    route; writes the folder ``out`` and returns its report."""
    out = Path(out)
    if cfg.dataset is None:
        raise ConfigError("--dataset is required")
    ctx = start_run(cfg, out, resume=resume)
    dense, info = load_dense_for(checkpoint, dataset=cfg.dataset, arch=arch)
    meta = dense.meta
    train_set, eval_set, eval_split = cfg.load_data(cfg.dataset, cfg.data_root)
    check_classes(meta, train_set, cfg.dataset)
    torch.manual_seed(cfg.seed)
    net = NestedSparseNet(copy.deepcopy(dense), cfg.sparsities).to(ctx.device)
    net.meta = meta
    teacher = dense.to(ctx.device).eval() if cfg.distill_weight > 0 else None
    loader, eval_loader = cfg.loaders(info, train_set, eval_set, mean=meta.mean, std=meta.std,
                                      rank=ctx.dist.rank, world_size=ctx.dist.world_size,
                                      device=ctx.device)
    source = {"checkpoint": str(Path(checkpoint).resolve()), "arch": meta.arch, "dataset": cfg.dataset,
              "data_root": str(Path(cfg.data_root).resolve()) if cfg.data_root else None}
    method = NestedTraining(net, cfg, teacher=teacher, eval_loader=eval_loader, eval_split=eval_split,
                            source=source)
    fit(method, cfg, ctx, loader, epochs=cfg.epochs, progress=progress)
    net.cpu()
    dense.cpu()
    if not ctx.dist.is_main:  # under torchrun, rank 0 alone calibrates, evaluates and writes
        return {}
    routes = default_routes(net)
    if cfg.calibration_batches:
        loader.set_epoch(cfg.epochs)  # a seeded order no training epoch used
        for route in routes:
            if len(set(route.levels)) > 1:
                calibrate_route(net, route, (x for x, _ in itertools.islice(loader, cfg.calibration_batches)))
    net.eval()
    save_nested(net, meta, out, config={**config_to_dict(cfg), "source": source})
    report = nested_report(net, dense, eval_loader, eval_set.input_shape, routes, dataset=cfg.dataset,
                           split=eval_split, epochs=cfg.epochs, progress=progress)
    atomic_write_json(out / "report.json", report)
    return report


def nested_report(net: NestedSparseNet, dense: nn.Module | None, loader: Any, input_shape: tuple[int, ...],
                  routes: list[Route], *, dataset: str, split: str, epochs: int, progress: bool = False
                  ) -> dict[str, Any]:
    """Every route's Top-1 and costs on ``loader``, the storage of all levels, and the dense model beside them
    (``dense_top1`` is ``None`` without it)."""
    dense_params = count_params(build_from_meta(net.meta))
    rows = evaluate_routes(net, loader, input_shape, routes, dense_params=dense_params, progress=progress)
    storage = storage_cost(net)
    dense_top1 = None if dense is None else round(evaluate(dense, loader).top1, 4)
    return {"method": "nested", "dataset": dataset, "eval_split": split, "sparsities": list(net.sparsities),
            "dense_top1": dense_top1, "dense_params": dense_params,
            "routes": rows, "storage_bytes": storage.total, "storage": vars(storage) | {"total": storage.total},
            "dense_bytes": dense_params * 4, "epochs": epochs}


def evaluate_nested_folder(folder: str | Path, *, dataset: str | None = None, data_root: str | None = None,
                           split: str = "test", batch_size: int = 256, progress: bool = False) -> dict[str, Any]:
    """:func:`nested_report` of the nested net in ``folder`` for its default routes (`sigmab eval`)."""
    folder = Path(folder)
    net, spec = load_nested(folder)
    config = dict(spec.get("config") or {})
    source = recorded_source(folder, config.get("source"))
    dataset, data, loader = folder_eval_data(source, net.meta, what="nested", dataset=dataset, data_root=data_root,
                                             split=split, val_fraction=float(config.get("val_fraction", 0.0)),
                                             seed=int(config.get("seed", 0)), batch_size=batch_size)
    checkpoint = source.get("checkpoint")
    dense = load_model(checkpoint, arch=source.get("arch")) if checkpoint and Path(checkpoint).is_file() else None
    return nested_report(net, dense, loader, data.input_shape, default_routes(net), dataset=dataset, split=split,
                         epochs=int(config.get("epochs", 0)), progress=progress)


def format_nested_report(report: dict[str, Any], folder: str | Path) -> str:
    dense = "n/a" if report["dense_top1"] is None else f"{report['dense_top1']:.2f}%"
    lines = [f"dense: {report['eval_split']} top-1 {dense} | {report['dense_params']:,} params | "
             f"{report['dense_bytes']:,} bytes",
             f"{'route':<12} {'top-1':>8} {'params':>10} {'of dense':>9} {'MACs':>14}"]
    lines += [f"{r['route']:<12} {r['top1']:>7.2f}% {r['params']:>10,} {100 * r['params_fraction']:>8.1f}% "
              f"{r['macs']:>14,.0f}" for r in report["routes"]]
    lines.append(f"storage of every level: {report['storage_bytes']:,} bytes | folder {folder}")
    return "\n".join(lines)
