"""Block-level channel coupling: which channels of a block belong together, and how to slice it.

A block maps a residual *stream* to a stream. Its channels fall in three kinds of group:
- ``in``: the stream entering the block (coupled to the previous block's ``out``);
- ``out``: the stream leaving it (all blocks of one stage inside a tree node share one set);
- ``inner``: named groups private to the block (e.g. a BasicBlock's conv1 outputs).
One :class:`BlockHandler` per block type, in a registry, knows these groups for its type; the handlers live with
the rest of their family's knowledge in :mod:`sigmab.graph.archs`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from sigmab.graph.slicing import LAYER_SLICERS, IndexShortcut, channel_map, slice_layer
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

    def inner_divisions(self, block: nn.Module) -> dict[str, int]:
        """Inner groups read or written by a grouped convolution: how many equal runs of consecutive channels
        must each keep the same count (see :func:`sigmab.importance.top_channels`); absent groups: 1."""
        return {}

    def pinned_out(self, block: nn.Module) -> list[int]:
        """Outgoing stream channels that are never dropped (e.g. point coordinates), as dense ids."""
        return []

    def slice(self, block: nn.Module, channels: BlockChannels) -> nn.Module:
        raise NotImplementedError


BLOCK_HANDLERS: TypeRegistry[BlockHandler] = TypeRegistry("block handler")


register_block_handler = BLOCK_HANDLERS.register_class


def block_handler(block: nn.Module) -> BlockHandler:
    """The block type's registered handler; for any other block, the one read off its ``torch.fx`` trace."""
    handler = BLOCK_HANDLERS.find(block)
    if handler is None:
        from sigmab.graph.traced import SHORTCUT_TYPES, TracedBlockHandler

        return TracedBlockHandler(SHORTCUT_TYPES)
    return handler


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
    the kept output channels (an identity stays one when the two sets agree); a family's own shortcut type (CIFAR
    ResNets' zero padding) is sliced by the layer slicer its family registers."""
    if _is_projection(shortcut):
        conv, bn = shortcut
        return nn.Sequential(slice_layer(conv, in_idx=inp, out_idx=out), slice_layer(bn, out_idx=out))
    if LAYER_SLICERS.find(shortcut) is not None:
        return slice_layer(shortcut, in_idx=inp, out_idx=out)
    if isinstance(shortcut, IndexShortcut):
        raise NotImplementedError("re-slicing an already sliced shortcut is not supported")
    if isinstance(shortcut, nn.Identity):
        if torch.equal(inp, out):
            return nn.Identity()
        return IndexShortcut(channel_map(inp, out))
    raise NotImplementedError(f"no shortcut slicer for {type(shortcut).__name__}")


def slice_projection(downsample: nn.Module | None, inp: torch.Tensor, out: torch.Tensor) -> nn.Module | None:
    """A residual block's shortcut, where ``None`` (torchvision's ``downsample``) is the identity: it stays one
    when the kept channel sets agree, else becomes a channel map; a module is sliced by :func:`slice_shortcut`."""
    if downsample is None:
        return None if torch.equal(inp, out) else IndexShortcut(channel_map(inp, out))
    return slice_shortcut(downsample, inp, out)
