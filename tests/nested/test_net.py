import copy
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from sigmab.cli import main
from sigmab.errors import ConfigError
from sigmab.nested import NestedSparseNet, Route, magnitude_keep_levels, storage_cost
from sigmab.nested.net import calibrate_route, default_routes, norm_layers, route_cost
from sigmab.nested.training import NestedConfig, load_nested, train_nested
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


def _reference(net: NestedSparseNet, route: Route) -> nn.Module:
    """A plain copy of ``net.model`` with ``route``'s masks multiplied into its weights and each BatchNorm
    layer holding the statistics of the level of the masked layer before it."""
    reference = copy.deepcopy(net.model)
    modules = dict(reference.named_modules())
    with torch.no_grad():
        for i, name in enumerate(net.layers):
            modules[name].weight.mul_(net.mask(i, route.levels[i]))
        for j, (name, source) in enumerate(net.norms):
            mean, var = net.norm_stats(j, route.levels[source])
            modules[name].running_mean.copy_(mean)
            modules[name].running_var.copy_(var)
    return reference


def test_each_level_keeps_its_own_batchnorm_statistics() -> None:
    """Training passes at every level leave each level's statistics as if only that level had run: the
    regression for one shared set of statistics, which every level's pass overwrote."""
    net = NestedSparseNet(tiny_resnet(), [0.5, 0.9])
    x, probe = torch.randn(16, 3, 32, 32), torch.randn(4, 3, 32, 32)
    own = copy.deepcopy(net.model.state_dict())
    alone = []
    for level in range(2):
        reference = _reference(net, Route.uniform(level, len(net.layers))).train()
        with torch.no_grad():
            reference(x)  # the statistics of one training pass of this level alone
        alone.append(reference.eval())
    net.train()
    with torch.no_grad():
        net.forward_at(x, 0)
        net.forward_at(x, 1)
    net.eval()
    with torch.no_grad():
        for level in range(2):
            torch.testing.assert_close(net.forward_at(probe, level), alone[level](probe))
    assert not torch.allclose(net.norm_stats(1, 0)[0], net.norm_stats(1, 1)[0])
    assert all(torch.equal(v, net.model.state_dict()[k]) for k, v in own.items() if "running" in k)


def test_a_rerouted_route_reads_each_normalisation_at_its_layers_level() -> None:
    net = NestedSparseNet(tiny_resnet(), [0.5, 0.9])
    with torch.no_grad():  # make the levels' statistics differ
        for j in range(len(net.norms)):
            net.norm_stats(j, 1)[0].add_(0.3)
            net.norm_stats(j, 1)[1].mul_(1.5)
    net.eval()
    n, x = len(net.layers), torch.randn(3, 3, 32, 32)
    for route in (Route.rerouted(0, 1, n // 2, n), Route.rerouted(1, 0, 3, n)):
        with torch.no_grad():
            torch.testing.assert_close(net.forward_at(x, route), _reference(net, route).eval()(x))


def test_a_calibrated_rerouting_has_the_statistics_of_its_own_forward_passes() -> None:
    net = NestedSparseNet(tiny_resnet(), [0.5, 0.9])
    n = len(net.layers)
    route = Route.rerouted(0, 1, n // 2, n)
    batches = [torch.randn(8, 3, 32, 32) for _ in range(3)]
    levels_before = copy.deepcopy(net.state_dict())
    reference = _reference(net, route)
    for m in reference.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None
            m.num_batches_tracked.zero_()
    reference.train()
    with torch.no_grad():
        for x in batches:
            reference(x)  # plain average of three training passes' statistics
    calibrate_route(net.eval(), route, iter(batches))
    assert net.route_stats == [route] and not net.training and net.route == Route.uniform(0, n)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in levels_before.items())  # levels and weights untouched
    probe = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(net.forward_at(probe, route), reference.eval()(probe))
        # the other routes still read their levels' statistics
        torch.testing.assert_close(net.forward_at(probe, 0), _reference(net, Route.uniform(0, n)).eval()(probe))
    assert storage_cost(net).extra_norm_stats == 2 * sum(2 * m.num_features for m in reference.modules()
                                                         if isinstance(m, nn.BatchNorm2d)) * 4
    with pytest.raises(ConfigError, match="no batches"):
        calibrate_route(net, Route.rerouted(1, 0, 2, n), iter([]))
    assert net.route_stats == [route]


def test_normalisation_layers_follow_the_masked_layer_before_them() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4),
                          nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4, track_running_stats=False))
    assert norm_layers(model, ["2", "4"]) == [("1", 0), ("3", 0)]  # before any masked layer: the first one's
    assert norm_layers(model, ["0", "2", "4"]) == [("1", 0), ("3", 1)]


