"""PointNet++ classification, single-scale grouping (Qi et al., NeurIPS 2017), in pure torch.

Input: point sets (B, D, N), channels-first: xyz in channels 0-2, then D-3 per-point features.
Between levels the network carries one *stream* tensor (B, C + 3, S): a level's C features first,
the S points' coordinates last. A set-abstraction level samples S centers by farthest-point
sampling, groups up to K neighbours within a radius of each, and runs a shared MLP (1x1 convs) on
``concat(relative xyz, neighbour features)`` - coordinates first, so feature ``c`` of the incoming
stream is MLP input channel ``3 + c`` - then max-pools over the neighbours. The last level groups
all points; fully connected layers classify its global feature.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sigmab.errors import InputError
from sigmab.models.point_ops import DEFAULT_CHUNK_ELEMENTS, ball_query, farthest_point_sample, gather_points
from sigmab.models.registry import register_model

XYZ = 3  # coordinate channels, the last three of every stream


def check_points(x: torch.Tensor, in_channels: int, min_points: int) -> None:
    """Clear errors for a batch that is not (B, in_channels, N >= min_points) or holds NaN/inf coordinates."""
    if x.dim() != 3 or x.shape[1] != in_channels:
        raise InputError(f"point sets must be (B, {in_channels}, N) (xyz{' + features' if in_channels > 3 else ''}, "
                         f"channels first), got shape {tuple(x.shape)}")
    if x.shape[2] < min_points:
        raise InputError(f"point sets of {x.shape[2]} points are too small: the first level samples {min_points}")
    if not bool(torch.isfinite(x[:, :XYZ]).all()):
        raise InputError("point coordinates hold NaN or infinite values")


class PackPoints(nn.Module):
    """(B, D, N) input -> stream (B, D, N): the D-3 features first, xyz last; checks the input first."""

    def __init__(self, in_channels: int, min_points: int) -> None:
        super().__init__()
        self.in_channels, self.min_points = in_channels, min_points

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Data-dependent checks would stop torch.export's tracing; exported graphs skip them.
        if not torch.compiler.is_compiling():
            check_points(x, self.in_channels, self.min_points)
        return torch.cat([x[:, XYZ:], x[:, :XYZ]], dim=1)


class SetAbstraction(nn.Module):
    """(B, C + 3, N) stream -> (B, mlp[-1] + 3, S): sample, group, shared MLP, max over neighbours.

    ``num_centers=None`` groups all N points around the origin (S = 1, output xyz = 0).
    """

    def __init__(self, in_features: int, mlp: Sequence[int], *, num_centers: int | None, radius: float = 0.0,
                 max_neighbors: int = 0, chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> None:
        super().__init__()
        if not mlp:
            raise ValueError("a set-abstraction level needs at least one MLP layer")
        if num_centers is not None and (num_centers < 1 or max_neighbors < 1 or radius <= 0):
            raise ValueError("a sampling level needs num_centers, max_neighbors >= 1 and radius > 0")
        self.num_centers, self.radius, self.max_neighbors = num_centers, float(radius), int(max_neighbors)
        self.chunk_elements = chunk_elements
        widths = [XYZ + in_features, *mlp]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 1, bias=False) for a, b in zip(widths, widths[1:]))
        self.bns = nn.ModuleList(nn.BatchNorm2d(b) for b in mlp)

    def group(self, stream: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(grouped (B, 3 + C, K, S): relative xyz then features; centers (B, 3, S))."""
        features, xyz = stream[:, :-XYZ], stream[:, -XYZ:]
        if self.num_centers is None:
            return torch.cat([xyz, features], dim=1)[:, :, :, None], xyz.new_zeros(xyz.shape[0], XYZ, 1)
        centers = gather_points(xyz, farthest_point_sample(xyz, self.num_centers))
        neighbors = ball_query(xyz, centers, self.radius, self.max_neighbors,
                               chunk_elements=self.chunk_elements).transpose(1, 2)  # (B, K, S)
        relative = gather_points(xyz, neighbors) - centers[:, :, None, :]
        return torch.cat([relative, gather_points(features, neighbors)], dim=1), centers

    def forward(self, stream: torch.Tensor) -> torch.Tensor:
        h, centers = self.group(stream)
        for conv, bn in zip(self.convs, self.bns):
            h = F.relu(bn(conv(h)))
        return torch.cat([h.amax(dim=2), centers], dim=1)


