"""Channel groups read off a torch.fx trace equal what the hand-written block handlers know, block by block, on the
ResNet (CIFAR option A and B, torchvision basic and bottleneck) and MobileNetV2 families."""

import pytest
import torch
from torch import nn

from sigmab.graph import block_handler, decompose
from sigmab.graph.traced import TraceError, slice_traced, trace_groups
from sigmab.models.cifar_resnet import ZeroPadShortcut
from tests.helpers import assert_same_function, tiny_imagenet_resnet, tiny_mobilenet_v2, tiny_resnet

MODELS = {"cifar-A": lambda: tiny_resnet(), "cifar-B": lambda: tiny_resnet(shortcut="B"),
          "resnet18": lambda: tiny_imagenet_resnet(18), "resnet50": lambda: tiny_imagenet_resnet(50),
          "mobilenet_v2": tiny_mobilenet_v2}


def _ids(modules) -> set[int]:
    return {id(m) for m in modules}


@pytest.mark.parametrize("name", MODELS)
def test_traced_groups_equal_the_hand_written_handlers_on_every_block(name: str) -> None:
    dec = decompose(MODELS[name]())
    seen = {"projections": 0, "depthwise on the input": 0, "inner groups": 0}
    for index, block in enumerate(dec.blocks):
        where = f"{name} {dec.block_names[index]}"
        handler, traced = block_handler(block), trace_groups(block, shortcut_types=(ZeroPadShortcut,))
        known = handler.inner_layers(block)
        assert sorted(handler.inner_groups(block).values()) == sorted(traced.inner.values()), where
        by_producers = {frozenset(_ids(producers)): group for group, producers in traced.producers.items()}
        for group, (producers, consumers) in known.items():
            mine = by_producers[frozenset(_ids(producers))]  # the same layers write the group...
            assert _ids(traced.consumers[mine]) == _ids(consumers), where  # ...and read it
            assert traced.activations[mine] is handler.inner_activations(block)[group], where
        out_producers, in_consumers = handler.stream_layers(block)
        assert _ids(traced.out_producers) == _ids(out_producers), where
        assert _ids(traced.in_consumers) == _ids(in_consumers), where
        assert _ids(traced.in_activations) == _ids(handler.in_activations(block)), where
        seen["projections"] += len(traced.out_producers) > 1
        seen["depthwise on the input"] += bool(traced.in_activations)
        seen["inner groups"] += len(traced.inner)
    # the cases that make the comparison bite are there
    assert seen["inner groups"] >= len(dec.blocks) - 2  # all but an unexpanded block and a last conv
    assert seen["projections"] == {"cifar-A": 0, "cifar-B": 2, "resnet18": 3, "resnet50": 4}.get(name, 0)
    assert (seen["depthwise on the input"] > 0) == (name == "mobilenet_v2")


@pytest.mark.parametrize("name", MODELS)
def test_the_traced_decomposition_equals_the_hand_written_adapters(name: str) -> None:
    from sigmab.graph.traced import TracedAdapter

    model = MODELS[name]()
    known, traced = decompose(model), TracedAdapter().decompose(model)
    assert (traced.block_names, traced.stages, traced.widths, traced.stem_width) == (
        known.block_names, known.stages, known.widths, known.stem_width)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(traced.stem(x), known.stem(x))


class _Concat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.a(x), self.b(x)], 1)


