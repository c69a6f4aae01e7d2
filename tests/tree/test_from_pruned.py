"""Static pruning as a special case of a tree: a tree built from a pruned network gives that network's outputs
on every path, before and after a save/load round trip."""

from pathlib import Path

import pytest
import torch

from sigmab.errors import ConfigError
from sigmab.graph import block_handler, decompose
from sigmab.prune import PruneConfig, prune
from sigmab.tree import ConvertConfig, load_tree, save_tree
from sigmab.tree.from_pruned import tree_from_pruned
from tests.helpers import assert_same_function, calibration_batch, mask_hook, tiny_resnet


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


def _perturbed(net: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():  # stand-in for fine-tuning, so that prune and dense weights differ
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return net.eval()


def _inner_mean_abs(dense: torch.nn.Module, images: torch.Tensor, first: int) -> dict[tuple[int, str], torch.Tensor]:
    """Per-sample mean |ReLU(activation)| (N, C) of every inner group of dense blocks ``first``.., recorded by
    hooks: the statistic cluster channels must rank by, computed without the library's calibration."""
    dec = decompose(dense)
    seen: dict[tuple[int, str], torch.Tensor] = {}
    handles = []
    for b in range(first, len(dec.blocks)):
        for group, module in block_handler(dec.blocks[b]).inner_activations(dec.blocks[b]).items():
            def hook(_m, _i, out, key=(b, group)):
                seen[key] = torch.relu(out).abs().mean((2, 3))
            handles.append(module.register_forward_hook(hook))
    with torch.no_grad():
        h = dec.stem.eval()(images)
        for block in dec.blocks:
            h = block.eval()(h)
    for h in handles:
        h.remove()
    return seen


def test_cluster_nodes_rank_their_own_inputs_and_equal_the_masked_dense_model() -> None:
    """Rung (b) of issue 19: the backbone is the (fine-tuned) prune; each leaf keeps as many inner channels per
    unit as the prune, the top ones by the dense model's mean activation over the calibration inputs routed to
    it, with the dense weights. A leaf's path equals the prune's backbone followed by the dense blocks whose
    other inner channels are zeroed."""
    dense = tiny_resnet()
    net, spec = prune(dense, PruneConfig(criterion="fpgm", scope="inner", keep_ratio=0.5))
    net = _perturbed(net)
    calib = calibration_batch()
    calib[:80, 0] += 2.0  # two kinds of input (a red and a blue cast), so the clusters' statistics differ
    calib[80:, 2] += 2.0
    cfg = ConvertConfig(depth=1, split_points=["layer2.0"], min_leaf_samples=8, calib_size=160,
                        from_pruned_channels="cluster")
    conversion = tree_from_pruned(net, spec, calib, cfg, dense=dense)
    tree, first = conversion.tree, conversion.spec.nodes["n0"].start
    stats = _inner_mean_abs(dense, calib, first)
    dec = decompose(dense)
    chosen_sets = []
    for leaf in (0, 1):
        node = conversion.spec.nodes[f"n{leaf}"]
        members = conversion.calib_leaves == leaf
        for b, (kept, pruned) in enumerate(zip(node.blocks, spec.blocks[first:]), first):
            assert torch.equal(kept.inp, pruned.inp) and torch.equal(kept.out, pruned.out)
            for group, ids in kept.inner.items():
                scores = stats[(b, group)][members].mean(0)
                top = torch.argsort(scores, descending=True, stable=True)[: pruned.inner[group].numel()]
                assert torch.equal(ids, top.sort().values)
        chosen_sets.append([ids for kept in node.blocks for ids in kept.inner.values()])
    assert any(not torch.equal(a, b) for a, b in zip(*chosen_sets))  # the two clusters do choose differently

    x = torch.randn(16, 3, 32, 32)
    for leaf in (0, 1):
        node = conversion.spec.nodes[f"n{leaf}"]
        handles = [module.register_forward_hook(mask_hook(kept.inner[group], module.num_features))
                   for b, kept in enumerate(node.blocks, first)
                   for group, module in block_handler(dec.blocks[b]).inner_activations(dec.blocks[b]).items()]
        with torch.no_grad():
            h = x
            for m in [net.stem, *net.blocks[:first]]:
                h = m(h)
            for block in dec.blocks[first:]:
                h = block(h)
            reference = dec.head(h)
            actual = tree.forward_path(x, f"n{leaf}")
        for handle in handles:
            handle.remove()
        assert_same_function(actual, reference)


def test_cluster_channels_need_the_dense_model_and_a_known_mode(pruned) -> None:
    net, spec = pruned
    with pytest.raises(ConfigError, match="needs the dense model"):
        tree_from_pruned(net, spec, calibration_batch(), ConvertConfig(depth=1, from_pruned_channels="cluster"))
    with pytest.raises(ConfigError, match="from_pruned_channels must be one of prune, cluster"):
        ConvertConfig(from_pruned_channels="own")
    with pytest.raises(ConfigError, match="from_pruned_weights must be one of finetuned, sliced"):
        ConvertConfig(from_pruned_weights="best")
