"""Losses of soft-routing fine-tuning: the routed per-leaf loss, router balance and the routing anchor."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sigmab.tree.model import SoftOutput


def routed_leaf_loss(soft: SoftOutput, labels: torch.Tensor) -> torch.Tensor:
    """sum_l p_l CE(z_l, y), batch mean; p is detached so routers cannot chase the best leaf."""
    weights = soft.leaf_probs.detach().T  # (L, N)
    ce = torch.stack([F.cross_entropy(z, labels, reduction="none") for z in soft.leaf_logits])  # (L, N)
    return (weights * ce).sum(0).mean()


def balance_loss(router_probs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum over routers of KL(mean routing || target share): keeps routers from collapsing onto one child."""
    total = torch.zeros(())
    for name, probs in router_probs.items():
        q = probs.mean(0).clamp_min(1e-8)
        target = targets[name]
        total = total + (q * (q.log() - target.log())).sum()
    return total


def anchor_loss(router_logits: dict[str, tuple[torch.Tensor | None, torch.Tensor]],
                decisions: dict[str, torch.Tensor], temperature: float = 1.0) -> torch.Tensor:
    """Routing anchor: cross-entropy of each router's logits against its decisions at conversion,
    over the inputs that reached it then, with the logits sharpened by ``temperature`` as the routing is.

    ``router_logits``: name -> (input rows or None for all, logits (n, 2)); ``decisions`` from
    :meth:`SigmaBTree.router_decisions` of the converted tree. Keeps the nodes that feed a router
    from drifting its routing while they train.
    """
    total = torch.zeros(())
    for name, (rows, logits) in router_logits.items():
        target, reach = decisions[name], decisions[f"reach:{name}"]
        if rows is not None:
            target, reach = target[rows], reach[rows]
        if bool(reach.any()):
            total = total + F.cross_entropy(logits[reach] / temperature, target[reach])
    return total
