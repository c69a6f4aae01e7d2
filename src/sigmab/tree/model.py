"""The SigmaB-Net: a shared backbone, binary routers and channel-sliced nodes; one path per input.

Naming: node ``n<bits>`` is reached by the router decisions ``<bits>`` (``n0``, ``n01``...);
router ``r<bits>`` sits at the end of the backbone (``r``) or of inner node ``n<bits>``. Leaves
are the nodes at full depth and end with the classifier head.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def pooled(x: torch.Tensor) -> torch.Tensor:
    """Global average over every dim after the channel dim: (N, C, ...) -> (N, C)."""
    return x.flatten(2).mean(2)


class Router(nn.Module):
    """(N, C, ...) stream -> (N, 2) logits: pooled features, L2 normalisation, a 2-row linear map."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.proj = nn.Linear(channels, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.normalize(pooled(x), dim=1))

    @torch.no_grad()
    def init_from_clusters(self, features: torch.Tensor, centroids: torch.Tensor, labels: torch.Tensor,
                           *, scale: float) -> None:
        """Rows = ``scale`` x centroids; the bias sets the decision threshold so that argmax reproduces
        ``labels`` (a threshold rule on the cosine margin, also under the balance constraint)."""
        f = F.normalize(features.double(), dim=1)
        c = centroids.double()
        margin = f @ (c[0] - c[1])
        lo = margin[labels == 1].max() if bool((labels == 1).any()) else margin.min() - 1
        hi = margin[labels == 0].min() if bool((labels == 0).any()) else margin.max() + 1
        threshold = float((lo + hi) / 2) if lo < hi else 0.0
        self.proj.weight.copy_(scale * c.float())
        self.proj.bias.copy_(torch.tensor([-scale * threshold / 2, scale * threshold / 2]))


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


def leaf_names(depth: int) -> list[str]:
    return ["n" + format(i, f"0{depth}b") for i in range(2**depth)]


class SigmaBTree(nn.Module):
    """Backbone, routers and nodes; ``forward`` runs hard single-path inference."""

    def __init__(self, backbone: nn.Module, nodes: dict[str, nn.Module], routers: dict[str, Router],
                 depth: int) -> None:
        super().__init__()
        self.depth = depth
        self.backbone = backbone
        self.nodes = nn.ModuleDict(nodes)
        self.routers = nn.ModuleDict(routers)
        self.leaves = leaf_names(depth)

    def path_keys(self, leaf: str) -> tuple[list[str], list[str]]:
        """(node keys, router keys) on the path to ``leaf``, root first."""
        bits = leaf[1:]
        return [f"n{bits[:d]}" for d in range(1, self.depth + 1)], [f"r{bits[:d]}" for d in range(self.depth)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_hard(x)[0]

    def forward_hard(self, x: torch.Tensor, router_logits: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Argmax routing: returns logits (N, K) in input order and leaf ids (N,) (index into ``leaves``).

        If ``router_logits`` is a dict, it receives, per router, (input rows, raw logits) of the inputs
        that passed it (used by the routing anchor in training).
        """
        h = self.backbone(x)
        if x.shape[0] == 1 and router_logits is None:  # batch of one: walk the path, no grouping or scatter
            bits = ""
            for _ in range(self.depth):
                bits += str(int(self.routers[f"r{bits}"](h).argmax(1)))
                h = self.nodes[f"n{bits}"](h)
            return h, torch.tensor([int(bits, 2)], device=x.device)
        n = x.shape[0]
        logits: torch.Tensor | None = None
        leaf_ids = torch.empty(n, dtype=torch.long, device=x.device)
        stack = [("", h, torch.arange(n, device=x.device))]
        while stack:
            bits, h, index = stack.pop()
            raw = self.routers[f"r{bits}"](h)
            if router_logits is not None:
                router_logits[f"r{bits}"] = (index, raw)
            choice = raw.argmax(1)
            # One gather puts each branch's inputs next to each other; the groups are then views.
            order = torch.argsort(choice, stable=True)
            counts = torch.bincount(choice, minlength=2).tolist()
            groups = zip(h.index_select(0, order).split(counts), index.index_select(0, order).split(counts))
            for branch, (h_branch, rows) in enumerate(groups):
                if rows.numel() == 0:
                    continue
                child = f"{bits}{branch}"
                out = self.nodes[f"n{child}"](h_branch)
                if len(child) < self.depth:
                    stack.append((child, out, rows))
                    continue
                if logits is None:
                    logits = out.new_empty(n, out.shape[1])
                logits.index_copy_(0, rows, out)
                leaf_ids.index_fill_(0, rows, int(child, 2))
        assert logits is not None
        return logits, leaf_ids

    def forward_path(self, x: torch.Tensor, leaf: str) -> torch.Tensor:
        """Run every input through the path to ``leaf``, ignoring the routers: (N, K)."""
        h = self.backbone(x)
        for key in self.path_keys(leaf)[0]:
            h = self.nodes[key](h)
        return h

    def forward_soft(self, x: torch.Tensor, temperature: float = 1.0) -> SoftOutput:
        """All nodes on all inputs; leaf probability = product of router softmaxes on its path."""
        level = [("", self.backbone(x), x.new_zeros(x.shape[0]))]
        router_probs: dict[str, torch.Tensor] = {}
        router_logits: dict[str, torch.Tensor] = {}
        for _ in range(self.depth):
            nxt = []
            for bits, h, log_p in level:
                router_logits[f"r{bits}"] = raw = self.routers[f"r{bits}"](h)
                log_probs = F.log_softmax(raw / temperature, dim=1)
                router_probs[f"r{bits}"] = log_probs.exp()
                for branch in (0, 1):
                    nxt.append((f"{bits}{branch}", self.nodes[f"n{bits}{branch}"](h), log_p + log_probs[:, branch]))
            level = nxt
        return SoftOutput(torch.stack([h for _, h, _ in level]), torch.stack([p for _, _, p in level], 1),
                          router_probs, router_logits)

    @torch.no_grad()
    def router_decisions(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every router's argmax (N,) on every input, and ``reach`` masks: ``reach[r]`` (N,) is True for the
        inputs whose hard path passes router ``r``."""
        decisions: dict[str, torch.Tensor] = {}
        level = [("", self.backbone(x), torch.ones(x.shape[0], dtype=torch.bool, device=x.device))]
        for _ in range(self.depth):
            nxt = []
            for bits, h, reach in level:
                choice = self.routers[f"r{bits}"](h).argmax(1)
                decisions[f"r{bits}"], decisions[f"reach:r{bits}"] = choice, reach
                if len(bits) + 1 < self.depth:
                    nxt += [(f"{bits}{b}", self.nodes[f"n{bits}{b}"](h), reach & (choice == b)) for b in (0, 1)]
            level = nxt
        return decisions


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
