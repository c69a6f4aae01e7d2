import pytest
import torch

from sigmab.errors import ConfigError
from sigmab.models import build_model
from sigmab.tree import ConvertConfig, convert
from sigmab.tree.metrics import path_costs
from tests.helpers import point_batch, randomise_bn, tiny_imagenet_resnet, tiny_mobilenet_v2, tiny_pointnet, tiny_resnet


@pytest.mark.parametrize("shortcut", ["A", "B"])
@pytest.mark.parametrize(("depth", "splits"), [(1, None), (2, None), (3, ["layer1.2", "layer2.1", "layer3.0"])])
def test_full_width_tree_gives_the_dense_output_on_every_path(model, calib, depth, splits, shortcut) -> None:
    """CIFAR ResNets with option-A (zero-padding) and option-B (projection) shortcuts: split points just before a
    projection (layer2.0, layer3.0) put it at the start of a node."""
    model = model if shortcut == "A" else tiny_resnet(shortcut="B")
    cfg = ConvertConfig(depth=depth, split_points=splits, widths=[1.0] * depth, residual_widths=[1.0] * depth,
                        calib_size=160, min_leaf_samples=8)
    tree = convert(model, calib, cfg).tree
    x = torch.randn(12, 3, 32, 32)
    with torch.no_grad():
        dense = model(x)
        for leaf in tree.leaves:
            torch.testing.assert_close(tree.forward_path(x, leaf), dense, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(tree(x), dense, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("depth", [18, 50])
def test_full_width_torchvision_resnet_tree_is_dense_on_every_path(depth) -> None:
    """Bottlenecks, projection shortcuts and the max-pool stem, at 64x64 inputs, default split points."""
    model = tiny_imagenet_resnet(depth)
    calib = torch.randn(96, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    tree = convert(model, calib, ConvertConfig(depth=2, widths=[1.0, 1.0], residual_widths=[1.0, 1.0], calib_size=96,
                                               min_leaf_samples=4)).tree
    x = torch.randn(6, 3, 64, 64)
    with torch.no_grad():
        dense = model(x)
        for leaf in tree.leaves:
            torch.testing.assert_close(tree.forward_path(x, leaf), dense, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("depth", "splits"), [(1, None), (2, None), (3, None), (2, ["features.3", "features.18"])])
def test_full_width_mobilenet_tree_is_dense_on_every_path(depth, splits) -> None:
    """Inverted residuals (depthwise convs, blocks with and without shortcuts) and the last 1x1 conv as a block."""
    model = tiny_mobilenet_v2()
    calib = torch.randn(96, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    cfg = ConvertConfig(depth=depth, split_points=splits, widths=[1.0] * depth, residual_widths=[1.0] * depth,
                        calib_size=96, min_leaf_samples=4)
    tree = convert(model, calib, cfg).tree
    x = torch.randn(6, 3, 32, 32)
    with torch.no_grad():
        dense = model.eval()(x)
        for leaf in tree.leaves:
            torch.testing.assert_close(tree.forward_path(x, leaf), dense, atol=1e-5, rtol=1e-5)


def test_sliced_mobilenet_tree_cuts_the_active_parameters() -> None:
    model = tiny_mobilenet_v2()
    cfg = ConvertConfig(depth=2, widths=[0.5, 0.25], calib_size=96, min_leaf_samples=4)
    conversion = convert(model, torch.randn(96, 3, 32, 32, generator=torch.Generator().manual_seed(1)), cfg)
    dense = sum(p.numel() for p in model.parameters())
    for leaf in conversion.tree.leaves:
        nodes, routers = conversion.tree.path_keys(leaf)
        active = sum(p.numel() for m in (conversion.tree.backbone, *(conversion.tree.nodes[k] for k in nodes))
                     for p in m.parameters())
        assert active < 0.8 * dense
    with torch.no_grad():
        assert conversion.tree(torch.randn(4, 3, 32, 32)).shape == (4, 10)


@pytest.mark.parametrize(("depth", "splits"), [(1, None), (2, None), (3, None), (2, ["sa2", "mlp"])])
def test_full_width_pointnet_tree_is_dense_on_every_path(depth, splits) -> None:
    model = tiny_pointnet()
    calib = point_batch(96, seed=1)
    cfg = ConvertConfig(depth=depth, split_points=splits, widths=[1.0] * depth, residual_widths=[1.0] * depth,
                        calib_size=96, min_leaf_samples=2)
    tree = convert(model, calib, cfg).tree
    x = point_batch(6, seed=2)
    with torch.no_grad():
        dense = model(x)
        for leaf in tree.leaves:
            torch.testing.assert_close(tree.forward_path(x, leaf), dense, atol=1e-5, rtol=1e-5)


def test_sliced_pointnet_tree_keeps_coordinates_and_cuts_parameters() -> None:
    model = tiny_pointnet()
    cfg = ConvertConfig(depth=2, split_points=["sa2", "sa3"], widths=[0.5, 0.5], residual_widths=[0.5, 0.5],
                        calib_size=64, min_leaf_samples=4)
    conversion = convert(model, point_batch(64, seed=1), cfg)
    dec_widths = [16 + 3, 24 + 3, 40 + 3, 16]
    for spec in conversion.spec.nodes.values():
        for b, ch in zip(range(spec.start, spec.end), spec.blocks):
            width = dec_widths[b]
            if b < 3:  # set-abstraction outputs: half the features, all three coordinates
                assert set(range(width - 3, width)) <= set(ch.out.tolist())
                assert len(ch.out) == (width - 3) // 2 + 3
    with torch.no_grad():
        logits, leaves = conversion.tree.forward_hard(point_batch(64, seed=1))
    assert torch.equal(leaves, conversion.calib_leaves) and logits.shape == (64, 5)
    dense = sum(p.numel() for p in model.parameters())
    assert all(cost.params < 0.6 * dense for cost in path_costs(conversion.tree, (4, 64)))


def test_hard_routing_at_initialisation_equals_the_kmeans_assignment(sliced, calib) -> None:
    with torch.no_grad():
        _, leaves = sliced.tree.forward_hard(calib)
    assert torch.equal(leaves, sliced.calib_leaves)
    shares = torch.bincount(leaves, minlength=4).float() / len(leaves)
    assert shares.min() >= 0.2 * 0.2 - 1e-9  # the balance constraint holds at both levels


def test_a_router_kind_without_a_closed_form_is_fitted_to_the_kmeans_split(model, calib, tmp_path) -> None:
    from sigmab.tree.spec import load_tree, save_tree

    cfg = ConvertConfig(depth=2, calib_size=160, min_leaf_samples=8, router_kind="mlp")
    conversion = convert(model, calib, cfg)
    assert {r.kind for r in conversion.tree.routers.values()} == {"mlp"}
    with torch.no_grad():
        _, leaves = conversion.tree.forward_hard(calib)
    assert (leaves == conversion.calib_leaves).float().mean() >= 0.9  # fitted, not exact like the cosine rows
    save_tree(conversion.tree, conversion.spec, tmp_path)
    reloaded, spec = load_tree(tmp_path)
    assert spec.routers["r"].kind == "mlp" and spec.convert_config["router_kind"] == "mlp"
    with torch.no_grad():
        assert torch.equal(reloaded.forward_hard(calib)[1], leaves)
    again = convert(model, calib, cfg)  # seeded: a conversion is repeatable
    assert all(torch.equal(a, b) for a, b in zip(again.tree.state_dict().values(),
                                                  conversion.tree.state_dict().values()))


def test_nodes_are_sliced_to_the_requested_widths(sliced) -> None:
    spec = sliced.spec
    assert spec.split_points == ["layer2.0", "layer3.0"]
    n0 = spec.nodes["n0"].blocks[0]
    assert len(n0.inner["conv1"]) == 8 and len(n0.out) == 12  # 0.5 x 16 inner, 0.75 x 16 residual
    leaf = spec.nodes["n01"]
    assert len(leaf.blocks[0].inner["conv1"]) == 8 and len(leaf.blocks[0].out) == 16  # 0.25 / 0.5 of 32
    assert leaf.head_in == leaf.blocks[-1].out.tolist()
    assert {k: (r.kind, r.in_channels) for k, r in spec.routers.items()} == {
        "r": ("cosine", 8), "r0": ("cosine", 12), "r1": ("cosine", 12)}


def test_conversion_leaves_the_dense_model_untouched(model, calib) -> None:
    before = {k: v.clone() for k, v in model.state_dict().items()}
    convert(model, calib, ConvertConfig(depth=1, calib_size=160, min_leaf_samples=8))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model.training


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"split_points": ["layer9.0", "layer3.0"]}, "invalid split point 'layer9.0'; valid: layer1.1"),
    ({"split_points": ["layer3.0", "layer2.0"]}, "forward order"),
    ({"widths": [0.5, 1.5]}, r"widths: every width must be in \(0, 1\]"),
    ({"widths": [0.0, 0.5]}, r"every width must be in \(0, 1\]"),
    ({"residual_widths": [0.5]}, "one ratio per depth"),
    ({"depth": 4}, "depth must be 1, 2 or 3"),
    ({"calib_size": 40}, "needs at least 64 calibration samples"),
    ({"kmeans_restarts": 0}, "kmeans_restarts must be >= 1, got 0"),
    ({"router_scale": 1e300}, r"router_scale must be in \(0, 10000\]"),  # its rows overflowed to inf
    ({"router_scale": float("nan")}, "router_scale must be in"),
    ({"router_kind": "oracle"}, "router_kind must be one of cosine, mlp"),
])
def test_bad_conversion_settings_fail_before_any_work(model, calib, kwargs, message) -> None:
    with pytest.raises(ConfigError, match=message):
        convert(model, calib, ConvertConfig(**{"depth": 2, "calib_size": 160, "min_leaf_samples": 16, **kwargs}))


