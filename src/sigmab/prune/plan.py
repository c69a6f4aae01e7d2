"""Static structured pruning: score every channel group with one criterion, keep the best channels.

The keep ratio is uniform over groups (``keep_ratio``), or found by bisection so that the pruned
network has ``target_reduction`` fewer parameters than dense; ``group_keep`` fixes the ratio of
named groups (per-layer ratios, e.g. ``{"layer3.0:conv1": 0.5}``) and the rest follow the uniform one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from sigmab.config import option
from sigmab.errors import ConfigError
from sigmab.eval import count_params
from sigmab.graph import BlockChannels, Decomposition, decompose
from sigmab.graph.groups import SCOPES, ChannelGroup, channel_groups, input_stage, stem_joins_first_stage
from sigmab.importance import get_importance, top_channels
from sigmab.importance.calibrate import CalibrationStats, calibrate
from sigmab.importance.filters import CRITERIA, get_criterion
from sigmab.models import ModelMeta
from sigmab.models.meta import meta_of
from sigmab.prune.spec import PrunedNet, PrunedSpec, build_from_decomposition


@dataclass
class PruneConfig:
    criterion: str = option("l1", "channel importance: activation, fpgm, hrank, l1")
    scope: str = option(
        "inner",
        "'inner': only the channels inside blocks (as published CIFAR results); 'all': residual streams too")
    keep_ratio: float | None = option(None, "fraction of each group's channels to keep")
    target_reduction: float | None = option(
        None, "prune to this fraction fewer parameters than dense (finds the uniform keep ratio)")
    group_keep: dict[str, float] = option(
        factory=dict, help="per-group keep ratios as YAML: '<block>:conv1' names a block's inner channels, "
        "'stage<k>' a residual stream, e.g. '{layer3.0:conv1: 0.5, stage3: 0.75}'")
    calib_size: int = option(500, "training images for data-driven criteria (HRank)")
    calib_batch_size: int = option(100, "calibration batch size")

    def __post_init__(self) -> None:
        CRITERIA.get(self.criterion)  # an unknown name is one error listing the known ones
        if self.scope not in SCOPES:
            raise ConfigError(f"unknown pruning scope {self.scope!r}; known: {', '.join(SCOPES)}")
        if (self.keep_ratio is None) == (self.target_reduction is None):
            raise ConfigError("give exactly one of keep_ratio and target_reduction")
        if self.keep_ratio is not None and not 0 < self.keep_ratio <= 1:
            raise ConfigError("keep_ratio must be in (0, 1]")
        if self.target_reduction is not None and not 0 <= self.target_reduction < 1:
            raise ConfigError("target_reduction must be in [0, 1)")
        if not isinstance(self.group_keep, dict) or not all(0 < float(v) <= 1 for v in self.group_keep.values()):
            raise ConfigError("group_keep must map group names to ratios in (0, 1]")
        if self.calib_size < 1 or self.calib_batch_size < 1:
            raise ConfigError("calib_size and calib_batch_size must be >= 1")




def group_statistics(dec: Decomposition, groups: list[ChannelGroup],
                     stats: CalibrationStats) -> dict[str, torch.Tensor]:
    """Per group, the calibration statistic averaged over images (and over the blocks of a stream): (size,)."""
    out = {}
    for g in groups:
        if g.kind == "inner":
            out[g.name] = stats.inner_importance[g.blocks[0]][g.inner_key].mean(0)
        else:
            out[g.name] = torch.stack([stats.out_importance[b].mean(0) for b in g.blocks]).mean(0)
    return out


@dataclass
class PrunePlan:
    """Channel scores of every group of a decomposed dense model; ``spec(ratio)`` keeps the best."""

    dec: Decomposition
    groups: list[ChannelGroup]
    scores: dict[str, torch.Tensor]
    group_keep: dict[str, float]
    dense_meta: ModelMeta
    config: dict[str, Any]

    def keep_ratios(self, uniform: float) -> dict[str, float]:
        return {g.name: float(self.group_keep.get(g.name, uniform)) for g in self.groups}

    def spec(self, uniform: float) -> PrunedSpec:
        ratios = self.keep_ratios(uniform)
        keep = {g.name: top_channels(self.scores[g.name], ratios[g.name], g.divisions) for g in self.groups}
        dec = self.dec
        stream = [keep.get(f"stage{s + 1}", torch.arange(dec.widths[dec.stages.index(s)]))
                  for s in range(max(dec.stages) + 1)]
        stem = stream[0] if stem_joins_first_stage(dec) else torch.arange(dec.stem_width)
        blocks = []
        for b in range(len(dec.blocks)):
            inner = {g.inner_key: keep[g.name] for g in self.groups if g.kind == "inner" and g.blocks == (b,)}
            source = input_stage(dec, b)
            blocks.append(BlockChannels(stem if source is None else stream[source], stream[dec.stages[b]], inner))
        return PrunedSpec(self.dense_meta, stem.tolist(), blocks, stream[-1].tolist(),
                          {**self.config, "uniform_keep": uniform})

    def build(self, uniform: float) -> tuple[PrunedNet, PrunedSpec]:
        spec = self.spec(uniform)
        return build_from_decomposition(self.dec, spec), spec


def plan_pruning(model: nn.Module, cfg: PruneConfig, images: torch.Tensor | None = None, *,
                 progress: bool = False) -> PrunePlan:
    """Score the channel groups of ``model`` by ``cfg.criterion``; ``images`` (N, C, H, W) feed data-driven ones."""
    dec = decompose(model)
    groups = channel_groups(dec, cfg.scope)  # type: ignore[arg-type]
    unknown = sorted(set(cfg.group_keep) - {g.name for g in groups})
    if unknown:
        raise ConfigError(f"group_keep names unknown groups {unknown}; groups are e.g. {groups[0].name}")
    criterion = get_criterion(cfg.criterion)
    stats: dict[str, torch.Tensor] = {}
    if criterion.statistic is not None:
        if images is None:
            raise ConfigError(f"the {cfg.criterion} criterion needs calibration images")
        statistic = get_importance(criterion.statistic)
        calib = calibrate(dec, images.split(cfg.calib_batch_size), statistic, progress=progress)
        stats = group_statistics(dec, groups, calib)
    scores = {g.name: criterion.scores(g, stats.get(g.name)) for g in groups}
    return PrunePlan(dec, groups, scores, dict(cfg.group_keep), meta_of(model, images), dict(vars(cfg)))


def solve_keep_ratio(param_count: Callable[[float], int], budget: int, *, steps: int = 30) -> float:
    """The largest uniform keep ratio whose network has at most ``budget`` parameters (bisection).

    ``param_count`` is non-decreasing in the ratio; if even the smallest network exceeds the budget,
    the request cannot be met and is refused.
    """
    lo, hi = 1e-3, 1.0
    if param_count(hi) <= budget:
        return hi
    if param_count(lo) > budget:
        raise ConfigError(f"no uniform keep ratio reaches {budget:,} parameters with this scope and group_keep; "
                          "widen the scope (--scope all) or lower the target")
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if param_count(mid) <= budget else (lo, mid)
    return lo


def prune(model: nn.Module, cfg: PruneConfig, images: torch.Tensor | None = None, *,
          progress: bool = False) -> tuple[PrunedNet, PrunedSpec]:
    """The physically pruned network and its spec, at ``keep_ratio`` or at ``target_reduction``."""
    plan = plan_pruning(model, cfg, images, progress=progress)
    uniform = cfg.keep_ratio
    if uniform is None:
        assert cfg.target_reduction is not None
        budget = int((1.0 - cfg.target_reduction) * count_params(model))
        uniform = solve_keep_ratio(lambda r: count_params(plan.build(r)[0]), budget)
    return plan.build(uniform)
