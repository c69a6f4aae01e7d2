"""torchvision and timm models (``torchvision:NAME``, ``timm:NAME``) through the traced family, on random weights
and small inputs: the width-1.0 tree is the dense model on every path, a static inner prune equals the dense model
with the dropped channels zeroed, and the pruned network runs in onnxruntime as in PyTorch. The matrix covers
residual adds, bottlenecks, depthwise and grouped convolutions, squeeze-excite gates, stochastic depth and an MLP
classifier."""

import pytest
import torch

from sigmab.errors import ConfigError
from sigmab.graph import decompose
from sigmab.models import build_model, load_model
from sigmab.prune import PruneConfig, prune
from sigmab.tree import ConvertConfig, convert
from tests.helpers import assert_same_function, inner_zeroed_output, randomise_bn, torchvision_models

# name -> builder keywords that keep the test small
MATRIX = {"torchvision:resnet18": {}, "torchvision:resnet50": {}, "torchvision:mobilenet_v2": {"width_mult": 0.5},
          "torchvision:mobilenet_v3_small": {}, "torchvision:efficientnet_b0": {},
          "torchvision:regnet_x_400mf": {}, "torchvision:resnext50_32x4d": {}, "timm:resnet18": {}}
EXPORTED = {"torchvision:mobilenet_v3_small", "torchvision:regnet_x_400mf"}


def _zoo_model(name: str, **kwargs) -> torch.nn.Module:
    torchvision_models()  # skips where torchvision is not installed
    if name.startswith("timm:"):
        pytest.importorskip("timm")
    torch.manual_seed(0)
    return randomise_bn(build_model(name, num_classes=10, **kwargs)).eval()


@pytest.mark.parametrize("name", MATRIX)
def test_a_zoo_model_converts_and_prunes_equal_to_its_dense_reference(name: str, tmp_path) -> None:
    model = _zoo_model(name, **MATRIX[name])
    g = torch.Generator().manual_seed(1)
    calib, x = torch.randn(24, 3, 32, 32, generator=g), torch.randn(3, 3, 32, 32, generator=g)
    full = convert(model, calib, ConvertConfig(depth=1, widths=[1.0], calib_size=24, min_leaf_samples=2)).tree
    with torch.no_grad():
        dense = model(x)
        for leaf in full.leaves:
            assert_same_function(full.forward_path(x, leaf), dense)
    net, spec = prune(model, PruneConfig(criterion="l1", scope="inner", keep_ratio=0.5), None)
    reference, masked = inner_zeroed_output(decompose(model), spec, x)
    assert masked > 0
    with torch.no_grad():
        assert_same_function(net(x), reference)
    assert sum(p.numel() for p in net.parameters()) < 0.75 * sum(p.numel() for p in model.parameters())
    if name in EXPORTED:
        pytest.importorskip("onnxruntime")
        from sigmab.export import OnnxGraphs, export_model

        export_model(net, x[:2], tmp_path)
        with torch.no_grad():
            assert_same_function(torch.from_numpy(OnnxGraphs(tmp_path).run("model", x.numpy())), net(x))


def test_the_traced_family_follows_each_structure_of_the_matrix() -> None:
    """What makes the matrix bite is there: grouped convolutions keep equal counts per group, an MLP head."""
    from sigmab.graph import block_handler
    from sigmab.graph.decompose import MLPHead

    regnet = decompose(_zoo_model("torchvision:regnet_x_400mf"))
    divisions = [block_handler(b).inner_divisions(b) for b in regnet.blocks]
    assert all(d and set(d.values()) != {1} for d in divisions)
    assert isinstance(decompose(_zoo_model("torchvision:mobilenet_v3_small")).head, MLPHead)
    effnet = decompose(_zoo_model("torchvision:efficientnet_b0"))
    assert len(effnet.blocks) == 17 and effnet.block_names[:2] == ["features.1.0", "features.2.0"]


def test_a_zoo_checkpoint_loads_by_its_zoo_name(tmp_path) -> None:
    tv = torchvision_models()
    torch.manual_seed(0)
    saved = tv.mobilenet_v3_small(num_classes=7)
    torch.save(saved.state_dict(), tmp_path / "mv3.pth")
    model = load_model(tmp_path / "mv3.pth", arch="torchvision:mobilenet_v3_small")
    assert model.meta.arch == "torchvision:mobilenet_v3_small" and model.meta.num_classes == 7
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), saved.eval()(x))


@pytest.mark.parametrize(("name", "message"), [
    ("torchvision:no_such_net", "torchvision has no classification model 'no_such_net'"),
    ("keras:resnet18", "a model of another zoo is named torchvision:NAME or timm:NAME"),
    ("no_such_net", "unknown architecture 'no_such_net'"),
])
def test_an_unknown_zoo_or_model_is_one_clear_error(name: str, message: str) -> None:
    torchvision_models()
    with pytest.raises(ConfigError, match=message):
        build_model(name)


def test_a_plain_module_converts_and_prunes_with_the_metadata_it_implies() -> None:
    """Any nn.Module, as the README says: a torchvision model as torchvision builds it, no sigmab metadata."""
    from sigmab.models.meta import meta_of

    tv = torchvision_models()
    torch.manual_seed(0)
    model = tv.mobilenet_v3_small(num_classes=10).eval()
    images = torch.randn(32, 3, 32, 32)
    tree = convert(model, images, ConvertConfig(depth=2, widths=[0.5, 0.5], calib_size=32, min_leaf_samples=2)).tree
    logits, leaves = tree.forward_hard(images[:8])
    assert logits.shape == (8, 10) and set(leaves.tolist()) <= {0, 1, 2, 3}
    assert tree.meta == meta_of(model, images) and tree.meta.arch == "MobileNetV3"
    assert (tree.meta.num_classes, tree.meta.in_channels, tree.meta.input_size) == (10, 3, (32, 32))
    net, _ = prune(model, PruneConfig(criterion="fpgm", keep_ratio=0.5), None)
    assert net.meta.arch == "MobileNetV3" and net(images[:2]).shape == (2, 10)


@pytest.mark.parametrize(("name", "node"), [
    ("torchvision:densenet121", "call_function 'cat' on a channel path"),  # concatenations are not followed yet
    ("torchvision:shufflenet_v2_x0_5", "call_function 'cat' on a channel path"),
    ("torchvision:convnext_tiny", "call_function 'permute' on a channel path"),
    ("torchvision:squeezenet1_1", "does not read the previous block's output alone"),
    ("torchvision:vgg11_bn", "no blocks found"),
])
def test_what_the_trace_cannot_follow_is_one_error_naming_it(name: str, node: str) -> None:
    from sigmab.graph.traced import TraceError

    model = _zoo_model(name)
    with pytest.raises(TraceError, match=node):
        decompose(model)
    with pytest.raises(TraceError, match=node):
        prune(model, PruneConfig(criterion="l1", scope="inner", keep_ratio=0.5), None)


@pytest.mark.parametrize("name", ["torchvision:wide_resnet50_2", "torchvision:regnet_y_400mf",
                                  "torchvision:mnasnet0_5", "torchvision:mobilenet_v3_large",
                                  "torchvision:efficientnet_v2_s"])
def test_more_zoo_models_decompose_into_blocks_and_channel_groups(name: str) -> None:
    from sigmab.graph.groups import channel_groups

    dec = decompose(_zoo_model(name))
    inner = [g for g in channel_groups(dec, "all") if g.kind == "inner"]
    assert len(dec.blocks) >= 16 and len(inner) >= len(dec.blocks) - 2
