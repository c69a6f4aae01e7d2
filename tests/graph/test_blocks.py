"""A sliced segment equals the dense segment with the dropped channels zeroed."""

import pytest
import torch

from sigmab.graph import BlockChannels, block_handler, decompose
from tests.helpers import mask_hook, point_batch, tiny_imagenet_resnet, tiny_mobilenet_v2, tiny_pointnet, tiny_resnet

MODELS = {"cifar-resnet20": tiny_resnet, "cifar-resnet20-B": lambda: tiny_resnet(shortcut="B"),
          "resnet18": lambda: tiny_imagenet_resnet(18),
          "resnet50": lambda: tiny_imagenet_resnet(50)}


def _random_channels(dec, start: int, end: int, in_idx: torch.Tensor, g: torch.Generator) -> list[BlockChannels]:
    pick = lambda n, k: torch.randperm(n, generator=g)[:k].sort().values  # noqa: E731
    stage_sets: dict[int, torch.Tensor] = {}
    chans, inp = [], in_idx
    for b in range(start, end):
        w = dec.widths[b]
        out = stage_sets.setdefault(dec.stages[b], pick(w, w // 2 + 1))
        groups = block_handler(dec.blocks[b]).inner_groups(dec.blocks[b])
        inner = {grp: pick(n, max(1, n // 3)) for grp, n in groups.items()}
        chans.append(BlockChannels(inp, out, inner))
        inp = out
    return chans


def _sliced_and_zeroed_dense(dec, start: int, end: int, x: torch.Tensor, in_idx: torch.Tensor,
                             chans: list[BlockChannels]) -> tuple[torch.Tensor, torch.Tensor, list]:
    """(the sliced blocks' output on x's kept channels, the dense blocks' output on x with its dropped channels
    zeroed and masks on every dropped inner and output channel, the sliced blocks)."""
    x_zeroed = torch.zeros_like(x)
    x_zeroed[:, in_idx] = x[:, in_idx]
    handles = []
    for b, ch in zip(range(start, end), chans):
        block = dec.blocks[b]
        for grp, module in block_handler(block).inner_activations(block).items():
            handles.append(module.register_forward_hook(mask_hook(ch.inner[grp], module.num_features)))
        for module in block_handler(block).in_activations(block):
            handles.append(module.register_forward_hook(mask_hook(ch.inp, module.num_features)))
        handles.append(block.register_forward_hook(mask_hook(ch.out, dec.widths[b])))
    with torch.no_grad():
        dense = x_zeroed
        for b in range(start, end):
            dense = dec.blocks[b](dense)
    for h in handles:
        h.remove()
    sliced = [block_handler(dec.blocks[b]).slice(dec.blocks[b], ch) for b, ch in zip(range(start, end), chans)]
    with torch.no_grad():
        out = x[:, in_idx]
        for blk in sliced:
            out = blk(out)
    return out, dense, sliced


@pytest.mark.parametrize("arch", list(MODELS))
@pytest.mark.parametrize(("start", "end"), [(0, 8), (2, 5), (3, 7), (4, 8)])
def test_sliced_segment_equals_zeroed_dense_segment(arch: str, start: int, end: int) -> None:
    """Covers option-A, identity and 1x1-projection shortcuts (CIFAR and torchvision layouts), basic blocks and
    bottlenecks."""
    dec = decompose(MODELS[arch]())
    g = torch.Generator().manual_seed(start * 10 + end)
    in_width = dec.width_before(start)
    in_idx = torch.randperm(in_width, generator=g)[: in_width // 2 + 1].sort().values
    chans = _random_channels(dec, start, end, in_idx, g)
    with torch.no_grad():  # the shape of the stream entering block ``start``
        h = dec.stem(torch.zeros(1, 3, 64, 64))
        for b in range(start):
            h = dec.blocks[b](h)
    x = torch.randn(3, *h.shape[1:])
    out, dense, sliced_blocks = _sliced_and_zeroed_dense(dec, start, end, x, in_idx, chans)
    torch.testing.assert_close(out, dense[:, chans[-1].out], atol=1e-5, rtol=1e-5)
    dropped = torch.ones(dec.widths[end - 1], dtype=torch.bool)
    dropped[chans[-1].out] = False
    assert dense[:, dropped].abs().max() == 0
    assert sum(p.numel() for m in sliced_blocks for p in m.parameters()) < sum(
        p.numel() for b in range(start, end) for p in dec.blocks[b].parameters())


def _stream_before(dec, start: int, size: int = 32) -> torch.Tensor:
    with torch.no_grad():
        h = dec.stem(torch.zeros(1, 3, size, size))
        for b in range(start):
            h = dec.blocks[b](h)
    return h


@pytest.mark.parametrize(("start", "end"), [(0, 8), (3, 11), (9, 14), (12, 18)])
def test_sliced_mobilenet_segment_equals_zeroed_dense_segment(start: int, end: int) -> None:
    """Inverted residuals with and without their shortcut, the expansion and depthwise channels sliced together, and
    the last 1x1 conv; the zeroed reference masks a dropped expansion channel after the depthwise BN."""
    dec = decompose(tiny_mobilenet_v2())
    g = torch.Generator().manual_seed(start * 10 + end)
    in_width = dec.width_before(start)
    in_idx = torch.randperm(in_width, generator=g)[: in_width // 2 + 1].sort().values
    chans = _random_channels(dec, start, end, in_idx, g)
    x = torch.randn(3, *_stream_before(dec, start).shape[1:])
    out, dense, sliced_blocks = _sliced_and_zeroed_dense(dec, start, end, x, in_idx, chans)
    torch.testing.assert_close(out, dense[:, chans[-1].out], atol=1e-5, rtol=1e-5)
    assert any(m.groups > 1 for blk in sliced_blocks for m in blk.modules() if isinstance(m, torch.nn.Conv2d))
    assert sum(p.numel() for m in sliced_blocks for p in m.parameters()) < sum(
        p.numel() for b in range(start, end) for p in dec.blocks[b].parameters())


def test_a_dropped_input_channel_of_an_unexpanded_block_drops_its_depthwise_channel() -> None:
    """Expansion ratio 1: the depthwise conv runs on the stream, so slicing its input equals the dense block with
    the channel zeroed both on the input and after the depthwise BN (whose shift would otherwise revive it)."""
    dec = decompose(tiny_mobilenet_v2())
    block = dec.blocks[0]
    assert not block_handler(block).inner_groups(block)
    keep, out = torch.tensor([0, 2, 3, 5, 6]), torch.arange(block.out_channels)
    x = torch.randn(2, dec.stem_width, 8, 8)
    zeroed = torch.zeros_like(x)
    zeroed[:, keep] = x[:, keep]
    (bn,) = block_handler(block).in_activations(block)
    handle = bn.register_forward_hook(mask_hook(keep, dec.stem_width))
    with torch.no_grad():
        dense = block(zeroed)
        handle.remove()
        sliced = block_handler(block).slice(block, BlockChannels(keep, out, {}))(x[:, keep])
        torch.testing.assert_close(sliced, dense, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(block(zeroed), dense)  # zeroing the input alone is not the same


def test_decomposition_runs_like_the_model() -> None:
    model = tiny_resnet()
    dec = decompose(model)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        h = dec.stem(x)
        for block in dec.blocks:
            h = block(h)
        torch.testing.assert_close(dec.head(h), model(x), rtol=0, atol=0)
    assert dec.block_names[3] == "layer2.0" and dec.stages[3] == 1 and dec.widths[3] == 16


@pytest.mark.parametrize(("start", "end"), [(0, 4), (1, 3), (2, 4)])
def test_sliced_pointnet_levels_equal_zeroed_dense_levels(start: int, end: int) -> None:
    """Dropped features of an incoming point stream sit 3 channels later in the first MLP layer's input
    (after the relative xyz); coordinates are pinned and never dropped."""
    model = tiny_pointnet()
    dec = decompose(model)
    g = torch.Generator().manual_seed(start * 10 + end)
    with torch.no_grad():
        x = dec.stem(point_batch(3))
        for b in range(start):
            x = dec.blocks[b](x)
    width = x.shape[1]
    pick = lambda n, k: torch.randperm(n, generator=g)[:k].sort().values  # noqa: E731
    xyz = torch.arange(width - 3, width)
    in_idx = torch.cat([pick(width - 3, (width - 3) // 2 + 1), xyz]) if start > 0 else torch.arange(width)
    chans, inp = [], in_idx
    for b in range(start, end):
        block, handler = dec.blocks[b], block_handler(dec.blocks[b])
        pinned = torch.tensor(handler.pinned_out(block), dtype=torch.long)
        free = dec.widths[b] - pinned.numel()
        out = torch.cat([pick(free, free // 2 + 1), pinned])
        inner = {grp: pick(n, max(1, n // 3)) for grp, n in handler.inner_groups(block).items()}
        chans.append(BlockChannels(inp, out, inner))
        inp = out
    out, dense, sliced = _sliced_and_zeroed_dense(dec, start, end, x, in_idx, chans)
    torch.testing.assert_close(out, dense[:, chans[-1].out], atol=1e-5, rtol=1e-5)
    assert sum(p.numel() for m in sliced for p in m.parameters()) < sum(
        p.numel() for b in range(start, end) for p in dec.blocks[b].parameters())


def test_a_point_stream_without_its_coordinates_cannot_be_sliced() -> None:
    dec = decompose(tiny_pointnet())
    level = dec.blocks[1]
    width = dec.widths[0]
    bad = BlockChannels(torch.arange(width - 1), torch.arange(dec.widths[1]), {"mlp0": torch.arange(4),
                                                                                "mlp1": torch.arange(4)})
    with pytest.raises(ValueError, match="must keep its coordinate channels"):
        block_handler(level).slice(level, bad)
