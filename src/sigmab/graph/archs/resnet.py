"""ResNets: the CIFAR layout (akamaster's ``CifarResNet``: option-A zero-padding or option-B projection shortcuts)
and torchvision's layout (``ResNet`` with basic blocks or bottlenecks, the shortcut in ``downsample``)."""

from __future__ import annotations

import copy

from torch import nn

from sigmab.errors import ConfigError
from sigmab.graph.blocks import (
    BlockChannels,
    BlockHandler,
    module_shell,
    projection_convs,
    register_block_handler,
    slice_projection,
)
from sigmab.graph.decompose import ArchAdapter, ClassifierHead, Decomposition, register_adapter
from sigmab.graph.slicing import Index, IndexShortcut, channel_map, register_slicer, slice_layer
from sigmab.graph.traced import SHORTCUT_TYPES
from sigmab.models.cifar_resnet import BasicBlock, CifarResNet, ZeroPadShortcut
from sigmab.models.imagenet_resnet import Bottleneck, ResNet, ResNetBasicBlock
from sigmab.models.registry import build_model


@register_adapter(CifarResNet)
class CifarResNetAdapter(ArchAdapter):
    def decompose(self, model: nn.Module) -> Decomposition:
        assert isinstance(model, CifarResNet)
        blocks, names, stages, widths = [], [], [], []
        for stage, layer in enumerate((model.layer1, model.layer2, model.layer3)):
            for i, block in enumerate(layer):
                blocks.append(block)
                names.append(f"layer{stage + 1}.{i}")
                stages.append(stage)
                widths.append(block.conv2.out_channels)
        stem = nn.Sequential(model.conv1, model.bn1, nn.ReLU())
        return Decomposition(stem, blocks, names, stages, widths, model.conv1.out_channels,
                             ClassifierHead(model.linear))

    def default_split_points(self, decomposition: Decomposition, depth: int) -> list[str]:
        """Before stage 3 for depth 1; before stages 2 and 3 for depth 2; plus mid-stage 3 for depth 3.

        Stage 3 holds most parameters, so branching before it cuts the most per path.
        """
        n = len(decomposition.blocks) // 3
        points = {1: ["layer3.0"], 2: ["layer2.0", "layer3.0"], 3: ["layer2.0", "layer3.0", f"layer3.{n // 2}"]}
        if depth not in points or (depth == 3 and n < 2):
            raise ConfigError(f"a CIFAR ResNet with {n} blocks per stage has no default split points for "
                              f"depth {depth}; pass --split-points")
        return points[depth]

    def example(self) -> nn.Module:
        return build_model("resnet8", widths=[4, 8, 16], shortcut="B", num_classes=5)


@register_adapter(ResNet)
class ImageNetResNetAdapter(ArchAdapter):
    def decompose(self, model: nn.Module) -> Decomposition:
        assert isinstance(model, ResNet)
        blocks, names, stages, widths = [], [], [], []
        for stage, layer in enumerate((model.layer1, model.layer2, model.layer3, model.layer4)):
            for i, block in enumerate(layer):
                blocks.append(block)
                names.append(f"layer{stage + 1}.{i}")
                stages.append(stage)
                widths.append(block.bn3.num_features if hasattr(block, "bn3") else block.bn2.num_features)
        stem = nn.Sequential(model.conv1, model.bn1, nn.ReLU(), model.maxpool)
        return Decomposition(stem, blocks, names, stages, widths, model.conv1.out_channels, ClassifierHead(model.fc))

    def default_split_points(self, decomposition: Decomposition, depth: int) -> list[str]:
        """Before stage 4 for depth 1; before stages 3 and 4 for depth 2; plus mid-stage 3 for depth 3.

        Stages 3 and 4 hold about 90% of a ResNet-50's parameters (measured: docs and BENCHMARKS.md).
        """
        n3 = decomposition.stages.count(2)
        points = {1: ["layer4.0"], 2: ["layer3.0", "layer4.0"], 3: ["layer3.0", f"layer3.{n3 // 2}", "layer4.0"]}
        if depth not in points or (depth == 3 and n3 < 2):
            raise ConfigError(f"no default split points for depth {depth} here; pass --split-points")
        return points[depth]

    def default_widths(self, decomposition: Decomposition, depth: int) -> list[float] | None:
        """Bottleneck ResNets at depth 2: 1/2 then 1/4, the widest tree of the measured grid that reaches the
        published 58-60% active-parameter cut on ResNet-50 (59.2%; `python -m benchmarks.resnet50_analytic`)."""
        bottleneck = any(isinstance(b, Bottleneck) for b in decomposition.blocks)
        return [0.5, 0.25] if bottleneck and depth == 2 else None

    def example(self) -> nn.Module:
        return build_model("resnet50", width=0.0625, num_classes=5, input_size=(32, 32))


SHORTCUT_TYPES.add(ZeroPadShortcut)  # the traced family keeps it whole and slices it with the slicer below


@register_slicer(ZeroPadShortcut)
def slice_zero_pad(shortcut: nn.Module, in_idx: Index, out_idx: Index) -> nn.Module:
    """Option A's zero padding as a channel map from the kept input to the kept output channels."""
    return IndexShortcut(channel_map(in_idx, out_idx, offset=shortcut.pad_front), stride=shortcut.stride)


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
