"""Shared gradients: leaves that specialise on their own inputs yet still learn from every input.

Under hard routing each input trains only the leaf it reaches, so a leaf learns from its share of the data.
With sharing ``beta`` every node's gradient becomes ``(1 - beta) * own + beta * sum over the nodes at its
depth``: the sum is what one network with those weights would receive from the whole batch. ``beta = 0`` is
plain hard routing; ``beta = 1`` gives every node the same update, so nodes that start equal (a tree split
from a static prune) stay equal: the static prune, trained on every input. Between the two, each node is the
shared solution plus a specialisation learnt from its own inputs, at the compute of hard routing.

Only nodes that keep the same channels can share: the i-th weight of one must mean what it means in the other.
"""

from __future__ import annotations

import torch
from torch import nn

from sigmab.errors import ConfigError
from sigmab.tree.model import SigmaBTree
from sigmab.tree.spec import TreeSpec

#: Per depth and position, the parameters of every node at that depth: [(param of node 1, param of node 2, ...)].
TiedGroups = list[tuple[nn.Parameter, ...]]


def tied_parameters(tree: SigmaBTree, spec: TreeSpec) -> TiedGroups:
    """Per depth, the nodes' parameters position by position; a clear error unless every node at a depth keeps
    the same channels (as in a tree split from a prune, ``sigmab convert --from-pruned``)."""
    groups: TiedGroups = []
    for depth in range(1, tree.depth + 1):
        keys = sorted(k for k in spec.nodes if len(k) - 1 == depth)
        first = spec.nodes[keys[0]].to_json()
        differ = [k for k in keys[1:] if spec.nodes[k].to_json() != first]
        if differ:
            raise ConfigError(f"shared gradients need every node at depth {depth} to keep the same channels; "
                              f"{', '.join(differ)} differ from {keys[0]} (split a prune with `sigmab convert "
                              "--from-pruned` and its default --from-pruned-channels prune)")
        params = [list(tree.nodes[k].parameters()) for k in keys]
        groups.extend(tuple(ps) for ps in zip(*params, strict=True))
    return groups


@torch.no_grad()
def share_gradients(groups: TiedGroups, beta: float) -> None:
    """In place, after the backward pass: ``grad_i <- (1 - beta) * grad_i + beta * sum_j grad_j`` in every group
    (a node that no input reached has no gradient: zero). Parameters that do not train are left alone."""
    for params in groups:
        if not params[0].requires_grad:
            continue
        grads = [p.grad for p in params]
        present = [g for g in grads if g is not None]
        if not present:
            continue
        total = torch.stack(present).sum(0)
        for p, g in zip(params, grads):
            p.grad = beta * total if g is None else g.mul_(1.0 - beta).add_(total, alpha=beta)
