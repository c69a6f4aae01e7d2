import pytest
import torch

from sigmab.errors import ConfigError
from sigmab.graph import block_handler, decompose
from sigmab.prune import PruneConfig, plan_pruning, prune, solve_keep_ratio
from tests.helpers import assert_same_function, mask_hook, tiny_imagenet_resnet, tiny_mobilenet_v2, tiny_resnet


def _params(net) -> int:
    return sum(p.numel() for p in net.parameters())




@pytest.mark.parametrize(("criterion", "arch"), [("l1", "cifar"), ("fpgm", "cifar"), ("hrank", "cifar"),
                                                 ("l1", "cifar-B"), ("fpgm", "cifar-B"), ("hrank", "cifar-B"),
                                                 ("activation", "cifar-B"),
                                                 ("l1", "resnet18"), ("fpgm", "resnet50"), ("hrank", "resnet50"),
                                                 ("l1", "mobilenet"), ("fpgm", "mobilenet"), ("hrank", "mobilenet")])
def test_pruned_network_equals_dense_with_the_dropped_channels_zeroed(criterion: str, arch: str, float64) -> None:
    """CIFAR option-A and option-B (projection) shortcuts; torchvision basic blocks; bottlenecks with projections and
    a separate stem stream; MobileNetV2's inverted residuals (expansion and depthwise channels together, streams
    that end where a block has no shortcut) and its last conv.

    In float64 (models and the sliced layers alike), the comparison tests the slicing, not float32 rounding: a
    random ResNet-50's logits reach ~250, where float32 summation order alone moves them by ~1e-4 between
    machines."""
    model = {"cifar": tiny_resnet, "cifar-B": lambda: tiny_resnet(shortcut="B"),
             "resnet18": lambda: tiny_imagenet_resnet(18), "resnet50": lambda: tiny_imagenet_resnet(50),
             "mobilenet": tiny_mobilenet_v2}[arch]()
    calib = torch.randn(32, 3, 32, 32, dtype=torch.float64)
    net, spec = prune(model, PruneConfig(criterion=criterion, scope="all", keep_ratio=0.6), calib)
    dec = decompose(model)  # the reference: dense blocks, masks on every dropped channel
    stream = {0: spec.stem_out}
    for b, ch in enumerate(spec.blocks):
        stream[dec.stages[b]] = ch.out.tolist()
    handles = [dec.stem.register_forward_hook(mask_hook(torch.tensor(spec.stem_out), dec.stem_width))]
    for block, ch, width in zip(dec.blocks, spec.blocks, dec.widths):
        for grp, module in block_handler(block).inner_activations(block).items():
            handles.append(module.register_forward_hook(mask_hook(ch.inner[grp], module.num_features)))
        for module in block_handler(block).in_activations(block):
            handles.append(module.register_forward_hook(mask_hook(ch.inp, module.num_features)))
        handles.append(block.register_forward_hook(mask_hook(ch.out, width)))
    x = torch.randn(4, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        h = dec.stem(x)
        for block in dec.blocks:
            h = block(h)
        reference = dec.head(h)
        assert_same_function(net(x), reference)
    for handle in handles:
        handle.remove()
    assert _params(net) < 0.5 * _params(model)
    if arch.startswith("cifar"):
        assert len(spec.stem_out) == 5 and all(len(ch.inner["conv1"]) == 5 for ch in spec.blocks[:3])  # ceil(.6 * 8)
    if arch == "resnet50":  # the stem stream feeds a projection, not stage 1's stream: kept whole
        assert len(spec.stem_out) == dec.stem_width and len(spec.blocks[0].out) < dec.widths[0]


def test_keep_ratio_one_is_the_dense_model() -> None:
    model = tiny_resnet()
    net, _ = prune(model, PruneConfig(criterion="l1", scope="all", keep_ratio=1.0))
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(net(x), model(x), atol=1e-6, rtol=1e-6)
    assert _params(net) == _params(model)


def test_target_reduction_finds_the_widest_network_within_the_budget() -> None:
    model = tiny_resnet()
    dense = _params(model)
    net, spec = prune(model, PruneConfig(criterion="fpgm", target_reduction=0.5))
    assert _params(net) <= 0.5 * dense
    plan = plan_pruning(model, PruneConfig(criterion="fpgm", target_reduction=0.5))
    wider = plan.build(spec.prune_config["uniform_keep"] + 0.05)[0]  # one more channel somewhere breaks it
    assert _params(wider) > 0.5 * dense
    with pytest.raises(ConfigError, match="no uniform keep ratio reaches"):
        prune(model, PruneConfig(criterion="l1", scope="inner", target_reduction=0.99))


def test_per_group_ratios_override_the_uniform_one() -> None:
    model = tiny_resnet()
    _, spec = prune(model, PruneConfig(criterion="l1", keep_ratio=0.5, group_keep={"layer3.0:conv1": 1.0}))
    assert len(spec.blocks[6].inner["conv1"]) == 32 and len(spec.blocks[7].inner["conv1"]) == 16
    assert len(spec.blocks[0].out) == 8  # inner scope leaves the streams whole
    with pytest.raises(ConfigError, match="unknown groups \\['layer9.0:conv1'\\]"):
        prune(model, PruneConfig(criterion="l1", keep_ratio=0.5, group_keep={"layer9.0:conv1": 0.5}))


def test_l1_keeps_the_largest_filters() -> None:
    model = tiny_resnet()
    conv = model.layer2[1].conv1
    norms = conv.weight.detach().abs().flatten(1).sum(1)
    _, spec = prune(model, PruneConfig(criterion="l1", keep_ratio=0.25))
    kept = spec.blocks[4].inner["conv1"]
    assert set(kept.tolist()) == set(torch.topk(norms, 4).indices.tolist())


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"keep_ratio": 0.5, "target_reduction": 0.5}, "exactly one of keep_ratio and target_reduction"),
    ({}, "exactly one of keep_ratio and target_reduction"),
    ({"keep_ratio": 0.0}, "keep_ratio must be in"),
    ({"keep_ratio": 0.5, "criterion": "taylor"}, "unknown pruning criterion"),
    ({"keep_ratio": 0.5, "scope": "outer"}, "unknown pruning scope"),
])
def test_bad_settings_are_config_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PruneConfig(**kwargs)


def test_hrank_needs_images_and_bisection_edge_cases() -> None:
    with pytest.raises(ConfigError, match="needs calibration images"):
        prune(tiny_resnet(), PruneConfig(criterion="hrank", keep_ratio=0.5))
    assert solve_keep_ratio(lambda r: int(100 * r), 1000) == 1.0
    assert 0.49 < solve_keep_ratio(lambda r: int(100 * r), 50) <= 0.51
