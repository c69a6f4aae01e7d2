"""Block-level channel coupling: which channels of a block belong together, and how to slice it.

A block maps a residual *stream* to a stream. Its channels fall in three kinds of group:
- ``in``: the stream entering the block (coupled to the previous block's ``out``);
- ``out``: the stream leaving it (all blocks of one stage inside a tree node share one set);
- ``inner``: named groups private to the block (e.g. a BasicBlock's conv1 outputs).
One :class:`BlockHandler` per block type, in a registry, knows these groups for its type.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from sigmab.graph.slicing import IndexShortcut, channel_map, slice_layer
from sigmab.models.cifar_resnet import BasicBlock, ZeroPadShortcut
from sigmab.models.imagenet_resnet import Bottleneck, ResNetBasicBlock
from sigmab.models.mobilenet_v2 import ConvBNAct, InvertedResidual
from sigmab.models.pointnet2 import XYZ, PointClassifierMLP, SetAbstraction
from sigmab.utils.registry import TypeRegistry


@dataclass(frozen=True)
class BlockChannels:
    """Kept dense channel ids of one block: sorted LongTensors."""

    inp: torch.Tensor
    out: torch.Tensor
    inner: dict[str, torch.Tensor]

    def to_json(self) -> dict:
        inner = {k: v.tolist() for k, v in self.inner.items()}
        return {"in": self.inp.tolist(), "out": self.out.tolist(), "inner": inner}

    @classmethod
    def from_json(cls, d: dict) -> BlockChannels:
        """Channel ids must be whole, non-negative, unique and sorted: an edited spec that breaks this would
        otherwise load and silently change the outputs."""
        def t(v: object) -> torch.Tensor:
            if not isinstance(v, list) or not v or not all(isinstance(i, int) and not isinstance(i, bool) for i in v):
                raise ValueError(f"channel ids must be a non-empty list of integers, got {v!r}")
            if v[0] < 0 or any(b <= a for a, b in zip(v, v[1:])):
                raise ValueError(f"channel ids must be non-negative, unique and sorted, got {v}")
            return torch.tensor(v, dtype=torch.long)

        return cls(t(d["in"]), t(d["out"]), {k: t(v) for k, v in d["inner"].items()})

    def check_widths(self, inp: int, out: int, inner: dict[str, int], *, where: str) -> None:
        """Raise ``ValueError`` unless every id fits the dense widths (``inner``: group -> width)."""
        for label, ids, width in [("in", self.inp, inp), ("out", self.out, out),
                                  *((f"inner {g}", ids, inner.get(g, 0)) for g, ids in self.inner.items())]:
            if int(ids.max()) >= width:
                raise ValueError(f"{where}: {label} channel id {int(ids.max())} is out of range for {width} channels")
        if set(self.inner) != set(inner):
            raise ValueError(f"{where}: inner groups {sorted(self.inner)} do not match {sorted(inner)}")


class BlockHandler:
    """Channel groups and slicing of one block type."""

    def inner_groups(self, block: nn.Module) -> dict[str, int]:
        """Dense width of each inner group."""
        raise NotImplementedError

    def inner_activations(self, block: nn.Module) -> dict[str, nn.Module]:
        """Per inner group, the module whose output (N, C, ...) carries that group's channels.

        Its output, after the block's non-linearity, is where importance statistics are read and,
        in the zeroed-dense reference, where dropped channels are masked.
        """
        raise NotImplementedError

    def inner_layers(self, block: nn.Module) -> dict[str, tuple[list[nn.Module], list[nn.Module]]]:
        """Per inner group, (producers, consumers): the layers whose weight dim 0, resp. dim 1, indexes
        the group's channels. Weight-based criteria (L1, FPGM) score channels from them."""
        raise NotImplementedError

    def in_activations(self, block: nn.Module) -> list[nn.Module]:
        """Modules inside the block whose outputs (N, C_in, ...) carry the incoming stream's channels one to one
        (a depthwise conv on the stream): dropping an incoming channel drops theirs too, so a zeroed-dense
        reference masks them as well as the input."""
        return []

    def stream_layers(self, block: nn.Module) -> tuple[list[nn.Module], list[nn.Module]]:
        """(layers producing the outgoing stream's channels, layers consuming the incoming stream's)."""
        raise NotImplementedError

    def pinned_out(self, block: nn.Module) -> list[int]:
        """Outgoing stream channels that are never dropped (e.g. point coordinates), as dense ids."""
        return []

    def slice(self, block: nn.Module, channels: BlockChannels) -> nn.Module:
        raise NotImplementedError


