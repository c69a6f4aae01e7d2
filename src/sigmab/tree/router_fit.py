"""Routers trained to send each input to the leaf that serves it best.

k-means routers split the inputs by how their early features look, which need not follow what each
leaf is good at. Here one pass over training inputs runs every leaf on every input (the all-routes
walk) and keeps, per router, the pooled stream it reads, and per input, every leaf's loss. Router
``r<bits>``'s target for an input is the branch holding the lower-loss leaf below it; a router of the
chosen kind (registry: :mod:`sigmab.routing.routers`) is trained on the frozen features by cross-entropy,
each input weighted by how much the choice matters (the loss gap between the branches), so inputs that
both branches serve equally well do not pull the decision.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from sigmab.errors import ConfigError
from sigmab.routing import RouterSpec, build_router, pooled, routed_leaves, walk_all
from sigmab.routing.names import children, is_router, router_bits, router_key
from sigmab.tree.model import SigmaBTree
from sigmab.tree.spec import TreeSpec
from sigmab.utils.progress import progress_bar


@dataclass(frozen=True)
class RoutingData:
    """Per router, the pooled stream it reads (N, C); every leaf's loss (N, L) and predicted class (N, L);
    labels (N,)."""

    features: dict[str, torch.Tensor]
    leaf_losses: torch.Tensor
    leaf_predictions: torch.Tensor
    labels: torch.Tensor

    @property
    def leaf_correct(self) -> torch.Tensor:
        """(N, L) whether each leaf classifies each input correctly."""
        return self.leaf_predictions == self.labels[:, None]


@torch.inference_mode()
def collect_routing_data(tree: SigmaBTree, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *,
                         progress: bool = False) -> RoutingData:
    """Run every leaf of ``tree`` (eval mode) on ``batches`` of (inputs (N, ...), labels (N,))."""
    was_training = tree.training
    tree.eval()
    features: dict[str, list[torch.Tensor]] = {}
    losses, predictions, labels = [], [], []
    try:
        for x, y in progress_bar(batches, enabled=progress, desc="leaf losses"):
            def run(key: str, h: torch.Tensor) -> torch.Tensor:
                if is_router(key):
                    features.setdefault(key, []).append(pooled(h).float().cpu())
                return tree.run_unit(key, h)

            _, leaf_logits = walk_all(tree.backbone(x), tree.depth, run)
            losses.append(torch.stack([F.cross_entropy(z, y, reduction="none") for z in leaf_logits], 1).cpu())
            predictions.append(torch.stack([z.argmax(1) for z in leaf_logits], 1).cpu())
            labels.append(y.cpu())
    finally:
        tree.train(was_training)
    if not labels:
        raise ConfigError("collect_routing_data() got no batches")
    return RoutingData({k: torch.cat(v) for k, v in features.items()}, torch.cat(losses), torch.cat(predictions),
                       torch.cat(labels))


def branch_targets(leaf_losses: torch.Tensor, depth: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Router key -> (target branch (N,), weight (N,)): the branch whose best leaf has the lower loss, weighted by
    the gap between the two branches' best losses. ``leaf_losses`` (N, 2**depth), leaves in index order."""
    out = {}
    for bits in router_bits(depth):
        best = []
        for child in children(bits):
            span = 2 ** (depth - len(child))
            first = int(child, 2) * span
            best.append(leaf_losses[:, first : first + span].min(1).values)
        out[router_key(bits)] = ((best[1] < best[0]).long(), (best[1] - best[0]).abs())
    return out


def train_router(spec: RouterSpec, features: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor, *,
                 epochs: int = 30, lr: float = 1e-2, batch_size: int = 512, seed: int = 0) -> Any:
    """A new router of ``spec`` trained on pooled ``features`` (N, C) to predict ``targets`` (N,) by weighted
    cross-entropy (Adam); returns it in eval mode."""
    if features.shape[0] != targets.shape[0] or features.shape[1] != spec.in_channels:
        raise ConfigError(f"router features {tuple(features.shape)} do not fit {spec.in_channels} channels")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    router = build_router(spec).train()
    optimizer = torch.optim.Adam(router.parameters(), lr=lr)
    weights = weights / weights.mean().clamp_min(1e-12)
    x = features[:, :, None]  # a router reads a stream (N, C, ...): one position
    n = features.shape[0]
    for _ in range(epochs):
        for rows in torch.randperm(n, generator=generator).split(batch_size):
            loss = (F.cross_entropy(router(x[rows]), targets[rows], reduction="none") * weights[rows]).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return router.eval()


def fit_routers(tree: SigmaBTree, spec: TreeSpec, data: RoutingData, *, kind: str = "mlp",
                settings: dict[str, Any] | None = None, epochs: int = 30, lr: float = 1e-2, seed: int = 0,
                targets: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None) -> dict[str, Any]:
    """Replace every router of ``tree`` (and its entry in ``spec``) by one of ``kind`` trained on ``targets``
    (router key -> (branch (N,), weight (N,)); default: ``data``'s best-leaf targets, :func:`branch_targets`);
    returns routed Top-1, the best-leaf agreement and the oracle on ``data`` before and after."""
    before = _routing_scores(tree, data)
    if targets is None:
        targets = branch_targets(data.leaf_losses, tree.depth)
    missing = sorted(set(data.features) - set(targets))
    if missing:
        raise ConfigError(f"no routing targets for {', '.join(missing)}")
    for key, (branch, weights) in targets.items():
        router_spec = RouterSpec(kind, data.features[key].shape[1], dict(settings or {}))
        tree.routers[key] = train_router(router_spec, data.features[key], branch, weights, epochs=epochs, lr=lr,
                                         seed=seed)
        spec.routers[key] = tree.routers[key].spec()
    return {"before": before, "after": _routing_scores(tree, data)}


@torch.no_grad()
def routed_on(tree: SigmaBTree, data: RoutingData) -> torch.Tensor:
    """(N,) the leaf ``tree``'s routers choose for each input of ``data`` (from its recorded router features)."""
    logits = {key: tree.routers[key](f[:, :, None]) for key, f in data.features.items()}
    return routed_leaves(logits, tree.depth)


@torch.no_grad()
def _routing_scores(tree: SigmaBTree, data: RoutingData) -> dict[str, float]:
    """Routed Top-1, the share of inputs routed to their lowest-loss leaf, and the oracle, on ``data``."""
    leaves = routed_on(tree, data)
    rows = torch.arange(leaves.numel())
    correct = data.leaf_correct
    return {"routed_top1": 100.0 * float(correct[rows, leaves].double().mean()),
            "best_leaf_agreement": 100.0 * float((leaves == data.leaf_losses.argmin(1)).double().mean()),
            "oracle_top1": 100.0 * float(correct.any(1).double().mean()),
            "leaf_shares": [float(s) for s in torch.bincount(leaves, minlength=len(tree.leaves)).double()
                            / leaves.numel()],
            "root_decision_share_1": float((leaves >= len(tree.leaves) // 2).double().mean())}
