"""Routers trained on best-leaf targets: they learn to send each input to the leaf that serves it."""

from pathlib import Path

import torch
from torch import nn

from sigmab.routing import CosineRouter, RouterSpec
from sigmab.tree import SigmaBTree, load_tree, save_tree
from sigmab.tree.router_fit import branch_targets, collect_routing_data, fit_routers
from sigmab.tree.spec import TreeSpec
from tests.helpers import tiny_tree


class _Constant(nn.Module):
    """A leaf that predicts one class for every input: (N, C, ...) -> (N, 2)."""

    def __init__(self, cls: int) -> None:
        super().__init__()
        self.register_buffer("logits", torch.tensor([[4.0, 0.0]] if cls == 0 else [[0.0, 4.0]]))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(h.shape[0], 2)


def _specialists() -> tuple[SigmaBTree, TreeSpec, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Leaf n0 always says class 0, n1 class 1; the class is the sign of the first feature. The k-means-like
    start routes on the second feature, which says nothing about the class."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 4, 1, 1, generator=g)
    y = (x[:, 0, 0, 0] > 0).long()
    router = CosineRouter(4)
    with torch.no_grad():
        router.proj.weight.copy_(torch.tensor([[0.0, 1.0, 0, 0], [0.0, -1.0, 0, 0]]))
        router.proj.bias.zero_()
    tree = SigmaBTree(nn.Identity(), {"n0": _Constant(0), "n1": _Constant(1)}, {"r": router}, depth=1)
    spec = TreeSpec(None, 1, [], {}, {"r": router.spec()})
    return tree, spec, [(x[i : i + 100], y[i : i + 100]) for i in range(0, 600, 100)]


def test_a_router_trained_on_best_leaf_targets_routes_to_the_specialist() -> None:
    tree, spec, batches = _specialists()
    data = collect_routing_data(tree, batches)
    assert data.features["r"].shape == (600, 4) and data.leaf_losses.shape == (600, 2)
    report = fit_routers(tree, spec, data, kind="mlp", settings={"hidden": 16}, epochs=60, lr=0.02)
    assert report["before"]["routed_top1"] < 65 and report["before"]["oracle_top1"] == 100.0
    assert report["after"]["routed_top1"] > 95 and report["after"]["best_leaf_agreement"] > 95
    assert spec.routers["r"] == RouterSpec("mlp", 4, {"hidden": 16})
    with torch.no_grad():  # the tree itself now routes that way
        x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
        logits, _ = tree.forward_hard(x)
    assert float((logits.argmax(1) == y).double().mean()) > 0.95


def test_targets_pick_the_branch_with_the_best_leaf_below_it() -> None:
    losses = torch.tensor([[0.1, 2.0, 3.0, 0.5],    # best leaf n00: root -> 0, r0 -> 0, r1 -> 1
                           [4.0, 3.0, 1.0, 0.2]])  # best leaf n11: root -> 1, r0 -> 1, r1 -> 1
    targets = branch_targets(losses, depth=2)
    assert targets["r"][0].tolist() == [0, 1] and targets["r0"][0].tolist() == [0, 1]
    assert targets["r1"][0].tolist() == [1, 1]
    torch.testing.assert_close(targets["r"][1], torch.tensor([0.4, 2.8]))  # |best of n1x - best of n0x|


def test_trained_routers_of_a_real_tree_save_and_reload(tmp_path: Path) -> None:
    conversion = tiny_tree()
    tree, spec = conversion.tree, conversion.spec
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(40, 3, 32, 32, generator=g), torch.randint(0, 10, (40,), generator=g)) for _ in range(3)]
    fit_routers(tree, spec, collect_routing_data(tree, batches), kind="mlp", epochs=3)
    assert {r.kind for r in spec.routers.values()} == {"mlp"}
    save_tree(tree, spec, tmp_path)
    reloaded, _ = load_tree(tmp_path)
    x = batches[0][0]
    with torch.no_grad():
        a, la = tree.forward_hard(x)
        b, lb = reloaded.forward_hard(x)
    assert torch.equal(la, lb)
    torch.testing.assert_close(a, b, atol=0, rtol=0)
