"""Per-path and per-input costs of a tree: active parameters, MACs and weight bytes.

Routers and leaf heads count as part of a path. Mean figures weight each path by the share of
inputs routed to it, so a tree with equal-size paths still needs the routing histogram.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from sigmab.eval import profile_model
from sigmab.eval.report import BYTES_PER_WEIGHT
from sigmab.tree.model import PathModel, SigmaBTree


@dataclass(frozen=True)
class PathCost:
    leaf: str
    params: int
    macs: int


def path_costs(tree: SigmaBTree, input_shape: Sequence[int]) -> list[PathCost]:
    """Parameters and MACs of every root-to-leaf path (routers included), for one input of ``input_shape``."""
    costs = []
    for leaf in tree.leaves:
        profile = profile_model(PathModel(tree, leaf), input_shape)
        costs.append(PathCost(leaf, profile.params, profile.macs))
    return costs


def cost_summary(tree: SigmaBTree, input_shape: Sequence[int], leaf_share: torch.Tensor | None = None,
                 *, precision: str = "fp32") -> dict:
    """Stored and active (mean/min/max over paths) parameters, mean MACs and weight bytes per inference.

    ``leaf_share`` (L,) is the fraction of inputs per leaf; uniform when not given.
    """
    costs = path_costs(tree, input_shape)
    share = torch.full((len(costs),), 1.0 / len(costs)) if leaf_share is None else leaf_share.double()
    params = torch.tensor([c.params for c in costs], dtype=torch.float64)
    macs = torch.tensor([c.macs for c in costs], dtype=torch.float64)
    mean_params = float((share * params).sum())
    return {
        "stored_params": sum(p.numel() for p in tree.parameters()),
        "active_params_mean": mean_params,
        "active_params_min": int(params.min()),
        "active_params_max": int(params.max()),
        "active_macs_mean": float((share * macs).sum()),
        "weight_bytes_per_inference": mean_params * BYTES_PER_WEIGHT[precision],
        "weight_precision": precision,
        "paths": [asdict(c) for c in costs],
    }