BLOCK_HANDLERS: TypeRegistry[BlockHandler] = TypeRegistry("block handler")


register_block_handler = BLOCK_HANDLERS.register_class


def block_handler(block: nn.Module) -> BlockHandler:
    return BLOCK_HANDLERS.get(block)


def module_shell(module: nn.Module) -> nn.Module:
    """An instance of ``module``'s class with its plain attributes but no submodules, parameters or hooks.

    Sliced blocks keep their class (and so their ``forward``) with smaller layers put in.
    """
    new = type(module).__new__(type(module))
    nn.Module.__init__(new)
    for key, value in vars(module).items():
        if not key.startswith("_") and key != "training":
            setattr(new, key, copy.copy(value))
    return new.train(module.training)


def _is_projection(shortcut: nn.Module | None) -> bool:
    """A 1x1 conv + BN shortcut (``nn.Sequential(conv, bn)``: option B, torchvision's ``downsample``)."""
    return (isinstance(shortcut, nn.Sequential) and len(shortcut) == 2
            and isinstance(shortcut[0], nn.Conv2d) and isinstance(shortcut[1], nn.BatchNorm2d))


def projection_convs(shortcut: nn.Module | None) -> list[nn.Module]:
    """The shortcut's convolution, which reads the incoming stream and writes the outgoing one; [] if it has none."""
    return [shortcut[0]] if _is_projection(shortcut) else []