def test_costs_and_storage_on_a_known_model() -> None:
    model = nn.Sequential(nn.Linear(8, 10), nn.ReLU(), nn.Linear(10, 4))  # 90 + 44 parameters
    net = NestedSparseNet(model, [0.5, 0.75])  # masks the second linear only (40 weights)
    assert net.layers == ["2"]
    cost = route_cost(net, (8,), Route.uniform(1, 1))
    assert cost.params == 90 + 4 + 10 and cost.macs == 80 + 10  # 10 of 40 weights kept: 10 MACs
    storage = storage_cost(net)
    # 20 values (densest level), 20 one-byte indices vs a 5-byte bitmap, 2-bit level tags, 94 unmasked
    assert (storage.values, storage.positions, storage.level_tags, storage.unmasked) == (80, 5, 5, 376)
    assert storage.extra_norm_stats == 0
    with_norm = NestedSparseNet(nn.Sequential(nn.Linear(8, 10), nn.BatchNorm1d(10), nn.Linear(10, 4)), [0.5, 0.75, 0.9])
    assert storage_cost(with_norm).extra_norm_stats == 2 * (10 + 10) * 4  # two more levels of mean + var
    assert [r.label() for r in default_routes(net)] == ["L0", "L1"]  # one masked layer: nothing to reroute


def test_bad_sparsities_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="must increase"):
        NestedSparseNet(tiny_resnet(), [0.9, 0.8])
    with pytest.raises(ConfigError, match=r"in \[0, 1\)"):
        NestedConfig(sparsities=[0.5, 1.0])


def test_training_writes_a_folder_that_reloads_to_the_same_outputs(tmp_path: Path) -> None:
    checkpoint = digits_resnet_checkpoint(tmp_path / "dense", epochs=2)
    cfg = NestedConfig(dataset="digits", sparsities=[0.5, 0.8], epochs=1, batch_size=64, lr=0.02, val_fraction=0.2,
                       calibration_batches=2)
    report = train_nested(checkpoint, cfg, tmp_path / "nested", progress=False)
    routes = {r["route"]: r for r in report["routes"]}
    assert list(routes) == ["L0", "L1", "L0->L1@3", "L1->L0@3"]
    assert [r["calibrated"] for r in routes.values()] == [False, False, True, True]  # reroutings get their own
    assert routes["L1"]["params"] < routes["L0->L1@3"]["params"] < routes["L0"]["params"] < report["dense_params"]
    assert report["storage_bytes"] < report["dense_bytes"]
    assert json.loads((tmp_path / "nested" / "report.json").read_text()) == report
    net, spec = load_nested(tmp_path / "nested")
    x = torch.randn(5, 1, 8, 8)
    assert spec["sparsities"] == [0.5, 0.8]
    assert not torch.equal(net.norm_stats(1, 0)[1], net.norm_stats(1, 1)[1])  # trained levels differ ...
    with torch.no_grad():
        before = net.forward_at(x, Route.uniform(1, len(net.layers)))
        again, _ = load_nested(tmp_path / "nested")
        torch.testing.assert_close(again.forward_at(x, 1), before)
        rerouted = Route.rerouted(0, 1, 3, len(net.layers))
        assert again.route_stats == net.route_stats == [rerouted, Route.rerouted(1, 0, 3, len(net.layers))]
        torch.testing.assert_close(again.forward_at(x, rerouted), net.forward_at(x, rerouted))
        for j in range(len(net.norms)):  # ... and reload as saved
            for level in range(2):
                assert all(torch.equal(a, b) for a, b in zip(again.norm_stats(j, level), net.norm_stats(j, level)))
    with pytest.raises(ConfigError, match="already"):
        train_nested(checkpoint, cfg, tmp_path / "nested", progress=False)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU (run on a GPU machine)"))])
def test_nested_training_runs_where_device_says(device: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`sigmab nested --device` reaches the trainer: the device is resolved and every training batch is there."""
    import sigmab.train.driver as driver

    checkpoint = digits_resnet_checkpoint(tmp_path / "dense", epochs=1)
    asked, seen = [], set()
    real_resolve, real_forward = driver.resolve_device, NestedSparseNet.forward

    def resolve(name: str) -> torch.device:
        asked.append(name)
        return real_resolve(name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            seen.add(x.device.type)
        return real_forward(self, x)

    monkeypatch.setattr(driver, "resolve_device", resolve)
    monkeypatch.setattr(NestedSparseNet, "forward", forward)
    assert main(["nested", "--checkpoint", str(checkpoint), "--dataset", "digits", "--out", str(tmp_path / "n"),
                 "--sparsities", "[0.5, 0.8]", "--epochs", "1", "--calibration-batches", "0", "--device", device,
                 "--no-progress"]) == 0
    assert asked == [device] and seen == {device}
    net, _ = load_nested(tmp_path / "n")
    assert next(net.parameters()).device.type == "cpu"  # the folder holds CPU weights either way
