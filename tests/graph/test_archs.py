"""Every registered architecture family on its own example model (``ArchAdapter.example``), as timm's tests run over
``list_models()``: a family is held to the equivalences the moment it registers in ``sigmab.graph.archs``."""

import pytest
import torch

from sigmab.graph import ADAPTERS, decompose, get_adapter
from sigmab.prune import PruneConfig, prune
from sigmab.tree import ConvertConfig, convert
from tests.helpers import assert_same_function, inner_zeroed_output, randomise_bn

FAMILIES = sorted(ADAPTERS.entries.items(), key=lambda entry: entry[0].__name__)
IDS = [cls.__name__ for cls, _ in FAMILIES]




def _example(adapter):
    torch.manual_seed(0)
    return randomise_bn(adapter.example())


def _batch(meta, n: int, seed: int) -> torch.Tensor:
    """(n, C, *input_size) standard normal inputs in the default dtype."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, meta.in_channels, *meta.input_size, generator=g, dtype=torch.float64).to(
        torch.get_default_dtype())


def test_every_model_family_of_the_registry_is_here() -> None:
    assert set(IDS) >= {"CifarResNet", "MobileNetV2", "PointNet2", "ResNet"}


@pytest.mark.parametrize(("cls", "adapter"), FAMILIES, ids=IDS)
def test_the_example_belongs_to_its_family_and_its_parts_compose_the_model(cls, adapter) -> None:
    model = _example(adapter)
    assert isinstance(model, cls) and get_adapter(model) is adapter
    dec = decompose(model)
    assert len(dec.blocks) == len(dec.block_names) == len(dec.stages) == len(dec.widths)
    x = _batch(model.meta, 4, 1)
    with torch.no_grad():
        h = dec.stem(x)
        for block in dec.blocks:
            h = block(h)
        assert_same_function(dec.head(h), model(x))


@pytest.mark.parametrize(("cls", "adapter"), FAMILIES, ids=IDS)
def test_a_full_width_tree_at_the_default_splits_is_the_dense_model_on_every_path(cls, adapter) -> None:
    model = _example(adapter)
    cfg = ConvertConfig(depth=2, widths=[1.0, 1.0], residual_widths=[1.0, 1.0], calib_size=96, min_leaf_samples=4)
    tree = convert(model, _batch(model.meta, 96, 0), cfg).tree
    x = _batch(model.meta, 6, 2)
    with torch.no_grad():
        dense = model(x)
        for leaf in tree.leaves:
            assert_same_function(tree.forward_path(x, leaf), dense)


@pytest.mark.parametrize(("cls", "adapter"), FAMILIES, ids=IDS)
def test_an_inner_prune_is_the_dense_model_with_the_dropped_channels_zeroed(cls, adapter, float64) -> None:
    model = _example(adapter)
    net, spec = prune(model, PruneConfig(criterion="l1", scope="inner", keep_ratio=0.5), None)
    x = _batch(model.meta, 4, 3)
    reference, _ = inner_zeroed_output(decompose(model), spec, x)
    with torch.no_grad():
        assert_same_function(net(x), reference)
    assert sum(p.numel() for p in net.parameters()) < sum(p.numel() for p in model.parameters())
