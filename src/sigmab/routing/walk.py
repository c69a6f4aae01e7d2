"""The one walk from router logits to paths, for every consumer of a tree.

A walk gets the stream after the backbone and ``run(key, h)``, which runs unit ``key`` (a router
``r<bits>`` or a node ``n<bits>``) on a stream ``h`` (N, ...). The eager tree, the routing diagnosis,
training, the export, the onnxruntime runner and the leaf-on-demand runtime all route through
here, so they agree on the decision rule: the branch is the argmax of a router's two logits, ties
going to branch 0.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from sigmab.routing.names import BRANCHES, children, leaf_index, node_key, router_bits, router_key

RunUnit = Callable[[str, torch.Tensor], torch.Tensor]
# router key -> (rows of the batch that reached it (n,), its logits (n, 2))
RouterRecord = dict[str, tuple[torch.Tensor, torch.Tensor]]


def choose_branch(logits: torch.Tensor) -> torch.Tensor:
    """(N, 2) router logits -> (N,) branch; ties go to branch 0."""
    return logits.argmax(1)


def takes_branch_one(logits: torch.Tensor) -> torch.Tensor:
    """Batch-of-one form of :func:`choose_branch` as a scalar bool, for a graph conditional (``torch.cond``)."""
    return logits[0, 1] > logits[0, 0]


def walk_hard(h: torch.Tensor, depth: int, run: RunUnit, *, record: RouterRecord | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard routing of the stream ``h`` (N, ...): each input runs only its path. Returns the leaf outputs
    (N, K) in input order and the leaf ids (N,). ``record``, if given, receives every router's inputs and
    logits."""
    if h.shape[0] == 1 and record is None:  # batch of one: walk the path, no grouping or scatter
        bits = ""
        for _ in range(depth):
            bits += str(int(choose_branch(run(router_key(bits), h))))
            h = run(node_key(bits), h)
        return h, torch.tensor([leaf_index(bits)], device=h.device)
    n = h.shape[0]
    out: torch.Tensor | None = None
    leaf_ids = torch.empty(n, dtype=torch.long, device=h.device)
    stack = [("", h, torch.arange(n, device=h.device))]
    while stack:
        bits, h, index = stack.pop()
        logits = run(router_key(bits), h)
        if record is not None:
            record[router_key(bits)] = (index, logits)
        choice = choose_branch(logits)
        # One gather puts each branch's inputs next to each other; the groups are then views.
        order = torch.argsort(choice, stable=True)
        counts = torch.bincount(choice, minlength=2).tolist()
        groups = zip(h.index_select(0, order).split(counts), index.index_select(0, order).split(counts))
        for child, (h_branch, rows) in zip(children(bits), groups):
            if rows.numel() == 0:
                continue
            h_child = run(node_key(child), h_branch)
            if len(child) < depth:
                stack.append((child, h_child, rows))
                continue
            if out is None:
                out = h_child.new_empty(n, *h_child.shape[1:])
            out.index_copy_(0, rows, h_child)
            leaf_ids.index_fill_(0, rows, leaf_index(child))
    assert out is not None
    return out, leaf_ids


def walk_all(h: torch.Tensor, depth: int, run: RunUnit, *, leaves: bool = True
             ) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
    """Every router (and node) on every input: (router logits by key, each (N, 2); the leaf outputs in leaf
    order, empty unless ``leaves``)."""
    streams = {"": h}
    logits: dict[str, torch.Tensor] = {}
    outputs: list[torch.Tensor] = []
    for bits in router_bits(depth):
        h = streams.pop(bits)
        logits[router_key(bits)] = run(router_key(bits), h)
        for child in children(bits):
            if len(child) < depth:
                streams[child] = run(node_key(child), h)
            elif leaves:
                outputs.append(run(node_key(child), h))
    return logits, outputs


def path_log_probs(router_logits: dict[str, torch.Tensor], depth: int, temperature: float = 1.0
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Soft routing: (log path probability of every leaf (N, L), each router's branch probabilities (N, 2))
    at ``temperature``; a leaf's probability is the product of the router softmaxes on its path."""
    log_router = {key: F.log_softmax(z / temperature, dim=1) for key, z in router_logits.items()}
    root = log_router[router_key("")]
    level = {"": root.new_zeros(root.shape[0])}
    for bits in router_bits(depth):
        log_p = level.pop(bits)
        for branch, child in zip(BRANCHES, children(bits)):
            level[child] = log_p + log_router[router_key(bits)][:, branch]
    return torch.stack([level[bits] for bits in sorted(level, key=leaf_index)], 1), \
        {key: lp.exp() for key, lp in log_router.items()}


def chosen_path_log_prob(record: RouterRecord, n: int, temperature: float = 1.0) -> torch.Tensor:
    """Log probability (N,) of the path each input took under hard routing, from a :func:`walk_hard` ``record``
    (router key -> (input rows, logits (n_r, 2))): the sum, over the routers it passed, of the log softmax of
    the branch it took, at ``temperature``. Differentiable in the router logits."""
    total: torch.Tensor | None = None
    for rows, logits in record.values():
        taken = F.log_softmax(logits / temperature, dim=1).gather(1, choose_branch(logits)[:, None])[:, 0]
        total = (logits.new_zeros(n) if total is None else total).index_add(0, rows, taken)
    if total is None:
        raise ValueError("chosen_path_log_prob() got an empty record")
    return total


def routed_leaves(router_logits: dict[str, torch.Tensor], depth: int) -> torch.Tensor:
    """Leaf index (N,) that hard routing reaches, given every router's logits (N, 2) on every input."""
    root = router_logits[router_key("")]
    ids = torch.zeros(root.shape[0], dtype=torch.long, device=root.device)
    for level in range(depth):  # the branches chosen so far, read as a binary number
        step = torch.zeros_like(ids)
        for prefix in range(2**level):
            at = ids == prefix
            bits = format(prefix, f"0{level}b") if level else ""
            step[at] = choose_branch(router_logits[router_key(bits)][at])
        ids = ids * 2 + step
    return ids


def reach_masks(decisions: dict[str, torch.Tensor], depth: int) -> dict[str, torch.Tensor]:
    """Router key -> (N,) True for the inputs whose hard path passes it, from every router's decision (N,)."""
    reach = {"": torch.ones_like(decisions[router_key("")], dtype=torch.bool)}
    for bits in router_bits(depth):
        for branch, child in zip(BRANCHES, children(bits)):
            if len(child) < depth:
                reach[child] = reach[bits] & (decisions[router_key(bits)] == branch)
    return {router_key(bits): mask for bits, mask in reach.items()}
