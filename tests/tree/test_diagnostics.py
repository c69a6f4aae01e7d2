import pytest
import torch

from sigmab.tree import ConvertConfig, convert
from sigmab.tree.diagnostics import diagnose_routing, routed_leaves
from sigmab.tree.evaluate import evaluate_tree


def _batches(x: torch.Tensor, y: torch.Tensor, size: int = 16):
    return list(zip(x.split(size), y.split(size)))


def test_routed_leaves_match_the_hard_engine(sliced) -> None:
    x = torch.randn(40, 3, 32, 32)
    with torch.no_grad():
        soft = sliced.tree.forward_soft(x)
        _, leaves = sliced.tree.forward_hard(x)
    assert torch.equal(routed_leaves(soft.router_logits, sliced.tree.depth), leaves)


def test_full_width_tree_has_no_leaf_gap_and_no_routing_headroom(model, calib) -> None:
    cfg = ConvertConfig(depth=2, widths=[1.0, 1.0], residual_widths=[1.0, 1.0], calib_size=160, min_leaf_samples=8)
    tree = convert(model, calib, cfg).tree
    x, y = torch.randn(48, 3, 32, 32), torch.randint(0, 10, (48,))
    d = diagnose_routing(tree, model, _batches(x, y))
    assert d.top1 == pytest.approx(d.dense_top1) and d.oracle_top1 == pytest.approx(d.top1)
    assert d.disagreement == 0.0 and d.confident_top1 == pytest.approx(d.top1)  # identical leaves
    assert all(leaf.gap_pp == pytest.approx(0.0) for leaf in d.leaves)
    assert all(leaf.top1_all == pytest.approx(d.dense_top1) for leaf in d.leaves)


def test_sliced_tree_gaps_add_up_to_the_drop_and_oracle_is_brute_force(sliced, model) -> None:
    x = torch.randn(64, 3, 32, 32)
    with torch.no_grad():
        y = model(x).argmax(1)  # dense is right everywhere, so every miss is the tree's
        y[::3] = (y[::3] + 1) % 10  # ... except on a third of the inputs
        per_leaf = torch.stack([sliced.tree.forward_path(x, leaf).argmax(1) == y for leaf in sliced.tree.leaves])
    d = diagnose_routing(sliced.tree, model, _batches(x, y))
    hard = evaluate_tree(sliced.tree, _batches(x, y), 10)
    assert d.top1 == pytest.approx(hard.top1)
    assert d.dense_top1 == pytest.approx(100.0 * (1 - 22 / 64))
    assert sum(leaf.gap_pp for leaf in d.leaves) == pytest.approx(d.dense_top1 - d.top1)
    assert d.oracle_top1 == pytest.approx(100.0 * float(per_leaf.any(0).float().mean()))
    for leaf, hits in zip(d.leaves, per_leaf):
        assert leaf.top1_all == pytest.approx(100.0 * float(hits.float().mean()))
    assert [leaf.share for leaf in d.leaves] == pytest.approx(hard.leaf_share.tolist())
    assert d.routing_headroom_pp >= 0
    with torch.no_grad():  # brute force: each input's most confident leaf, and whether the leaves disagree
        outs = torch.stack([sliced.tree.forward_path(x, leaf) for leaf in sliced.tree.leaves])  # (L, N, K)
    surest = outs.softmax(2).amax(2).argmax(0)
    assert d.confident_top1 == pytest.approx(100.0 * float(per_leaf[surest, torch.arange(64)].float().mean()))
    predictions = outs.argmax(2)
    assert d.disagreement == pytest.approx(100.0 * float((predictions != predictions[0]).any(0).float().mean()))
    assert d.top1 <= d.oracle_top1 and d.confident_top1 <= d.oracle_top1
