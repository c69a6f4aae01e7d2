"""MobileNetV2 (torchvision's layout, CIFAR or ImageNet stem): inverted residuals whose expansion and depthwise
channels are one group, and the last 1x1 conv as a block of its own."""

from __future__ import annotations

import copy

import torch
from torch import nn

from sigmab.errors import ConfigError
from sigmab.graph.blocks import BlockChannels, BlockHandler, module_shell, register_block_handler, slice_shortcut
from sigmab.graph.decompose import ArchAdapter, ClassifierHead, Decomposition, register_adapter
from sigmab.graph.slicing import slice_layer
from sigmab.models.mobilenet_v2 import ConvBNAct, InvertedResidual, MobileNetV2
from sigmab.models.registry import build_model


@register_adapter(MobileNetV2)
class MobileNetV2Adapter(ArchAdapter):
    """Stem ``features.0``; blocks ``features.1`` .. the last 1x1 conv; the classifier's linear layer as the head
    (its dropout only acts in training). A block with a shortcut writes its stage's stream; one without (a stride
    or width change, and the last conv) starts a new stage. At narrow widths the first block can keep the stem's
    width and so its shortcut: then the stem writes the first stage's stream too."""

    def decompose(self, model: nn.Module) -> Decomposition:
        assert isinstance(model, MobileNetV2)
        blocks = list(model.features[1:])
        stages, stage = [], -1
        for b, block in enumerate(blocks):  # block 0 with a shortcut (narrow widths) extends the stem's stream
            stage += 0 if b > 0 and isinstance(block, InvertedResidual) and block.use_res_connect else 1
            stages.append(stage)
        return Decomposition(model.features[0], blocks, [f"features.{i + 1}" for i in range(len(blocks))], stages,
                             [block.out_channels for block in blocks], model.features[0].out_channels,
                             ClassifierHead(model.classifier[-1]))

    def default_split_points(self, decomposition: Decomposition, depth: int) -> list[str]:
        """Before the 160-channel stage for depth 1; also before the 96-channel stage for depth 2, and the 64-channel
        stage for depth 3: the last stages and the last conv hold most parameters (75% from the 160-channel stage
        on for CIFAR's width 1.0)."""
        starts = [name for b, name in enumerate(decomposition.block_names)
                  if b > 0 and decomposition.stages[b] != decomposition.stages[b - 1]]
        if depth not in (1, 2, 3) or len(starts) < depth + 2:
            raise ConfigError(f"no default split points for depth {depth} here; pass --split-points")
        return starts[-(depth + 2):-2]

    def example(self) -> nn.Module:
        return build_model("mobilenet_v2_cifar", width_mult=0.25, num_classes=5)


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
