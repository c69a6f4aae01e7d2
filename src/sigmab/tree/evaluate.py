"""Hard-routed evaluation of a tree: top-1, and per leaf the share of inputs, accuracy and classes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from sigmab.errors import DataError
from sigmab.tree.model import SigmaBTree
from sigmab.utils.device import module_device
from sigmab.utils.progress import progress_bar


@dataclass(frozen=True)
class TreeEval:
    """``leaf_counts`` (L,), ``leaf_correct`` (L,), ``leaf_classes`` (L, K) counts over the evaluated inputs;
    ``leaf_ids`` (N,) the leaf of every input, in order."""

    top1: float
    n_samples: int
    leaf_counts: torch.Tensor
    leaf_correct: torch.Tensor
    leaf_classes: torch.Tensor
    leaf_ids: torch.Tensor

    @property
    def leaf_share(self) -> torch.Tensor:
        return self.leaf_counts.double() / max(1, self.n_samples)

    @property
    def leaf_top1(self) -> list[float | None]:
        return [100.0 * float(c) / float(n) if n else None for c, n in zip(self.leaf_correct, self.leaf_counts)]


@torch.inference_mode()
def evaluate_tree(tree: SigmaBTree, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], num_classes: int, *,
                  progress: bool = False) -> TreeEval:
    was_training = tree.training
    tree.eval()
    n_leaves = len(tree.leaves)
    counts = torch.zeros(n_leaves, dtype=torch.long)
    correct = torch.zeros(n_leaves, dtype=torch.long)
    classes = torch.zeros(n_leaves, num_classes, dtype=torch.long)
    all_leaves = []
    device = module_device(tree)
    try:
        for x, y in progress_bar(batches, enabled=progress, desc="eval"):
            logits, leaves = tree.forward_hard(x.to(device))
            logits, leaves = logits.cpu(), leaves.cpu()
            all_leaves.append(leaves)
            hit = (logits.argmax(1) == y).long()
            counts += torch.bincount(leaves, minlength=n_leaves)
            correct += torch.bincount(leaves, weights=hit.double(), minlength=n_leaves).long()
            classes.index_put_((leaves, y), torch.ones_like(y), accumulate=True)
    finally:
        tree.train(was_training)
    n = int(counts.sum())
    if n == 0:
        raise DataError("evaluate_tree() got no samples: the split to evaluate is empty")
    return TreeEval(100.0 * float(correct.sum()) / n, n, counts, correct, classes, torch.cat(all_leaves))
