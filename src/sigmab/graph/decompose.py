"""Cut a dense model into stem, blocks and head, the units between which split points lie.

One :class:`ArchAdapter` per model class, in a registry, knows how its class decomposes and
where a tree of a given depth should split by default; the adapters live with the rest of their family's
knowledge in :mod:`sigmab.graph.archs`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sigmab.errors import ConfigError
from sigmab.graph.slicing import Index, slice_layer
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


class MLPHead(ClassifierHead):
    """Global average pooling, a linear layer reading the stream, then more layers (MobileNetV3's classifier):
    (N, C, H, W) -> (N, num_classes). Only ``linear`` reads the stream, so only it is sliced."""

    def __init__(self, linear: nn.Linear, rest: nn.Sequential) -> None:
        super().__init__(linear)
        self.rest = rest

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rest(super().forward(x))

    def sliced(self, in_idx: Index) -> MLPHead:
        return type(self)(slice_layer(self.linear, in_idx=in_idx), copy.deepcopy(self.rest))


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

    def example(self) -> nn.Module:
        """A small instance of the family (random weights, a ``meta`` giving its input shape) deep enough for a
        depth-2 tree at the default split points: the tests run every registered family on it, so a family is
        tested the moment it registers."""
        raise NotImplementedError(f"{type(self).__name__} has no example model")


ADAPTERS: TypeRegistry[ArchAdapter] = TypeRegistry("decomposition adapter")


register_adapter = ADAPTERS.register_class


def get_adapter(model: nn.Module) -> ArchAdapter:
    """The family's registered adapter; for any other model, the one read off its ``torch.fx`` trace (which names
    what it cannot follow in one error)."""
    adapter = ADAPTERS.find(model)
    if adapter is None:
        from sigmab.graph.traced import TracedAdapter

        return TracedAdapter()  # type: ignore[return-value]
    return adapter


def decompose(model: nn.Module) -> Decomposition:
    """Deep copies of the dense model's parts; the original model is left untouched."""
    return get_adapter(model).decompose(copy.deepcopy(model).eval())
