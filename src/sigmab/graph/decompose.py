"""Cut a dense model into stem, blocks and head, the units between which split points lie.

One :class:`ArchAdapter` per model class, in a registry, knows how its class decomposes and
where a tree of a given depth should split by default.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sigmab.errors import ConfigError
from sigmab.graph.slicing import Index, slice_layer
from sigmab.models.cifar_resnet import CifarResNet
from sigmab.models.imagenet_resnet import Bottleneck, ResNet
from sigmab.models.mobilenet_v2 import InvertedResidual, MobileNetV2
from sigmab.models.pointnet2 import XYZ, PointNet2
from sigmab.utils.registry import TypeRegistry


class ClassifierHead(nn.Module):
    """Global average pooling, then a linear classifier: (N, C, H, W) -> (N, num_classes)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.linear = linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(F.adaptive_avg_pool2d(x, 1).flatten(1))

    def sliced(self, in_idx: Index) -> ClassifierHead:
        return type(self)(slice_layer(self.linear, in_idx=in_idx))


class FlatHead(ClassifierHead):
    """A linear classifier on a stream of one position: (N, C, 1) -> (N, num_classes)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


@dataclass
class Decomposition:
    """``stem`` (input -> stream), ``blocks`` (stream -> stream) and ``head`` (stream -> logits).

    ``stages[i]`` groups blocks whose outputs share one residual stream; ``widths[i]`` is the
    dense channel count of the stream after block ``i``; ``stem_width`` after the stem.
    """

    stem: nn.Module
    blocks: list[nn.Module]
    block_names: list[str]
    stages: list[int]
    widths: list[int]
    stem_width: int
    head: ClassifierHead

    def split_index(self, name: str) -> int:
        """Block index of split point ``name`` (the split lies just before that block)."""
        if name not in self.block_names[1:]:
            raise ConfigError(f"invalid split point {name!r}; valid: {', '.join(self.block_names[1:])}")
        return self.block_names.index(name)

    def width_before(self, index: int) -> int:
        return self.stem_width if index == 0 else self.widths[index - 1]


class ArchAdapter:
    def decompose(self, model: nn.Module) -> Decomposition:
        raise NotImplementedError

    def default_split_points(self, decomposition: Decomposition, depth: int) -> list[str]:
        raise NotImplementedError

    def default_widths(self, decomposition: Decomposition, depth: int) -> list[float] | None:
        """Inner keep ratios per depth for the default split points, where measured; None: 0.5 each."""
        return None


ADAPTERS: TypeRegistry[ArchAdapter] = TypeRegistry("decomposition adapter")


register_adapter = ADAPTERS.register_class


def get_adapter(model: nn.Module) -> ArchAdapter:
    adapter = ADAPTERS.find(model)
    if adapter is None:
        raise ConfigError(f"{type(model).__name__} cannot be converted yet (no decomposition adapter registered)")
    return adapter


def decompose(model: nn.Module) -> Decomposition:
    """Deep copies of the dense model's parts; the original model is left untouched."""
    return get_adapter(model).decompose(copy.deepcopy(model).eval())


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


@register_adapter(PointNet2)
class PointNet2Adapter(ArchAdapter):
    """Blocks: the set-abstraction levels ``sa1 .. saL`` (the last groups all points) and the classifier
    MLP ``mlp``, each its own stage (no residual streams). Split points lie between them."""

    def decompose(self, model: nn.Module) -> Decomposition:
        assert isinstance(model, PointNet2)
        blocks: list[nn.Module] = [*model.levels, model.mlp]
        names = [f"sa{i + 1}" for i in range(len(model.levels))] + ["mlp"]
        widths = [level.convs[-1].out_channels + XYZ for level in model.levels] + [model.mlp.fc2.out_features]
        return Decomposition(model.pack, blocks, names, list(range(len(blocks))), widths,
                             model.pack.in_channels, FlatHead(model.fc))

    def default_split_points(self, decomposition: Decomposition, depth: int) -> list[str]:
        """The global level and the classifier MLP hold almost all parameters (94% in the paper's SSG):
        depth 1 splits before the global level, depth 2 also before the MLP, depth 3 also before the
        last sampling level."""
        names = decomposition.block_names
        points = {1: [names[-2]], 2: names[-2:], 3: names[-3:]}
        if depth not in points or len(names) <= depth:
            raise ConfigError(f"no default split points for depth {depth} here; pass --split-points")
        return points[depth]


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
