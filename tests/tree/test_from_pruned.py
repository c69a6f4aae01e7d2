"""Static pruning as a special case of a tree: a tree built from a pruned network gives that network's outputs
on every path, before and after a save/load round trip."""

from pathlib import Path

import pytest
import torch

from sigmab.errors import ConfigError
from sigmab.prune import PruneConfig, prune
from sigmab.tree import ConvertConfig, load_tree, save_tree
from sigmab.tree.from_pruned import tree_from_pruned
from tests.helpers import assert_same_function, calibration_batch, tiny_resnet


@pytest.fixture(scope="module")
def pruned():
    net, spec = prune(tiny_resnet(), PruneConfig(criterion="fpgm", scope="all", keep_ratio=0.6))
    with torch.no_grad():  # stand-in for fine-tuning: the tree must take these weights, not the dense ones
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return net.eval(), spec


@pytest.mark.parametrize(("depth", "splits"), [(1, ["layer3.0"]), (2, ["layer2.0", "layer3.0"])])
def test_every_path_of_a_tree_from_a_prune_is_the_pruned_network(pruned, depth, splits, tmp_path: Path) -> None:
    net, spec = pruned
    conversion = tree_from_pruned(net, spec, calibration_batch(),
                                  ConvertConfig(depth=depth, split_points=splits, min_leaf_samples=8, calib_size=160))
    tree = conversion.tree
    x = torch.randn(32, 3, 32, 32)
    with torch.no_grad():
        reference = net(x)
        for leaf in tree.leaves:
            assert_same_function(tree.forward_path(x, leaf), reference)
        routed, leaves = tree.forward_hard(x)
        assert_same_function(routed, reference)
        assert len(set(leaves.tolist())) > 1  # the inputs do go down several paths
        save_tree(tree, conversion.spec, tmp_path)
        reloaded, reloaded_spec = load_tree(tmp_path)  # rebuilt by slicing the dense architecture, then loaded
        assert reloaded_spec.backbone is not None and len(reloaded_spec.backbone.blocks) == len(tree.backbone) - 1
        again, again_leaves = reloaded.forward_hard(x)
    torch.testing.assert_close(again, routed, atol=0, rtol=0)
    assert torch.equal(again_leaves, leaves)
    stored = sum(p.numel() for p in tree.parameters())
    per_path = sum(p.numel() for p in net.parameters())
    assert per_path < stored < 2**depth * per_path  # copies of the nodes, one shared backbone


def test_bad_inputs_are_clear_errors(pruned) -> None:
    net, spec = pruned
    with pytest.raises(ConfigError, match="too few for 4 leaves"):
        tree_from_pruned(net, spec, calibration_batch()[:10], ConvertConfig(depth=2, min_leaf_samples=8))
    with pytest.raises(ConfigError, match="invalid split point"):
        tree_from_pruned(net, spec, calibration_batch(), ConvertConfig(depth=1, split_points=["nope"]))