def test_depth_the_architecture_cannot_hold_and_too_few_images(model) -> None:
    resnet8 = randomise_bn(build_model("resnet8", widths=[4, 4, 4]))
    with pytest.raises(ConfigError, match="a model with 3 blocks cannot hold a depth-3 tree"):
        convert(resnet8, torch.randn(200, 3, 32, 32), ConvertConfig(depth=3, calib_size=200, min_leaf_samples=8))
    with pytest.raises(ConfigError, match="32 calibration samples are too few for 4 leaves"):
        convert(model, torch.randn(32, 3, 32, 32), ConvertConfig(depth=2, calib_size=64, min_leaf_samples=16))


def test_resnet50_default_tree_is_the_measured_one() -> None:
    """Depth 2 with no widths: split before stages 3 and 4, widths 1/2 then 1/4, as the analytic benchmark chose."""
    import json
    from pathlib import Path

    chosen = json.loads((Path(__file__).parents[2] / "benchmarks/results/resnet50_analytic.json").read_text())["chosen"]
    model = tiny_imagenet_resnet(50)
    calib = torch.randn(64, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    spec = convert(model, calib, ConvertConfig(depth=2, calib_size=64, min_leaf_samples=4)).spec
    assert spec.split_points == chosen["split_points"]
    for node, width in (("n0", chosen["widths"][0]), ("n01", chosen["widths"][1])):
        block = spec.nodes[node].blocks[0]
        dense_width = (model.layer3 if node == "n0" else model.layer4)[0].conv1.out_channels
        assert len(block.inner["conv1"]) == round(width * dense_width)
