"""PointNet++ (single-scale grouping): set-abstraction levels and the classifier MLP as blocks; point streams carry
their coordinates in the last three channels, which are never dropped."""

from __future__ import annotations

import copy

import torch
from torch import nn

from sigmab.errors import ConfigError
from sigmab.graph.blocks import BlockChannels, BlockHandler, module_shell, register_block_handler
from sigmab.graph.decompose import ArchAdapter, Decomposition, FlatHead, register_adapter
from sigmab.graph.slicing import slice_layer
from sigmab.models.pointnet2 import XYZ, PointClassifierMLP, PointNet2, SetAbstraction
from sigmab.models.registry import build_model


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

    def example(self) -> nn.Module:
        return build_model("pointnet2_ssg", num_classes=5, in_channels=4, mean=(0.0,) * 4, std=(1.0,) * 4,
                           input_size=(64,), centers=[32, 8], radii=[0.5, 1.0], neighbors=[8, 6],
                           mlps=[[8, 8, 16], [16, 12, 24], [24, 32, 40]], hidden=[24, 16])


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