class PointClassifierMLP(nn.Module):
    """Global stream (B, C + 3, 1) -> (B, hidden[1], 1): two fully connected layers with BN, ReLU, dropout."""

    def __init__(self, in_features: int, hidden: Sequence[int], *, dropout: float = 0.5) -> None:
        super().__init__()
        if len(hidden) != 2:
            raise ValueError(f"hidden needs two widths, got {list(hidden)}")
        self.fc1 = nn.Linear(in_features, hidden[0], bias=False)
        self.bn1 = nn.BatchNorm1d(hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1], bias=False)
        self.bn2 = nn.BatchNorm1d(hidden[1])
        self.dropout = nn.Dropout(dropout)

    def forward(self, stream: torch.Tensor) -> torch.Tensor:
        h = stream[:, :-XYZ].amax(dim=2)
        h = self.dropout(F.relu(_batch_norm(self.bn1, self.fc1(h))))
        return self.dropout(F.relu(_batch_norm(self.bn2, self.fc2(h))))[:, :, None]


def _batch_norm(bn: nn.BatchNorm1d, h: torch.Tensor) -> torch.Tensor:
    """``bn(h)`` on (n, C); a single vector in training (a tree leaf can be routed one input of a batch)
    has no batch statistics, so it is normalised with the running ones and updates nothing."""
    if bn.training and h.shape[0] == 1:
        return F.batch_norm(h, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
    return bn(h)


class PointNet2(nn.Module):
    """(B, in_channels, N) point sets -> logits (B, num_classes): pack, sampling levels, global level, MLP, ``fc``."""

    def __init__(self, *, num_classes: int, in_channels: int, centers: Sequence[int], radii: Sequence[float],
                 neighbors: Sequence[int], mlps: Sequence[Sequence[int]], hidden: Sequence[int],
                 dropout: float = 0.5) -> None:
        super().__init__()
        if in_channels < XYZ:
            raise ValueError(f"point sets need at least the 3 coordinates, in_channels={in_channels}")
        if not len(centers) == len(radii) == len(neighbors) == len(mlps) - 1 or len(mlps) < 2:
            raise ValueError("centers, radii and neighbors need one entry per sampling level, mlps one more "
                             "(the global level)")
        if any(b >= a for a, b in zip(centers, centers[1:])):
            raise ValueError(f"each level must sample fewer centers than the one before, got {list(centers)}")
        self.pack = PackPoints(in_channels, min_points=centers[0])
        features = in_channels - XYZ
        self.levels = nn.ModuleList()
        for s, r, k, mlp in zip(centers, radii, neighbors, mlps):
            self.levels.append(SetAbstraction(features, mlp, num_centers=s, radius=r, max_neighbors=k))
            features = mlp[-1]
        self.levels.append(SetAbstraction(features, mlps[-1], num_centers=None))
        self.mlp = PointClassifierMLP(mlps[-1][-1], hidden, dropout=dropout)
        self.fc = nn.Linear(hidden[1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pack(x)
        for level in self.levels:
            h = level(h)
        return self.fc(self.mlp(h).flatten(1))


PAPER_SSG = dict(centers=(512, 128), radii=(0.2, 0.4), neighbors=(32, 64),
                 mlps=((64, 64, 128), (128, 128, 256), (256, 512, 1024)), hidden=(512, 256))


@register_model("pointnet2_ssg", num_classes=40, in_channels=3, input_size=(1024,), mean=(0.0,) * 3,
                std=(1.0,) * 3)
def pointnet2_ssg(*, num_classes: int = 40, in_channels: int = 3, centers: Sequence[int] = PAPER_SSG["centers"],
                  radii: Sequence[float] = PAPER_SSG["radii"], neighbors: Sequence[int] = PAPER_SSG["neighbors"],
                  mlps: Sequence[Sequence[int]] = PAPER_SSG["mlps"], hidden: Sequence[int] = PAPER_SSG["hidden"],
                  dropout: float = 0.5) -> PointNet2:
    """PointNet++ SSG; the defaults are the paper's ModelNet40 classifier (1.47M parameters at 3 input channels)."""
    return PointNet2(num_classes=num_classes, in_channels=in_channels, centers=centers, radii=radii,
                     neighbors=neighbors, mlps=mlps, hidden=hidden, dropout=dropout)
