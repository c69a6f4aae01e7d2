"""Route by class groups: split the classes where the network rarely confuses them.

k-means on early features splits the inputs by how they look, not by what is hard to tell apart, so
each leaf still has to separate every pair of classes. Here the classes are split recursively into two
groups with the least confusion between them (confusion counted on held-out inputs); router
``r<bits>`` learns to tell its two groups apart, and each leaf sees, and so specialises on, the
confusions inside its own group. A misrouted input reaches a leaf that has trained on few of its class,
so the routers' group accuracy bounds the tree: :func:`group_accuracy` measures it.
"""

from __future__ import annotations

import itertools
import math

import torch

from sigmab.errors import ConfigError
from sigmab.routing.names import children, router_bits, router_key

#: Above this many classes the exact search over bipartitions gives way to a spectral split.
EXACT_MAX_CLASSES = 16


def confusion_counts(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, K) counts: row = true class, column = predicted class, from ``predictions`` and ``labels`` (N,)."""
    if predictions.shape != labels.shape:
        raise ConfigError(f"predictions {tuple(predictions.shape)} and labels {tuple(labels.shape)} differ")
    flat = labels.long() * num_classes + predictions.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes).double()


def bipartition(confusion: torch.Tensor, classes: list[int], *, min_share: float = 0.3) -> tuple[list[int], list[int]]:
    """Split ``classes`` into two groups, each holding at least ``min_share`` of them (and one class), with the
    least confusion (both directions) across the groups; ties go to the more even split. ``confusion`` (K, K)."""
    if len(classes) < 2:
        raise ConfigError(f"cannot split {len(classes)} class(es) into two groups")
    sym = confusion + confusion.T
    sub = sym[classes][:, classes]
    n = len(classes)
    smallest = max(1, math.ceil(min_share * n))
    if 2 * smallest > n:
        raise ConfigError(f"min_share={min_share} leaves no split of {n} classes")
    if n <= EXACT_MAX_CLASSES:
        best: tuple[float, int, tuple[int, ...]] | None = None
        rest = range(1, n)
        for size in range(smallest, n - smallest + 1):
            for chosen in itertools.combinations(rest, size - 1):  # class 0 of `classes` always in group A
                a = (0, *chosen)
                mask = torch.zeros(n, dtype=torch.bool)
                mask[list(a)] = True
                cut = float(sub[mask][:, ~mask].sum())
                key = (cut, abs(n - 2 * size), a)
                if best is None or key[:2] < best[:2]:
                    best = key
        assert best is not None
        group_a = set(best[2])
    else:  # Fiedler vector of the confusion graph, cut at the balanced position
        laplacian = torch.diag(sub.sum(1)) - sub
        _, vectors = torch.linalg.eigh(laplacian)
        order = vectors[:, 1].argsort().tolist()
        group_a = set(order[: n // 2])
    a = [classes[i] for i in range(n) if i in group_a]
    b = [classes[i] for i in range(n) if i not in group_a]
    return a, b


def class_hierarchy(confusion: torch.Tensor, depth: int, *, min_share: float = 0.3) -> dict[str, list[int]]:
    """Node bits ("" = root, then "0", "1", ... down to the leaves) -> the classes routed there, splitting each
    node's classes with :func:`bipartition`. ``confusion`` (K, K) needs K >= 2**depth."""
    k = confusion.shape[0]
    if confusion.shape != (k, k):
        raise ConfigError(f"confusion must be square, got {tuple(confusion.shape)}")
    if k < 2**depth:
        raise ConfigError(f"{k} classes cannot fill {2**depth} leaves")
    groups = {"": list(range(k))}
    for bits in router_bits(depth):
        a, b = bipartition(confusion, groups[bits], min_share=min_share)
        zero, one = children(bits)
        groups[zero], groups[one] = a, b
    return groups


def group_targets(labels: torch.Tensor, groups: dict[str, list[int]], depth: int
                  ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Router key -> (target branch (N,), weight (N,)) for ``labels`` (N,): the branch whose group holds the
    label, weight 1 for inputs whose class belongs below that router and 0 for the rest."""
    out = {}
    for bits in router_bits(depth):
        zero, one = children(bits)
        below = torch.tensor(groups[bits])
        ones = torch.tensor(groups[one])
        out[router_key(bits)] = (torch.isin(labels, ones).long(), torch.isin(labels, below).double())
    return out


def leaf_of_class(groups: dict[str, list[int]], depth: int, num_classes: int) -> torch.Tensor:
    """(K,) the leaf index each class belongs to under ``groups``."""
    owner = torch.full((num_classes,), -1, dtype=torch.long)
    for bits, classes in groups.items():
        if len(bits) == depth:
            owner[classes] = int(bits, 2)
    return owner


def group_accuracy(leaves: torch.Tensor, labels: torch.Tensor, groups: dict[str, list[int]], depth: int,
                   num_classes: int) -> float:
    """Percent of inputs whose routed leaf (N,) is the leaf owning their label (N,)."""
    owner = leaf_of_class(groups, depth, num_classes)
    return 100.0 * float((owner[labels.long()] == leaves).double().mean())
