"""Class-group routing: split the classes where they are least confused, then route inputs to their group."""

import pytest
import torch

from sigmab.errors import ConfigError
from sigmab.tree.class_groups import (
    bipartition,
    class_hierarchy,
    confusion_counts,
    group_accuracy,
    group_targets,
    leaf_of_class,
)
from sigmab.tree.router_fit import collect_routing_data, fit_routers, routed_on
from tests.tree.test_router_fit import _specialists


def _block_confusion() -> torch.Tensor:
    """Six classes in two blocks {0, 2, 4} and {1, 3, 5}: heavy confusion inside a block, almost none across."""
    c = torch.eye(6) * 100
    for block in ([0, 2, 4], [1, 3, 5]):
        for i in block:
            for j in block:
                if i != j:
                    c[i, j] = 10.0
    c[0, 1] = 1.0
    return c


def test_confusion_counts_rows_are_true_classes() -> None:
    c = confusion_counts(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 0, 1, 2]), 3)
    assert c.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


def test_bipartition_cuts_where_the_classes_are_least_confused() -> None:
    a, b = bipartition(_block_confusion(), list(range(6)))
    assert sorted(map(sorted, (a, b))) == [[0, 2, 4], [1, 3, 5]]


def test_bipartition_respects_the_minimum_group_share() -> None:
    c = torch.eye(4) * 100
    c[0, 1] = c[1, 0] = c[1, 2] = c[2, 1] = c[2, 0] = 50.0  # 3 is confused with nothing: the free cut is {3}
    assert sorted(map(len, bipartition(c, [0, 1, 2, 3], min_share=0.25))) == [1, 3]
    assert sorted(map(len, bipartition(c, [0, 1, 2, 3], min_share=0.5))) == [2, 2]
    with pytest.raises(ConfigError, match="no split"):
        bipartition(c, [0, 1, 2], min_share=0.6)


def test_many_classes_fall_back_to_a_balanced_spectral_split() -> None:
    blocks = torch.block_diag(*[torch.full((10, 10), 5.0)] * 2) + 0.01  # 20 classes, two blocks of 10
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(0))
    c = blocks[perm][:, perm]
    a, b = bipartition(c, list(range(20)))
    block_of = {int(i): int(perm[i]) // 10 for i in range(20)}
    assert len(a) == len(b) == 10 and len({block_of[i] for i in a}) == 1


def test_hierarchy_and_targets_for_two_levels() -> None:
    groups = class_hierarchy(_block_confusion(), depth=2, min_share=0.3)
    assert set(groups) == {"", "0", "1", "00", "01", "10", "11"}
    assert sorted(groups["0"] + groups["1"]) == list(range(6))
    leaves = [groups[b] for b in ("00", "01", "10", "11")]
    assert sorted(sum(leaves, [])) == list(range(6)) and all(leaves)
    owner = leaf_of_class(groups, 2, 6)
    labels = torch.arange(6)
    targets = group_targets(labels, groups, 2)
    for cls in range(6):  # following the targets from the root reaches the class's own leaf
        bits = ""
        for _ in range(2):
            branch, weight = targets["r" + bits]
            assert weight[cls] == 1.0
            bits += str(int(branch[cls]))
        assert int(bits, 2) == owner[cls]
    assert targets["r0"][1].sum() == len(groups["0"])  # a router ignores classes that never reach it
    assert group_accuracy(owner[labels], labels, groups, 2, 6) == 100.0


def test_routers_trained_on_group_targets_route_each_class_to_its_group() -> None:
    tree, spec, batches = _specialists()  # the class is the sign of feature 0; k-means-like router reads feature 1
    data = collect_routing_data(tree, batches)
    groups = {"": [0, 1], "0": [0], "1": [1]}
    fit_routers(tree, spec, data, settings={"hidden": 16}, epochs=60, lr=0.02,
                targets=group_targets(data.labels, groups, 1))
    assert group_accuracy(routed_on(tree, data), data.labels, groups, 1, 2) > 95


def test_too_many_leaves_for_the_classes_is_refused() -> None:
    with pytest.raises(ConfigError, match="cannot fill"):
        class_hierarchy(torch.eye(3), depth=2)
