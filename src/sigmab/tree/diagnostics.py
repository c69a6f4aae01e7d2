"""Where a tree's Top-1 drop comes from: leaf capacity or routing.

Every leaf is run on every input (soft mode, evaluation statistics), so that for one pass over the
data we know, per input, which leaves classify it correctly, which leaf hard routing picks, and
whether the dense model is right. Two numbers then say what limits the tree:

- the **leaf gap** of leaf ``l``: its share of inputs times (dense Top-1 - leaf Top-1) on the inputs
  routed to it. The gaps add up exactly to the tree's drop from dense, so they say which leaves
  lose the accuracy;
- the **routing headroom**: oracle Top-1 (some leaf is right) minus routed Top-1, the most better
  routing could recover with the same leaves.

Two more say how much of that headroom any router could reach: **disagreement**, the share of inputs
on which the leaves do not all predict the same class (only there can routing matter), and
**confident Top-1**, where each input takes the leaf most confident in its own answer (highest
softmax maximum), a selector that has seen every leaf's output, so an optimistic bound for a router
that decides before any leaf runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from sigmab.errors import DataError
from sigmab.routing import routed_leaves
from sigmab.tree.model import SigmaBTree
from sigmab.utils.progress import progress_bar

__all__ = ["LeafDiagnosis", "RoutingDiagnosis", "diagnose_routing", "routed_leaves"]


@dataclass(frozen=True)
class LeafDiagnosis:
    """One leaf: ``top1`` and ``dense_top1`` on the inputs routed to it, ``top1_all`` on every input,
    ``gap_pp`` its contribution to the tree's Top-1 drop (percentage points of overall Top-1)."""

    leaf: str
    share: float
    top1: float | None
    dense_top1: float | None
    top1_all: float
    gap_pp: float


@dataclass(frozen=True)
class RoutingDiagnosis:
    n_samples: int
    top1: float
    dense_top1: float
    oracle_top1: float
    leaves: list[LeafDiagnosis]
    confident_top1: float
    disagreement: float

    @property
    def routing_headroom_pp(self) -> float:
        return self.oracle_top1 - self.top1

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "routing_headroom_pp": self.routing_headroom_pp}


@torch.inference_mode()
def diagnose_routing(tree: SigmaBTree, dense: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *,
                     progress: bool = False) -> RoutingDiagnosis:
    """Run the tree (all leaves) and the dense model over ``batches`` of (images (N, C, H, W), labels (N,))."""
    modes = (tree.training, dense.training)
    tree.eval()
    dense.eval()
    n_leaves = len(tree.leaves)
    counts = torch.zeros(n_leaves, dtype=torch.long)
    routed_hits = torch.zeros(n_leaves, dtype=torch.long)
    dense_hits = torch.zeros(n_leaves, dtype=torch.long)
    all_hits = torch.zeros(n_leaves, dtype=torch.long)
    oracle_hits = confident_hits = disagree = 0
    try:
        for x, y in progress_bar(batches, enabled=progress, desc="diagnose"):
            soft = tree.forward_soft(x)
            hits = soft.leaf_logits.argmax(2) == y[None]  # (L, N)
            leaf = routed_leaves(soft.router_logits, tree.depth)
            rows = torch.arange(x.shape[0])
            counts += torch.bincount(leaf, minlength=n_leaves)
            routed_hits += torch.bincount(leaf, weights=hits[leaf, rows].double(), minlength=n_leaves).long()
            dense_right = (dense(x).argmax(1) == y).double()
            dense_hits += torch.bincount(leaf, weights=dense_right, minlength=n_leaves).long()
            all_hits += hits.sum(1)
            oracle_hits += int(hits.any(0).sum())
            confident = soft.leaf_logits.softmax(2).amax(2).argmax(0)  # (N,) the surest leaf per input
            confident_hits += int(hits[confident, rows].sum())
            predictions = soft.leaf_logits.argmax(2)  # (L, N)
            disagree += int((predictions != predictions[:1]).any(0).sum())
    finally:
        tree.train(modes[0])
        dense.train(modes[1])
    n = int(counts.sum())
    if n == 0:
        raise DataError("diagnose_routing() got no samples: the split to evaluate is empty")

    def pct(hit: torch.Tensor | int, total: torch.Tensor | int) -> float | None:
        return 100.0 * float(hit) / float(total) if int(total) else None

    leaves = [LeafDiagnosis(name, float(counts[i]) / n, pct(routed_hits[i], counts[i]), pct(dense_hits[i], counts[i]),
                            100.0 * float(all_hits[i]) / n, 100.0 * float(dense_hits[i] - routed_hits[i]) / n)
              for i, name in enumerate(tree.leaves)]
    return RoutingDiagnosis(n, 100.0 * float(routed_hits.sum()) / n, 100.0 * float(dense_hits.sum()) / n,
                            100.0 * oracle_hits / n, leaves, 100.0 * confident_hits / n, 100.0 * disagree / n)
