"""Calibration: one pass of the dense model that records, per sample, what conversion needs.

For every block ``b``: the pooled output (N, C_b) (clustering features at split points), the
importance statistic of the output (N, C_b) (residual-stream channels) and of each inner group
(N, C_g). Runs under ``eval()`` and ``no_grad()`` so no BatchNorm statistic moves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sigmab.graph import Decomposition, block_handler
from sigmab.importance import ActivationImportance
from sigmab.routing import pooled
from sigmab.utils.progress import progress_bar


@dataclass
class CalibrationStats:
    pooled: list[torch.Tensor]  # per block: (N, C_b)
    out_importance: list[torch.Tensor]  # per block: (N, C_b)
    inner_importance: list[dict[str, torch.Tensor]]  # per block, per inner group: (N, C_g)

    @property
    def n_samples(self) -> int:
        return int(self.pooled[0].shape[0])


@torch.no_grad()
def calibrate(dec: Decomposition, batches: Iterable[torch.Tensor], importance: ActivationImportance, *,
              progress: bool = False) -> CalibrationStats:
    """Run ``batches`` of inputs (B, C, H, W) through the decomposed dense model."""
    modules: list[nn.Module] = [dec.stem, *dec.blocks]
    for m in modules:
        m.eval()
    captured: dict[tuple[int, str], torch.Tensor] = {}
    handles = []
    for b, block in enumerate(dec.blocks):
        for group, module in block_handler(block).inner_activations(block).items():
            def hook(_m: nn.Module, _inp: tuple[torch.Tensor, ...], out: torch.Tensor, key=(b, group)) -> None:
                captured[key] = importance.per_sample(F.relu(out))
            handles.append(module.register_forward_hook(hook))
    pooled_parts: list[list[torch.Tensor]] = [[] for _ in dec.blocks]
    out_parts: list[list[torch.Tensor]] = [[] for _ in dec.blocks]
    inner_parts: list[dict[str, list[torch.Tensor]]] = [{} for _ in dec.blocks]
    try:
        for x in progress_bar(batches, enabled=progress, desc="calibration"):
            h = dec.stem(x)
            for b, block in enumerate(dec.blocks):
                h = block(h)
                pooled_parts[b].append(pooled(h))
                out_parts[b].append(importance.per_sample(h))
                for (bb, group), stat in list(captured.items()):
                    if bb == b:
                        inner_parts[b].setdefault(group, []).append(stat)
            captured.clear()
    finally:
        for handle in handles:
            handle.remove()
    return CalibrationStats(
        [torch.cat(p) for p in pooled_parts],
        [torch.cat(p) for p in out_parts],
        [{g: torch.cat(v) for g, v in parts.items()} for parts in inner_parts],
    )
