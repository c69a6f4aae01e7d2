"""Static pruning criteria: one object per criterion, in a registry, scoring a channel group.

A higher score means a more important channel; the pruner keeps the top-scoring ones.

- ``l1``: L1 norm of each channel's filters (Li et al., ICLR 2017), summed over the layers that
  produce the group.
- ``fpgm``: FPGM (He et al., CVPR 2019). Variant: each channel's filter is its *raw* weights
  flattened; its score is the summed Euclidean distance to the other filters of the same layer
  (the filters nearest the geometric median have the smallest sums and go first), summed over the
  producing layers. With ``use_consumers`` the consuming layers' input slices are scored the same
  way and added (Torch-Pruning scores ``|W|^p`` of producers and consumers, and averages them).
- ``hrank``: HRank (Lin et al., CVPR 2020): the average rank of the channel's feature maps over
  the calibration images, read after the non-linearity by forward hooks (see
  :class:`~sigmab.importance.activation.FeatureMapRank`).
"""

from __future__ import annotations

import torch
from torch import nn

from sigmab.graph.groups import ChannelGroup
from sigmab.utils.registry import NameRegistry


def filters_out(layer: nn.Module) -> torch.Tensor:
    """(C_out, rest): one flattened filter per output channel."""
    return layer.weight.detach().flatten(1)


def filters_in(layer: nn.Module) -> torch.Tensor:
    """(C_in, rest): per input channel, the weights that read it."""
    return layer.weight.detach().transpose(0, 1).flatten(1)


class FilterCriterion:
    name: str = ""
    statistic: str | None = None  # the activation statistic read from calibration; None: weights only

    def scores(self, group: ChannelGroup, stats: torch.Tensor | None = None) -> torch.Tensor:
        """(group.size,) importance; ``stats`` (group.size,) is the averaged ``statistic`` when there is one."""
        raise NotImplementedError


# A new criterion: a FilterCriterion subclass with a ``name``, decorated with @CRITERIA.register.
CRITERIA: NameRegistry[type[FilterCriterion]] = NameRegistry("pruning criterion")


@CRITERIA.register
class L1Criterion(FilterCriterion):
    name = "l1"

    def scores(self, group: ChannelGroup, stats: torch.Tensor | None = None) -> torch.Tensor:
        return sum(filters_out(layer).abs().sum(1) for layer in group.producers)


def distance_sums(filters: torch.Tensor) -> torch.Tensor:
    """(C, D) -> (C,): each row's summed Euclidean distance to all rows."""
    f = filters.double()
    return torch.cdist(f[None], f[None])[0].sum(1).float()


@CRITERIA.register
class FPGMCriterion(FilterCriterion):
    name = "fpgm"

    def __init__(self, use_consumers: bool = False) -> None:
        self.use_consumers = use_consumers

    def scores(self, group: ChannelGroup, stats: torch.Tensor | None = None) -> torch.Tensor:
        total = sum(distance_sums(filters_out(layer)) for layer in group.producers)
        if self.use_consumers:
            total = total + sum(distance_sums(filters_in(layer)) for layer in group.consumers)
        return total


class StatisticCriterion(FilterCriterion):
    """A data-driven criterion: a channel's score is its calibration ``statistic`` itself."""

    def scores(self, group: ChannelGroup, stats: torch.Tensor | None = None) -> torch.Tensor:
        if stats is None:
            raise ValueError(f"{self.name} scores need the averaged {self.statistic!r} statistic from calibration")
        return stats


@CRITERIA.register
class HRankCriterion(StatisticCriterion):
    """HRank: the average rank of each channel's feature maps."""

    name = "hrank"
    statistic = "hrank"


@CRITERIA.register
class ActivationCriterion(StatisticCriterion):
    """Mean |activation| of each channel over the calibration images: the statistic a SigmaB conversion ranks a
    node's channels by (on its own cluster), here over all images. A static network pruned by it to a tree
    path's widths is that path's shape control: same shape, same criterion, no routing."""

    name = "activation"
    statistic = "mean_abs"


def get_criterion(name: str) -> FilterCriterion:
    return CRITERIA.get(name)()
