"""The one walk: hard routing, every-router evaluation, soft path probabilities and reach masks agree."""

import torch

from sigmab.routing import (
    choose_branch,
    chosen_path_log_prob,
    leaf_names,
    path_keys,
    path_log_probs,
    reach_masks,
    routed_leaves,
    takes_branch_one,
    walk_all,
    walk_hard,
)
from sigmab.routing.names import router_bits

DEPTH = 3


def _units(seed: int = 0) -> dict[str, torch.Tensor]:
    """A synthetic tree on (N, 4) streams: routers are 4 -> 2 maps, nodes are 4 -> 4 maps (leaves 4 -> 3)."""
    g = torch.Generator().manual_seed(seed)
    units = {f"r{bits}": torch.randn(4, 2, generator=g) for bits in router_bits(DEPTH)}
    for leaf in leaf_names(DEPTH):
        for key in path_keys(leaf)[0]:
            units.setdefault(key, torch.randn(4, 3 if key == leaf else 4, generator=g))
    return units


def _run(units: dict[str, torch.Tensor], calls: list[str] | None = None):
    def run(key: str, h: torch.Tensor) -> torch.Tensor:
        if calls is not None:
            calls.append(key)
        return torch.tanh(h @ units[key])

    return run


def test_hard_walk_equals_running_each_input_down_its_routed_path() -> None:
    units, x = _units(), torch.randn(64, 4, generator=torch.Generator().manual_seed(1))
    out, leaves = walk_hard(x, DEPTH, _run(units))
    router_logits, leaf_outputs = walk_all(x, DEPTH, _run(units))
    assert torch.equal(leaves, routed_leaves(router_logits, DEPTH))
    assert len(set(leaves.tolist())) > 3  # the test routes inputs to several leaves
    for i in range(64):
        torch.testing.assert_close(out[i], leaf_outputs[int(leaves[i])][i], atol=0, rtol=0)
        single, single_leaf = walk_hard(x[i : i + 1], DEPTH, _run(units))  # the batch-1 path agrees
        assert int(single_leaf) == int(leaves[i])
        torch.testing.assert_close(single, out[i : i + 1])


def test_a_single_input_runs_only_the_units_of_its_path() -> None:
    units, x = _units(), torch.randn(1, 4)
    calls: list[str] = []
    _, leaf = walk_hard(x, DEPTH, _run(units, calls))
    nodes, routers = path_keys(leaf_names(DEPTH)[int(leaf)])
    assert calls == [k for pair in zip(routers, nodes) for k in pair]


def test_record_and_reach_masks_name_the_inputs_that_pass_each_router() -> None:
    units, x = _units(), torch.randn(50, 4, generator=torch.Generator().manual_seed(2))
    record: dict = {}
    walk_hard(x, DEPTH, _run(units), record=record)
    router_logits, _ = walk_all(x, DEPTH, _run(units), leaves=False)
    reach = reach_masks({k: choose_branch(z) for k, z in router_logits.items()}, DEPTH)
    assert set(record) <= set(reach) and len(reach) == 2**DEPTH - 1
    for key, (rows, logits) in record.items():
        assert torch.equal(torch.sort(rows).values, reach[key].nonzero().flatten())
        torch.testing.assert_close(logits, router_logits[key][rows])


def test_soft_path_probabilities_sum_to_one_and_harden_to_the_routed_leaf() -> None:
    units, x = _units(), torch.randn(30, 4, generator=torch.Generator().manual_seed(3))
    router_logits, _ = walk_all(x, DEPTH, _run(units), leaves=False)
    log_p, router_probs = path_log_probs(router_logits, DEPTH, temperature=1.0)
    assert log_p.shape == (30, 2**DEPTH) and set(router_probs) == set(router_logits)
    torch.testing.assert_close(log_p.exp().sum(1), torch.ones(30))
    cold, _ = path_log_probs(router_logits, DEPTH, temperature=1e-6)
    assert torch.equal(cold.argmax(1), routed_leaves(router_logits, DEPTH))


def test_ties_go_to_branch_zero_in_the_eager_and_the_graph_rule() -> None:
    tied = torch.tensor([[0.5, 0.5]])
    assert int(choose_branch(tied)) == 0 and not bool(takes_branch_one(tied))
    assert bool(takes_branch_one(torch.tensor([[0.0, 1e-6]])))


def test_path_names() -> None:
    assert leaf_names(2) == ["n00", "n01", "n10", "n11"]
    assert path_keys("n01") == (["n0", "n01"], ["r", "r0"])
    assert list(router_bits(2)) == ["", "0", "1"]


def test_the_chosen_path_log_probability_is_the_soft_one_of_the_routed_leaf() -> None:
    units, x = _units(), torch.randn(40, 4, generator=torch.Generator().manual_seed(4))
    record: dict = {}
    _, leaves = walk_hard(x, DEPTH, _run(units), record=record)
    router_logits, _ = walk_all(x, DEPTH, _run(units), leaves=False)
    for temperature in (1.0, 0.3):
        log_p, _ = path_log_probs(router_logits, DEPTH, temperature)
        chosen = chosen_path_log_prob(record, 40, temperature)
        torch.testing.assert_close(chosen, log_p[torch.arange(40), leaves])
