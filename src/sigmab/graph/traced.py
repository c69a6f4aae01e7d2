"""Channel groups of any block read off a ``torch.fx`` trace, instead of a hand-written handler.

A block maps an incoming stream (N, C_in, ...) to an outgoing one. Following the traced graph, every tensor gets
a *channel space*: a convolution or linear layer starts a new one (a depthwise convolution keeps its input's),
BatchNorm and element-wise activations keep theirs, a residual ``add`` joins its two operands' spaces into one
(an identity shortcut joins the incoming stream to the outgoing one), and a parameter-free shortcut module
(CIFAR's zero padding) carries the incoming stream into the outgoing one. The spaces that are neither the
incoming nor the outgoing stream are the block's *inner groups*; the layers writing and reading each space are
what slicing and weight criteria need. An operation on a channel path that these rules do not cover is one
:class:`TraceError` naming the node and the operation, never a guess.

This is the analysis half of the generic (traced) family; slicing from it is not built yet.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn

from sigmab.errors import ConfigError

_CONVS = (nn.Conv1d, nn.Conv2d)
_SAME_SPACE_MODULES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU, nn.GELU,
                       nn.Identity, nn.Dropout, nn.Sigmoid, nn.Hardsigmoid)
_SAME_SPACE_FUNCTIONS = {F.relu, F.relu6, F.hardswish, F.silu, F.gelu, torch.relu, torch.sigmoid, F.dropout}
_ADDS = {operator.add, operator.iadd, torch.add}


class TraceError(ConfigError):
    """A block whose channels cannot be followed through its traced graph (the node and operation are named)."""


class _Tracer(fx.Tracer):
    """Keeps parameter-free shortcut modules (``leaf_types``) whole, as standard layers are."""

    def __init__(self, leaf_types: tuple[type, ...]) -> None:
        super().__init__()
        self.leaf_types = leaf_types

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, self.leaf_types) or super().is_leaf_module(m, qualname)


def _is_depthwise(conv: nn.Module) -> bool:
    return conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels


@dataclass
class TracedGroups:
    """What a block's trace says: per inner group (named by its first producing layer), its width, producers
    (weight dim 0 indexes it), consumers (weight dim 1 does) and the module whose output is masked in a zeroed
    reference (the last BatchNorm on it); the outgoing stream's producers, the incoming stream's consumers, and
    the modules that act one to one on the incoming stream (a depthwise conv on it, and its BatchNorm)."""

    inner: dict[str, int] = field(default_factory=dict)
    producers: dict[str, list[nn.Module]] = field(default_factory=dict)
    consumers: dict[str, list[nn.Module]] = field(default_factory=dict)
    activations: dict[str, nn.Module] = field(default_factory=dict)
    out_producers: list[nn.Module] = field(default_factory=list)
    in_consumers: list[nn.Module] = field(default_factory=list)
    in_activations: list[nn.Module] = field(default_factory=list)


def trace_groups(block: nn.Module, *, shortcut_types: Iterable[type] = ()) -> TracedGroups:
    """The channel groups of ``block`` from its ``torch.fx`` trace; ``shortcut_types``: parameter-free modules that
    carry the incoming stream into the outgoing one (kept whole in the trace)."""
    leaf_types = tuple(shortcut_types)
    graph = _Tracer(leaf_types).trace(block)
    modules = dict(block.named_modules())
    parent: dict[int, int] = {}

    def find(s: int) -> int:
        while parent.setdefault(s, s) != s:
            s = parent[s]
        return s

    def union(a: int, b: int) -> int:
        a, b = find(a), find(b)
        parent[b] = a
        return a

    space: dict[fx.Node, int] = {}
    writer: dict[fx.Node, nn.Module | None] = {}  # the last layer that wrote a tensor's channels
    counter = iter(range(1, 10**9))
    writes: list[tuple[int, str, nn.Module]] = []  # (space, module name, layer) for layers starting a space
    depthwise: list[tuple[int, str, nn.Module]] = []  # the same for depthwise convs, which keep their space
    reads: list[tuple[int, nn.Module]] = []  # (space, layer) for layers reading a space through weight dim 1
    norms: list[tuple[int, nn.Module, nn.Module | None]] = []  # (space, BatchNorm, its input's writer)
    incoming = outgoing = 0
    for node in graph.nodes:
        if node.op == "placeholder":
            incoming = space[node] = next(counter)
            writer[node] = None
            continue
        if node.op == "get_attr":
            continue
        if node.op == "output":
            outgoing = find(space[node.args[0]])
            continue
        inputs = [a for a in node.all_input_nodes if a in space]
        where = f"{type(block).__name__} node {node.name!r}"
        if node.op == "call_module":
            module = modules[node.target]
            source = space[inputs[0]]
            writer[node] = writer[inputs[0]]
            if isinstance(module, _CONVS) and _is_depthwise(module):
                space[node], writer[node] = source, module
                depthwise.append((source, node.target, module))
            elif isinstance(module, (*_CONVS, nn.Linear)):
                if isinstance(module, _CONVS) and module.groups != 1:
                    raise TraceError(f"{where}: grouped {type(module).__name__} (groups={module.groups}) is not "
                                     "followed yet")
                space[node], writer[node] = next(counter), module
                writes.append((space[node], node.target, module))
                reads.append((source, module))
            elif isinstance(module, leaf_types):
                space[node] = source  # the incoming stream, carried (padded, strided) into the outgoing one
            elif isinstance(module, _SAME_SPACE_MODULES):
                space[node] = source
                if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                    norms.append((source, module, writer[inputs[0]]))
            else:
                raise TraceError(f"{where}: module {node.target!r} ({type(module).__name__}) on a channel path")
        elif node.op == "call_function" and node.target in _SAME_SPACE_FUNCTIONS:
            space[node], writer[node] = space[inputs[0]], writer[inputs[0]]
        elif node.op == "call_function" and node.target in _ADDS and len(inputs) == 2:
            space[node], writer[node] = union(space[inputs[0]], space[inputs[1]]), None
        else:
            raise TraceError(f"{where}: {node.op} {getattr(node.target, '__name__', node.target)!r} on a channel "
                             "path")
    incoming, outgoing = find(incoming), find(outgoing)
    groups = TracedGroups()
    names: dict[int, str] = {}
    for s, name, layer in writes:
        s = find(s)
        if s == outgoing:
            groups.out_producers.append(layer)
        elif s != incoming:
            key = names.setdefault(s, name)
            groups.producers.setdefault(key, []).append(layer)
            groups.inner.setdefault(key, layer.out_channels if isinstance(layer, _CONVS) else layer.out_features)
    for s, _, conv in depthwise:  # one to one with its input's channels: it writes them (dim 0) too
        if find(s) in names:
            groups.producers[names[find(s)]].append(conv)
    for s, layer in reads:
        s = find(s)
        if s == incoming:
            groups.in_consumers.append(layer)
        elif s in names:
            groups.consumers.setdefault(names[s], []).append(layer)
    on_input = {id(conv) for s, _, conv in depthwise if find(s) == incoming}
    for s, norm, before in norms:
        s = find(s)
        if s in names:
            groups.activations[names[s]] = norm  # the last one on the group wins
        elif s == incoming and id(before) in on_input:
            groups.in_activations.append(norm)  # a depthwise conv's BatchNorm on the incoming stream
    return groups
