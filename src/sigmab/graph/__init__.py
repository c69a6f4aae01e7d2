"""Channel coupling and slicing: decomposition of models into blocks, per-type slicing handlers."""

from sigmab.graph.blocks import BLOCK_HANDLERS, BlockChannels, BlockHandler, block_handler, register_block_handler
from sigmab.graph.decompose import (
    ADAPTERS,
    ArchAdapter,
    ClassifierHead,
    Decomposition,
    decompose,
    get_adapter,
    register_adapter,
)
from sigmab.graph.slicing import LAYER_SLICERS, IndexShortcut, channel_map, register_slicer, slice_layer

__all__ = [
    "ADAPTERS",
    "BLOCK_HANDLERS",
    "LAYER_SLICERS",
    "ArchAdapter",
    "BlockChannels",
    "BlockHandler",
    "ClassifierHead",
    "Decomposition",
    "IndexShortcut",
    "block_handler",
    "channel_map",
    "decompose",
    "get_adapter",
    "register_adapter",
    "register_block_handler",
    "register_slicer",
    "slice_layer",
]

# Registers every architecture family's adapter and handlers (after the core above, which they build on).
from sigmab.graph import archs  # noqa: E402, F401
