"""Shared gradients: with sharing 1 the leaves of a tree split from a prune stay equal (the static prune trained on
every input); with 0 they specialise; trees whose nodes keep different channels are refused before any training."""

from pathlib import Path

import pytest
import torch
from torch import nn

from sigmab.errors import ConfigError
from sigmab.prune import PruneConfig
from sigmab.prune.pipeline import prune_checkpoint
from sigmab.tree import ConvertConfig
from sigmab.tree.finetune import FinetuneConfig, finetune
from sigmab.tree.pipeline import convert_checkpoint, convert_pruned_folder
from sigmab.tree.sharing import share_gradients
from tests.helpers import copy_tree_folder, digits_resnet_checkpoint


def test_share_gradients_mixes_each_group_with_its_sum() -> None:
    a, b, c = (nn.Parameter(torch.zeros(3)) for _ in range(3))
    a.grad, b.grad, c.grad = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([3.0, 1.0, 0.0]), None  # c saw no input
    frozen = (nn.Parameter(torch.zeros(1), requires_grad=False), nn.Parameter(torch.zeros(1), requires_grad=False))
    share_gradients([(a, b, c), frozen], 0.25)
    total = torch.tensor([4.0, 1.0, 2.0])
    torch.testing.assert_close(a.grad, 0.75 * torch.tensor([1.0, 0.0, 2.0]) + 0.25 * total)
    torch.testing.assert_close(b.grad, 0.75 * torch.tensor([3.0, 1.0, 0.0]) + 0.25 * total)
    torch.testing.assert_close(c.grad, 0.25 * total)
    assert frozen[0].grad is None


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return digits_resnet_checkpoint(tmp_path_factory.mktemp("dense"), epochs=2)


@pytest.fixture(scope="module")
def split_prune(checkpoint: Path, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pruned") / "p"
    prune_checkpoint(checkpoint, dataset="digits", out=folder,
                     cfg=PruneConfig(criterion="fpgm", target_reduction=0.5, scope="inner"))
    tree = tmp_path_factory.mktemp("tree") / "t"
    convert_pruned_folder(folder, out=tree, cfg=ConvertConfig(depth=1, calib_size=300))
    return tree



def _leaf_params_equal(tree) -> bool:
    first, second = (list(tree.nodes[k].parameters()) for k in ("n0", "n1"))
    return all(torch.equal(p, q) for p, q in zip(first, second))


@pytest.mark.parametrize("backbone", [False, True])
def test_full_sharing_keeps_the_leaves_equal_and_none_lets_them_specialise(split_prune: Path, tmp_path: Path,
                                                                           backbone: bool) -> None:
    cfg = dict(soft_epochs=0, hard_epochs=1, batch_size=64, lr=0.05, distill_weight=1.0, train_backbone=backbone,
               threads=1)
    shared, result = finetune(copy_tree_folder(split_prune, tmp_path / "shared"),
                              FinetuneConfig(**cfg, shared_gradient=1.0), progress=False)
    assert 0.05 < float(result.leaf_share[0]) < 0.95  # both leaves were trained, on different inputs
    assert _leaf_params_equal(shared)
    own, _ = finetune(copy_tree_folder(split_prune, tmp_path / "own"), FinetuneConfig(**cfg), progress=False)
    assert not _leaf_params_equal(own)
    half, _ = finetune(copy_tree_folder(split_prune, tmp_path / "half"), FinetuneConfig(**cfg, shared_gradient=0.5),
                       progress=False)
    assert not _leaf_params_equal(half)


def test_sharing_is_refused_for_nodes_with_different_channels(checkpoint: Path, tmp_path: Path) -> None:
    tree = tmp_path / "dense-tree"
    convert_checkpoint(checkpoint, dataset="digits", out=tree,
                       cfg=ConvertConfig(depth=1, widths=[0.5], calib_size=300, min_leaf_samples=16))
    with pytest.raises(ConfigError, match="same channels; n1 differ"):
        finetune(tree, FinetuneConfig(soft_epochs=0, hard_epochs=1, shared_gradient=0.5, threads=1), progress=False)
    assert not (tree / "finetune").exists()  # refused before the run folder
    with pytest.raises(ConfigError, match="shared_gradient must be in"):
        FinetuneConfig(shared_gradient=1.5)
