"""The SigmaB-Net: a shared backbone, binary routers and channel-sliced nodes; one path per input.

Units are named as in :mod:`sigmab.routing.names`; leaves are the nodes at full depth and end with
the classifier head. Every forward routes through :mod:`sigmab.routing.walk`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sigmab.routing import (
    RouterModule,
    choose_branch,
    leaf_names,
    path_keys,
    path_log_probs,
    reach_masks,
    walk_all,
    walk_hard,
)
from sigmab.routing.names import is_router
from sigmab.routing.walk import RouterRecord


@dataclass
class SoftOutput:
    """``leaf_logits`` (L, N, K), ``leaf_log_probs`` (N, L) log path probabilities,
    ``router_probs`` name -> (N, 2) at the temperature used, ``router_logits`` name -> (N, 2) raw."""

    leaf_logits: torch.Tensor
    leaf_log_probs: torch.Tensor
    router_probs: dict[str, torch.Tensor]
    router_logits: dict[str, torch.Tensor]

    @property
    def leaf_probs(self) -> torch.Tensor:
        return self.leaf_log_probs.exp()

    def mixture_log_probs(self) -> torch.Tensor:
        """log sum_l p_l softmax(z_l): (N, K), computed in log space."""
        log_p = F.log_softmax(self.leaf_logits, dim=2)  # (L, N, K)
        return torch.logsumexp(log_p + self.leaf_log_probs.T[:, :, None], dim=0)


class SigmaBTree(nn.Module):
    """Backbone, routers and nodes; ``forward`` runs hard single-path inference."""

    def __init__(self, backbone: nn.Module, nodes: dict[str, nn.Module], routers: dict[str, RouterModule],
                 depth: int) -> None:
        super().__init__()
        self.depth = depth
        self.backbone = backbone
        self.nodes = nn.ModuleDict(nodes)
        self.routers = nn.ModuleDict(routers)
        self.leaves = leaf_names(depth)

    def path_keys(self, leaf: str) -> tuple[list[str], list[str]]:
        """(node keys, router keys) on the path to ``leaf``, root first."""
        return path_keys(leaf)

    def run_unit(self, key: str, h: torch.Tensor) -> torch.Tensor:
        """Router or node ``key`` on the stream ``h``: the ``run`` of every routing walk over this tree."""
        return (self.routers if is_router(key) else self.nodes)[key](h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_hard(x)[0]

    def forward_hard(self, x: torch.Tensor, router_logits: RouterRecord | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Argmax routing: returns logits (N, K) in input order and leaf ids (N,) (index into ``leaves``).

        If ``router_logits`` is a dict, it receives, per router, (input rows, raw logits) of the inputs
        that passed it (used by the routing anchor in training).
        """
        return walk_hard(self.backbone(x), self.depth, self.run_unit, record=router_logits)

    def forward_path(self, x: torch.Tensor, leaf: str) -> torch.Tensor:
        """Run every input through the path to ``leaf``, ignoring the routers: (N, K)."""
        h = self.backbone(x)
        for key in self.path_keys(leaf)[0]:
            h = self.nodes[key](h)
        return h

    def forward_soft(self, x: torch.Tensor, temperature: float = 1.0) -> SoftOutput:
        """All nodes on all inputs; leaf probability = product of router softmaxes on its path."""
        router_logits, leaf_logits = walk_all(self.backbone(x), self.depth, self.run_unit)
        leaf_log_probs, router_probs = path_log_probs(router_logits, self.depth, temperature)
        return SoftOutput(torch.stack(leaf_logits), leaf_log_probs, router_probs, router_logits)

    @torch.no_grad()
    def router_decisions(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every router's argmax (N,) on every input, and ``reach`` masks: ``reach[r]`` (N,) is True for the
        inputs whose hard path passes router ``r``."""
        router_logits, _ = walk_all(self.backbone(x), self.depth, self.run_unit, leaves=False)
        decisions = {key: choose_branch(z) for key, z in router_logits.items()}
        reach = reach_masks(decisions, self.depth)
        return decisions | {f"reach:{key}": mask for key, mask in reach.items()}


class PathModel(nn.Module):
    """One root-to-leaf path as a plain model (backbone, its nodes and routers): (N, ...) -> (N, K).

    The routers on the path run too (their decisions are unused here), so counting this module
    counts everything a single inference touches.
    """

    def __init__(self, tree: SigmaBTree, leaf: str) -> None:
        super().__init__()
        node_keys, router_keys = tree.path_keys(leaf)
        self.backbone = tree.backbone
        self.nodes = nn.ModuleList(tree.nodes[k] for k in node_keys)
        self.routers = nn.ModuleList(tree.routers[k] for k in router_keys)
        self.training = tree.training  # the tree's mode; a new module would claim training=True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.backbone(x)
        for router, node in zip(self.routers, self.nodes):
            router(h)
            h = node(h)
        return h
