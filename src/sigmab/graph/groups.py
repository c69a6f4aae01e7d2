"""Groups of coupled channels of a decomposed model: the units a static pruner keeps or drops.

- ``inner`` groups are private to one block (e.g. a BasicBlock's conv1 outputs);
- ``stream`` groups are a stage's residual stream: the stem (for the first stage) and every
  block of the stage write it, so its channels go together across the whole stage. Stages are
  separate groups: an option-A shortcut only pads, so a dropped channel of one stage reaches the
  next as a zero, exactly as in the dense model with that channel zeroed.
- Where the stem's width differs from the first stage's (bottleneck ResNets, whose first block
  projects 64 -> 256 channels), the stem's output is a stream of its own; it is kept whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from sigmab.errors import ConfigError
from sigmab.graph.blocks import block_handler
from sigmab.graph.decompose import Decomposition

Scope = Literal["inner", "all"]
SCOPES: tuple[str, ...] = ("inner", "all")


@dataclass(frozen=True)
class ChannelGroup:
    """``size`` channels kept or dropped together.

    ``producers``: layers whose weight dim 0 indexes the channels; ``consumers``: layers whose weight
    dim 1 does; ``blocks``: the blocks whose statistics describe the group (calibration indices).
    """

    name: str
    kind: Literal["inner", "stream"]
    size: int
    producers: tuple[nn.Module, ...]
    consumers: tuple[nn.Module, ...]
    blocks: tuple[int, ...]
    inner_key: str | None = None  # the block handler's group name, for inner groups
    divisions: int = 1  # equal runs of channels that keep equal counts (a grouped convolution's groups)


def stem_conv(dec: Decomposition) -> nn.Module:
    for m in dec.stem.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            return m
    raise NotImplementedError(f"no convolution found in the stem {type(dec.stem).__name__}")


def stem_joins_first_stage(dec: Decomposition) -> bool:
    """True when the stem writes the first stage's stream (same width, identity shortcut into block 0)."""
    return dec.stem_width == dec.widths[0]


def input_stage(dec: Decomposition, b: int) -> int | None:
    """The stage whose stream enters block ``b``; None for block 0 fed by a separate stem stream."""
    if b > 0:
        return dec.stages[b - 1]
    return dec.stages[0] if stem_joins_first_stage(dec) else None


def channel_groups(dec: Decomposition, scope: Scope = "inner") -> list[ChannelGroup]:
    """Inner groups of every block, plus one stream group per stage when ``scope`` is ``"all"``."""
    if scope not in SCOPES:
        raise ConfigError(f"unknown pruning scope {scope!r}; known: {', '.join(SCOPES)}")
    groups = []
    for b, block in enumerate(dec.blocks):
        handler = block_handler(block)
        layers = handler.inner_layers(block)
        divisions = handler.inner_divisions(block)
        for key, size in handler.inner_groups(block).items():
            producers, consumers = layers[key]
            groups.append(ChannelGroup(f"{dec.block_names[b]}:{key}", "inner", size, tuple(producers),
                                       tuple(consumers), (b,), key, divisions.get(key, 1)))
    if scope == "all":
        if any(block_handler(block).pinned_out(block) for block in dec.blocks):
            raise ConfigError("scope 'all' cannot prune streams that carry fixed channels (PointNet++ coordinates); "
                              "use scope 'inner'")
        n_stages = max(dec.stages) + 1
        for s in range(n_stages):
            blocks = tuple(b for b in range(len(dec.blocks)) if dec.stages[b] == s)
            producers = [stem_conv(dec)] if s == 0 and stem_joins_first_stage(dec) else []
            consumers: list[nn.Module] = []
            for b, block in enumerate(dec.blocks):
                made, used = block_handler(block).stream_layers(block)
                producers += made if dec.stages[b] == s else []
                consumers += used if input_stage(dec, b) == s else []
            if s == n_stages - 1:
                consumers.append(dec.head.linear)
            groups.append(ChannelGroup(f"stage{s + 1}", "stream", dec.widths[blocks[0]], tuple(producers),
                                       tuple(consumers), blocks))
    return groups