def slice_shortcut(shortcut: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> nn.Module:
    """A projection is sliced on both sides; parameter-free shortcuts become a channel map from the kept input to
    the kept output channels (an identity stays one when the two sets agree)."""
    if _is_projection(shortcut):
        conv, bn = shortcut
        return nn.Sequential(slice_layer(conv, in_idx=inp, out_idx=out), slice_layer(bn, out_idx=out))
    if isinstance(shortcut, ZeroPadShortcut):
        return IndexShortcut(channel_map(inp, out, offset=shortcut.pad_front), stride=shortcut.stride)
    if isinstance(shortcut, IndexShortcut):
        raise NotImplementedError("re-slicing an already sliced shortcut is not supported")
    if isinstance(shortcut, nn.Identity):
        if torch.equal(inp, out):
            return nn.Identity()
        return IndexShortcut(channel_map(inp, out))
    raise NotImplementedError(f"no shortcut slicer for {type(shortcut).__name__}")


@register_block_handler(BasicBlock)
class BasicBlockHandler(BlockHandler):
    """conv1 (in -> inner 'conv1') - bn1 - relu - conv2 (inner -> out) - bn2, plus the shortcut (in -> out) held
    in ``shortcut_attr``: identity, option-A zero padding or a 1x1 projection."""

    shortcut_attr = "shortcut"

    def inner_groups(self, block: nn.Module) -> dict[str, int]:
        return {"conv1": block.conv1.out_channels}

    def inner_activations(self, block: nn.Module) -> dict[str, nn.Module]:
        return {"conv1": block.bn1}

    def inner_layers(self, block: nn.Module) -> dict[str, tuple[list[nn.Module], list[nn.Module]]]:
        return {"conv1": ([block.conv1], [block.conv2])}

    def stream_layers(self, block: nn.Module) -> tuple[list[nn.Module], list[nn.Module]]:
        projection = projection_convs(getattr(block, self.shortcut_attr))
        return [block.conv2, *projection], [block.conv1, *projection]

    def slice(self, block: nn.Module, channels: BlockChannels) -> nn.Module:
        inner = channels.inner["conv1"]
        new = module_shell(block)
        new.conv1 = slice_layer(block.conv1, in_idx=channels.inp, out_idx=inner)
        new.bn1 = slice_layer(block.bn1, out_idx=inner)
        new.conv2 = slice_layer(block.conv2, in_idx=inner, out_idx=channels.out)
        new.bn2 = slice_layer(block.bn2, out_idx=channels.out)
        if isinstance(getattr(block, "relu", None), nn.Module):
            new.relu = copy.deepcopy(block.relu)
        setattr(new, self.shortcut_attr,
                slice_projection(getattr(block, self.shortcut_attr), channels.inp, channels.out))
        return new


def slice_projection(downsample: nn.Module | None, inp: torch.Tensor, out: torch.Tensor) -> nn.Module | None:
    """A residual block's shortcut, where ``None`` (torchvision's ``downsample``) is the identity: it stays one
    when the kept channel sets agree, else becomes a channel map; a module is sliced by :func:`slice_shortcut`."""
    if downsample is None:
        return None if torch.equal(inp, out) else IndexShortcut(channel_map(inp, out))
    return slice_shortcut(downsample, inp, out)


@register_block_handler(ResNetBasicBlock)
class ResNetBasicBlockHandler(BasicBlockHandler):
    """torchvision BasicBlock: the CIFAR block with its shortcut in ``downsample`` (``None``: identity)."""

    shortcut_attr = "downsample"


@register_block_handler(Bottleneck)
class BottleneckHandler(BlockHandler):
    """conv1 1x1 (in -> inner 'conv1') - conv2 3x3 ('conv1' -> inner 'conv2') - conv3 1x1 ('conv2' -> out),
    shortcut identity or projection."""

    def inner_groups(self, block: nn.Module) -> dict[str, int]:
        return {"conv1": block.conv1.out_channels, "conv2": block.conv2.out_channels}

    def inner_activations(self, block: nn.Module) -> dict[str, nn.Module]:
        return {"conv1": block.bn1, "conv2": block.bn2}

    def inner_layers(self, block: nn.Module) -> dict[str, tuple[list[nn.Module], list[nn.Module]]]:
        return {"conv1": ([block.conv1], [block.conv2]), "conv2": ([block.conv2], [block.conv3])}

    def stream_layers(self, block: nn.Module) -> tuple[list[nn.Module], list[nn.Module]]:
        return [block.conv3, *projection_convs(block.downsample)], [block.conv1, *projection_convs(block.downsample)]

    def slice(self, block: nn.Module, channels: BlockChannels) -> nn.Module:
        c1, c2 = channels.inner["conv1"], channels.inner["conv2"]
        new = module_shell(block)
        new.conv1 = slice_layer(block.conv1, in_idx=channels.inp, out_idx=c1)
        new.bn1 = slice_layer(block.bn1, out_idx=c1)
        new.conv2 = slice_layer(block.conv2, in_idx=c1, out_idx=c2)
        new.bn2 = slice_layer(block.bn2, out_idx=c2)
        new.conv3 = slice_layer(block.conv3, in_idx=c2, out_idx=channels.out)
        new.bn3 = slice_layer(block.bn3, out_idx=channels.out)
        new.relu = copy.deepcopy(block.relu)
        new.downsample = slice_projection(block.downsample, channels.inp, channels.out)
        return new


def _features_and_xyz(ids: torch.Tensor, features: int, what: str) -> torch.Tensor:
    """The feature ids (< ``features``) of a point stream's kept channel ids; the coordinates must be kept."""
    xyz = torch.arange(features, features + XYZ)
    if not bool(torch.isin(xyz, ids).all()):
        raise ValueError(f"{what}: a point stream must keep its coordinate channels {xyz.tolist()}")
    return ids[ids < features]


@register_block_handler(SetAbstraction)
class SetAbstractionHandler(BlockHandler):
    """PointNet++ level: MLP layers ``mlp0 .. mlp{L-2}`` are inner groups, the last layer writes the stream.

    Stream layout (B, C + 3, S): features, then xyz (pinned). The first MLP layer reads
    ``concat(relative xyz, features)``, so incoming feature ``c`` is its input channel ``3 + c``.
    """

    def inner_groups(self, block: nn.Module) -> dict[str, int]:
        return {f"mlp{i}": conv.out_channels for i, conv in enumerate(block.convs[:-1])}

    def inner_activations(self, block: nn.Module) -> dict[str, nn.Module]:
        return {f"mlp{i}": bn for i, bn in enumerate(block.bns[:-1])}

    def inner_layers(self, block: nn.Module) -> dict[str, tuple[list[nn.Module], list[nn.Module]]]:
        return {f"mlp{i}": ([block.convs[i]], [block.convs[i + 1]]) for i in range(len(block.convs) - 1)}

    def stream_layers(self, block: nn.Module) -> tuple[list[nn.Module], list[nn.Module]]:
        raise NotImplementedError("PointNet++ streams carry coordinates: prune inner channels only (scope 'inner')")

    def pinned_out(self, block: nn.Module) -> list[int]:
        width = block.convs[-1].out_channels
        return list(range(width, width + XYZ))

    def slice(self, block: nn.Module, channels: BlockChannels) -> nn.Module:
        features_in = block.convs[0].in_channels - XYZ
        kept_in = _features_and_xyz(channels.inp, features_in, "set-abstraction input")
        kept_out = _features_and_xyz(channels.out, block.convs[-1].out_channels, "set-abstraction output")
        conv_in = torch.cat([torch.arange(XYZ), XYZ + kept_in])  # the concat's offset: xyz come first
        sides = [conv_in, *(channels.inner[f"mlp{i}"] for i in range(len(block.convs) - 1)), kept_out]
        new = module_shell(block)
        new.convs = nn.ModuleList(slice_layer(conv, in_idx=a, out_idx=b)
                                  for conv, a, b in zip(block.convs, sides, sides[1:]))
        new.bns = nn.ModuleList(slice_layer(bn, out_idx=b) for bn, b in zip(block.bns, sides[1:]))
        return new


@register_block_handler(PointClassifierMLP)
class PointClassifierMLPHandler(BlockHandler):
    """fc1 (global features -> inner 'fc1') - fc2 (inner -> out); the incoming xyz channels are dropped."""

    def inner_groups(self, block: nn.Module) -> dict[str, int]:
        return {"fc1": block.fc1.out_features}

    def inner_activations(self, block: nn.Module) -> dict[str, nn.Module]:
        return {"fc1": block.bn1}

    def inner_layers(self, block: nn.Module) -> dict[str, tuple[list[nn.Module], list[nn.Module]]]:
        return {"fc1": ([block.fc1], [block.fc2])}

    def stream_layers(self, block: nn.Module) -> tuple[list[nn.Module], list[nn.Module]]:
        raise NotImplementedError("PointNet++ streams carry coordinates: prune inner channels only (scope 'inner')")

    def slice(self, block: nn.Module, channels: BlockChannels) -> nn.Module:
        kept_in = _features_and_xyz(channels.inp, block.fc1.in_features, "classifier MLP input")
        inner = channels.inner["fc1"]
        new = module_shell(block)
        new.fc1 = slice_layer(block.fc1, in_idx=kept_in, out_idx=inner)
        new.bn1 = slice_layer(block.bn1, out_idx=inner)
        new.fc2 = slice_layer(block.fc2, in_idx=inner, out_idx=channels.out)
        new.bn2 = slice_layer(block.bn2, out_idx=channels.out)
        new.dropout = copy.deepcopy(block.dropout)
        return new


@register_block_handler(InvertedResidual)
class InvertedResidualHandler(BlockHandler):
    """MobileNetV2: expansion 1x1 (in -> inner 'expand') - depthwise 3x3 (coupled one to one with the expansion's
    outputs: slicing one slices both, and its ``groups`` follows) - projection 1x1 ('expand' -> out), plus the
    input when the block keeps its stride and width. A block with expansion ratio 1 has no expansion: its
    depthwise conv runs on the incoming stream, so it has no inner group and a dropped input channel drops
    that depthwise channel too (the dense block with that channel's depthwise output zeroed)."""

    def inner_groups(self, block: nn.Module) -> dict[str, int]:
        return {"expand": block.conv[0][0].out_channels} if block.expands else {}

    def inner_activations(self, block: nn.Module) -> dict[str, nn.Module]:
        # after the depthwise BN: zeroing there (ReLU6(0) = 0) is what dropping the channel does; zeroing the
        # expansion's output would not, the depthwise BN's shift would make it non-zero again
        return {"expand": block.conv[1][1]} if block.expands else {}

    def inner_layers(self, block: nn.Module) -> dict[str, tuple[list[nn.Module], list[nn.Module]]]:
        if not block.expands:
            return {}
        return {"expand": ([block.conv[0][0], block.conv[1][0]], [block.conv[2]])}

    def in_activations(self, block: nn.Module) -> list[nn.Module]:
        return [] if block.expands else [block.conv[0][1]]

    def stream_layers(self, block: nn.Module) -> tuple[list[nn.Module], list[nn.Module]]:
        project = block.conv[-2]
        return [project], [block.conv[0][0] if block.expands else project]

    def slice(self, block: nn.Module, channels: BlockChannels) -> nn.Module:
        hidden = channels.inner["expand"] if block.expands else channels.inp
        layers = []
        if block.expands:
            layers.append(_slice_conv_bn_act(block.conv[0], channels.inp, hidden))
        layers += [_slice_conv_bn_act(block.conv[-3], hidden, hidden),
                   slice_layer(block.conv[-2], in_idx=hidden, out_idx=channels.out),
                   slice_layer(block.conv[-1], out_idx=channels.out)]
        new = module_shell(block)
        new.conv = nn.Sequential(*layers)
        new.shortcut = None if block.shortcut is None else slice_shortcut(block.shortcut, channels.inp, channels.out)
        return new


def _slice_conv_bn_act(unit: nn.Module, in_idx: torch.Tensor, out_idx: torch.Tensor) -> nn.Module:
    """A conv-BN-activation (:class:`ConvBNAct`) keeping ``in_idx`` -> ``out_idx`` (one set for a depthwise one)."""
    new = module_shell(unit)
    new.append(slice_layer(unit[0], in_idx=in_idx, out_idx=out_idx))
    new.append(slice_layer(unit[1], out_idx=out_idx))
    new.append(copy.deepcopy(unit[2]))
    new.out_channels = int(out_idx.numel())
    return new


@register_block_handler(ConvBNAct)
class ConvBNActHandler(BlockHandler):
    """A conv-BN-activation used as a block (MobileNetV2's last 1x1 conv to ``last_channel``): in -> out, no
    inner group and no shortcut; its output is a stream of its own."""

    def inner_groups(self, block: nn.Module) -> dict[str, int]:
        return {}

    def inner_activations(self, block: nn.Module) -> dict[str, nn.Module]:
        return {}

    def inner_layers(self, block: nn.Module) -> dict[str, tuple[list[nn.Module], list[nn.Module]]]:
        return {}

    def stream_layers(self, block: nn.Module) -> tuple[list[nn.Module], list[nn.Module]]:
        return [block[0]], [block[0]]

    def slice(self, block: nn.Module, channels: BlockChannels) -> nn.Module:
        return _slice_conv_bn_act(block, channels.inp, channels.out)