class _Grouped(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1, groups=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_an_operation_the_rules_do_not_cover_is_one_error_naming_it() -> None:
    with pytest.raises(TraceError, match=r"_Concat node 'cat': call_function 'cat' on a channel path"):
        trace_groups(_Concat())
    with pytest.raises(TraceError, match=r"grouped convolution \(groups=2\) on the block's incoming or outgoing "
                                         "stream is not followed yet"):
        trace_groups(_Grouped())


def _random_channels(block, handler, width_in: int, width_out: int, g: torch.Generator):
    from sigmab.graph import BlockChannels

    def keep(n: int) -> torch.Tensor:
        return torch.randperm(n, generator=g)[: max(1, n // 2)].sort().values

    pinned = handler.pinned_out(block)
    out = keep(width_out)
    if pinned:
        out = torch.unique(torch.cat([out, torch.tensor(pinned)]))
    return BlockChannels(keep(width_in), out, {k: keep(v) for k, v in handler.inner_groups(block).items()})


@pytest.mark.parametrize("name", MODELS)
def test_a_traced_slice_computes_what_the_hand_written_slice_computes(name: str, float64) -> None:
    """Same kept channels (random, identity shortcuts included where the kept input and output differ), same
    outputs, block by block, in float64."""
    dec = decompose(MODELS[name]())
    g = torch.Generator().manual_seed(0)
    for index, block in enumerate(dec.blocks):
        handler, traced = block_handler(block), trace_groups(block, shortcut_types=(ZeroPadShortcut,))
        channels = _random_channels(block, handler, dec.width_before(index), dec.widths[index], g)
        by_producers = {frozenset(_ids(p)): group for group, p in traced.producers.items()}
        inner = {by_producers[frozenset(_ids(producers))]: channels.inner[group]
                 for group, (producers, _) in handler.inner_layers(block).items()}
        mine = slice_traced(block, channels.inp, channels.out, inner, shortcut_types=(ZeroPadShortcut,))
        expected = handler.slice(block, channels)
        size = 8 if name.startswith("cifar") or name == "mobilenet_v2" else 4
        x = torch.randn(2, len(channels.inp), size, size, generator=g)
        with torch.no_grad():
            assert_same_function(mine(x), expected(x))
    assert sum(p.numel() for p in mine.parameters()) == sum(p.numel() for p in expected.parameters())


@pytest.mark.parametrize("name", ["cifar-A", "resnet50", "mobilenet_v2"])
def test_with_traced_handlers_conversion_and_pruning_build_the_same_networks(name: str, monkeypatch) -> None:
    """Every hand-written handler of the family swapped for the traced one: the same tree (same routing, same
    outputs on every path) and the same static prune."""
    from sigmab.graph import BLOCK_HANDLERS
    from sigmab.graph.traced import TracedBlockHandler
    from sigmab.prune import PruneConfig, prune
    from sigmab.tree import ConvertConfig, convert

    model = MODELS[name]()
    size = 64 if name == "resnet50" else 32
    g = torch.Generator().manual_seed(3)
    calib, x = torch.randn(96, 3, size, size, generator=g), torch.randn(6, 3, size, size, generator=g)
    cfg = ConvertConfig(depth=2, widths=[0.5, 0.5], residual_widths=[0.75, 0.75], calib_size=96, min_leaf_samples=4)
    prune_cfg = PruneConfig(criterion="l1", scope="all", keep_ratio=0.6)
    built = [convert(model, calib, cfg).tree, prune(model, prune_cfg, None)[0]]
    for block_type in {type(b) for b in decompose(model).blocks}:
        monkeypatch.setitem(BLOCK_HANDLERS.entries, block_type, TracedBlockHandler((ZeroPadShortcut,)))
    traced = [convert(model, calib, cfg).tree, prune(model, prune_cfg, None)[0]]
    with torch.no_grad():
        (logits, leaves), (logits_t, leaves_t) = built[0].forward_hard(x), traced[0].forward_hard(x)
        assert torch.equal(leaves, leaves_t)
        assert_same_function(logits_t, logits)
        assert_same_function(traced[1](x), built[1](x))
    assert [sum(p.numel() for p in net.parameters()) for net in traced] == \
        [sum(p.numel() for p in net.parameters()) for net in built]


class _MyBlock(nn.Module):
    """A residual block of a user's own: no handler is registered for it."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.a, self.na = nn.Conv2d(width, hidden, 3, padding=1, bias=False), nn.BatchNorm2d(hidden)
        self.b, self.nb = nn.Conv2d(hidden, width, 3, padding=1, bias=False), nn.BatchNorm2d(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.nb(self.b(torch.relu(self.na(self.a(x))))))


class _GatedBlock(nn.Module):
    """An inverted residual with a squeeze-excite gate (EfficientNet's MBConv, in small)."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(width, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.SiLU())
        self.depthwise = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False),
                                       nn.BatchNorm2d(hidden), nn.SiLU())
        self.squeeze, self.act, self.excite = nn.Conv2d(hidden, 4, 1), nn.ReLU(), nn.Conv2d(4, hidden, 1)
        self.project = nn.Sequential(nn.Conv2d(hidden, width, 1, bias=False), nn.BatchNorm2d(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.depthwise(self.expand(x))
        gate = torch.sigmoid(self.excite(self.act(self.squeeze(nn.functional.adaptive_avg_pool2d(h, 1)))))
        return x + self.project(h * gate)


class _GroupedBlock(nn.Module):
    """A ResNeXt/RegNet bottleneck in small: 1x1, grouped 3x3, 1x1, residual add."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.reduce = nn.Sequential(nn.Conv2d(width, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU())
        self.grouped = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1, groups=2, bias=False),
                                     nn.BatchNorm2d(hidden), nn.ReLU())
        self.expand = nn.Sequential(nn.Conv2d(hidden, width, 1, bias=False), nn.BatchNorm2d(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.expand(self.grouped(self.reduce(x))))


class _MyNet(nn.Module):
    """A user's own model: stem, two stages of its own blocks (the second behind a 1x1 transition), pool, linear."""

    def __init__(self, gated: bool = False, grouped: bool = False) -> None:
        super().__init__()
        from sigmab.models import ModelMeta

        block = _GatedBlock if gated else _GroupedBlock if grouped else _MyBlock
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.body = nn.Sequential(block(8, 6), block(8, 6),
                                  nn.Sequential(nn.Conv2d(8, 12, 1, stride=2, bias=False), nn.BatchNorm2d(12)),
                                  block(12, 10), block(12, 10))
        self.fc = nn.Linear(12, 5)
        self.meta = ModelMeta("mynet", 5, 3, (16, 16), (0.5,) * 3, (0.25,) * 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.body(self.stem(x)), 1), 1))


@pytest.mark.parametrize(("gated", "grouped"), [(False, False), (True, False), (False, True)],
                         ids=["residual", "squeeze-excite", "grouped"])
def test_a_model_of_ones_own_converts_and_prunes_through_its_trace(gated: bool, grouped: bool, float64) -> None:
    from sigmab.graph import get_adapter
    from sigmab.graph.traced import TracedAdapter
    from sigmab.prune import PruneConfig, prune
    from sigmab.tree import ConvertConfig, convert
    from tests.helpers import assert_same_function, inner_zeroed_output, randomise_bn

    torch.manual_seed(0)
    model = randomise_bn(_MyNet(gated, grouped))
    assert isinstance(get_adapter(model), TracedAdapter)
    dec = decompose(model)
    assert dec.block_names == ["body.0", "body.1", "body.2", "body.3", "body.4"] and dec.stages == [0, 0, 1, 1, 1]
    g = torch.Generator().manual_seed(1)
    calib, x = torch.randn(64, 3, 16, 16, generator=g), torch.randn(4, 3, 16, 16, generator=g)
    full = convert(model, calib, ConvertConfig(depth=2, split_points=["body.2", "body.3"], widths=[1.0, 1.0],
                                               calib_size=64, min_leaf_samples=4)).tree
    assert full.leaves and dec.block_names[2] in convert(model, calib, ConvertConfig(
        depth=1, calib_size=64, min_leaf_samples=4)).spec.split_points  # split at the last stage's start
    with torch.no_grad():
        for leaf in full.leaves:
            assert_same_function(full.forward_path(x, leaf), model(x))
    net, spec = prune(model, PruneConfig(criterion="l1", scope="inner", keep_ratio=0.5), None)
    reference, masked = inner_zeroed_output(dec, spec, x)
    assert masked == 4 * (2 if gated or grouped else 1)  # a gate's hidden channels, a grouped conv's outputs
    if grouped:  # both halves of a grouped conv's input and output keep the same count
        from sigmab.graph import block_handler

        halves = [(ids < size // 2).sum() * 2 == ids.numel()
                  for block, ch in zip(dec.blocks, spec.blocks)
                  for group, size in block_handler(block).inner_groups(block).items() for ids in [ch.inner[group]]]
        assert len(halves) == 8 and all(halves)
    with torch.no_grad():
        assert_same_function(net(x), reference)


def test_a_model_the_trace_cannot_follow_is_one_error_naming_the_node() -> None:
    from sigmab.tree import ConvertConfig, convert

    model = _MyNet()
    model.body[1] = _Concat()  # 8 -> 8 channels, by concatenating two 4-channel halves: not followed yet
    model.body[1].a, model.body[1].b = nn.Conv2d(8, 4, 1), nn.Conv2d(8, 4, 1)
    with pytest.raises(TraceError, match="node 'cat': call_function 'cat' on a channel path"):
        convert(model, torch.randn(64, 3, 16, 16), ConvertConfig(depth=1, calib_size=64, min_leaf_samples=4))
