import torch

from sigmab.tree import PathModel


def test_hard_engine_groups_by_leaf_and_restores_input_order(sliced) -> None:
    tree = sliced.tree
    x = torch.randn(40, 3, 32, 32)
    with torch.no_grad():
        logits, leaves = tree.forward_hard(x)
        for i in range(0, 40, 7):
            leaf = tree.leaves[int(leaves[i])]
            torch.testing.assert_close(logits[i : i + 1], tree.forward_path(x[i : i + 1], leaf), atol=1e-5, rtol=1e-5)
            single, single_leaf = tree.forward_hard(x[i : i + 1])  # the batch-1 fast path agrees
            assert int(single_leaf) == int(leaves[i])
            torch.testing.assert_close(single, logits[i : i + 1], atol=1e-5, rtol=1e-5)
    assert len(set(leaves.tolist())) > 1


def test_soft_routing_probabilities_and_mixture(sliced) -> None:
    tree = sliced.tree
    x = torch.randn(6, 3, 32, 32)
    with torch.no_grad():
        soft = tree.forward_soft(x, temperature=1.0)
        assert soft.leaf_logits.shape == (4, 6, 10) and soft.leaf_probs.shape == (6, 4)
        torch.testing.assert_close(soft.leaf_probs.sum(1), torch.ones(6))
        for leaf_i, leaf in enumerate(tree.leaves):
            torch.testing.assert_close(soft.leaf_logits[leaf_i], tree.forward_path(x, leaf), atol=1e-5, rtol=1e-5)
        cold = tree.forward_soft(x, temperature=1e-4)  # near-hard routing: mixture = the routed leaf
        _, leaves = tree.forward_hard(x)
        torch.testing.assert_close(cold.leaf_probs.argmax(1), leaves)
        expected = torch.softmax(tree.forward_hard(x)[0], 1)
        torch.testing.assert_close(cold.mixture_log_probs().exp(), expected, atol=1e-3, rtol=0)


def test_path_model_counts_backbone_nodes_and_routers(sliced) -> None:
    tree = sliced.tree
    path = PathModel(tree, "n10")
    expected = sum(p.numel() for p in tree.backbone.parameters()) + sum(
        p.numel() for k in ("n1", "n10") for p in tree.nodes[k].parameters()) + sum(
        p.numel() for k in ("r", "r1") for p in tree.routers[k].parameters())
    assert sum(p.numel() for p in path.parameters()) == expected
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(path(x), tree.forward_path(x, "n10"))
