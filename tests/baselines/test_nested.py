import copy
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from sigmab.baselines import NestedSparseNet, Route, magnitude_keep_levels, storage_cost
from sigmab.baselines.nested import default_routes, route_cost
from sigmab.baselines.nested_train import NestedConfig, load_nested, train_nested
from sigmab.errors import ConfigError
from tests.helpers import digits_resnet_checkpoint, tiny_resnet


def test_levels_are_nested_in_positions_and_values() -> None:
    net = NestedSparseNet(tiny_resnet(), [0.5, 0.8, 0.95])
    modules = dict(net.model.named_modules())
    for i, name in enumerate(net.layers):
        w = modules[name].weight
        masks = [net.mask(i, level) for level in range(3)]
        for denser, sparser in zip(masks, masks[1:]):
            assert bool((sparser <= denser).all())  # a subset of positions
            assert torch.equal(w * sparser, (w * denser) * sparser)  # ... holding the same values
        kept, dropped = w.abs()[masks[1]], w.abs()[~masks[1]]
        assert kept.min() >= dropped.max()  # by magnitude
        assert int(masks[1].sum()) == max(1, round(0.2 * w.numel()))


def test_keep_levels_count_levels_on_a_known_tensor() -> None:
    w = torch.tensor([[0.1, -0.9, 0.5, 0.0]])
    assert magnitude_keep_levels(w, [0.25, 0.5, 0.75]).tolist() == [[1, 3, 2, 0]]


def test_the_first_convolution_is_left_dense_and_sparsity_zero_is_the_dense_model() -> None:
    model = tiny_resnet().eval()
    net = NestedSparseNet(model, [0.0, 0.9]).eval()
    assert net.layers[0] != "conv1" and "conv1" not in net.layers
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(net.forward_at(x, 0), model(x))
        assert not torch.allclose(net.forward_at(x, 1), model(x))


def test_rerouting_switches_level_exactly_where_asked() -> None:
    model = tiny_resnet().eval()
    net = NestedSparseNet(model, [0.5, 0.9]).eval()
    n = len(net.layers)
    x = torch.randn(3, 3, 32, 32)
    for switch in (1, n // 2, n - 1):
        route = Route.rerouted(0, 1, switch, n)
        reference = copy.deepcopy(model)
        modules = dict(reference.named_modules())
        with torch.no_grad():
            for i, name in enumerate(net.layers):
                modules[name].weight.mul_(net.mask(i, 0 if i < switch else 1))
            torch.testing.assert_close(net.forward_at(x, route), reference(x))
    assert Route.rerouted(0, 1, 2, n).label() == "L0->L1@2"
    with pytest.raises(ConfigError, match="between two masked layers"):
        Route.rerouted(0, 1, 0, n)
    with pytest.raises(ConfigError, match="one level in 0..1 per masked layer"):
        net.set_route(Route((0, 2) + (0,) * (n - 2)))


def test_costs_and_storage_on_a_known_model() -> None:
    model = nn.Sequential(nn.Linear(8, 10), nn.ReLU(), nn.Linear(10, 4))  # 90 + 44 parameters
    net = NestedSparseNet(model, [0.5, 0.75])  # masks the second linear only (40 weights)
    assert net.layers == ["2"]
    cost = route_cost(net, (8,), Route.uniform(1, 1))
    assert cost.params == 90 + 4 + 10 and cost.macs == 80 + 10  # 10 of 40 weights kept: 10 MACs
    storage = storage_cost(net)
    # 20 values (densest level), 20 one-byte indices vs a 5-byte bitmap, 2-bit level tags, 94 unmasked
    assert (storage.values, storage.positions, storage.level_tags, storage.unmasked) == (80, 5, 5, 376)
    assert [r.label() for r in default_routes(net)] == ["L0", "L1"]  # one masked layer: nothing to reroute


def test_bad_sparsities_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="must increase"):
        NestedSparseNet(tiny_resnet(), [0.9, 0.8])
    with pytest.raises(ConfigError, match=r"in \[0, 1\)"):
        NestedConfig(sparsities=[0.5, 1.0])


def test_training_writes_a_folder_that_reloads_to_the_same_outputs(tmp_path: Path) -> None:
    checkpoint = digits_resnet_checkpoint(tmp_path / "dense", epochs=2)
    cfg = NestedConfig(dataset="digits", sparsities=[0.5, 0.8], epochs=1, batch_size=64, lr=0.02, val_fraction=0.2)
    report = train_nested(checkpoint, cfg, tmp_path / "nested", progress=False)
    routes = {r["route"]: r for r in report["routes"]}
    assert list(routes) == ["L0", "L1", "L0->L1@3", "L1->L0@3"]
    assert routes["L1"]["params"] < routes["L0->L1@3"]["params"] < routes["L0"]["params"] < report["dense_params"]
    assert report["storage_bytes"] < report["dense_bytes"]
    assert json.loads((tmp_path / "nested" / "report.json").read_text()) == report
    net, spec = load_nested(tmp_path / "nested")
    x = torch.randn(5, 1, 8, 8)
    assert spec["sparsities"] == [0.5, 0.8]
    with torch.no_grad():
        before = net.forward_at(x, Route.uniform(1, len(net.layers)))
        again, _ = load_nested(tmp_path / "nested")
        torch.testing.assert_close(again.forward_at(x, 1), before)
    with pytest.raises(ConfigError, match="already"):
        train_nested(checkpoint, cfg, tmp_path / "nested", progress=False)
