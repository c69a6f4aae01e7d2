"""Channel groups of any block read off a ``torch.fx`` trace, instead of a hand-written handler.

A block maps an incoming stream (N, C_in, ...) to an outgoing one. Following the traced graph, every tensor gets
a *channel space*: a convolution or linear layer starts a new one (a depthwise convolution keeps its input's),
BatchNorm and element-wise activations keep theirs, a residual ``add`` joins its two operands' spaces into one
(an identity shortcut joins the incoming stream to the outgoing one), and a parameter-free shortcut module
(CIFAR's zero padding) carries the incoming stream into the outgoing one. The spaces that are neither the
incoming nor the outgoing stream are the block's *inner groups*; the layers writing and reading each space are
what slicing and weight criteria need. An operation on a channel path that these rules do not cover is one
:class:`TraceError` naming the node and the operation, never a guess.

A grouped (not depthwise) convolution starts a new space like any convolution, and both its input and output
groups must keep the same count of channels in each of its groups (``divisions``), so its copy stays grouped.
The same trace slices the block (:func:`slice_traced`) and cuts a whole model into stem, blocks and head
(:class:`TracedAdapter`). Not followed yet: concatenations, and grouped convolutions on a block's stream.
"""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from sigmab.errors import ConfigError
from sigmab.graph.blocks import BlockChannels, BlockHandler
from sigmab.graph.slicing import IndexShortcut, channel_map, slice_layer

_CONVS = (nn.Conv1d, nn.Conv2d)
_SAME_SPACE_MODULES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU, nn.GELU,
                       nn.Identity, nn.Dropout, nn.Sigmoid, nn.Hardsigmoid, nn.AdaptiveAvgPool2d, nn.MaxPool2d)
#: Modules of other libraries that act on each channel alone and carry no weights (a zoo's stochastic depth),
#: by qualified type name, so that the core never imports those libraries; kept whole in the trace.
SAME_SPACE_NAMES: set[str] = set()
_SAME_SPACE_FUNCTIONS = {F.relu, F.relu6, F.hardswish, F.silu, F.gelu, torch.relu, torch.sigmoid, F.dropout,
                         F.hardsigmoid, F.adaptive_avg_pool2d}
# Element-wise joins of two tensors: a residual add, or a squeeze-excite gate multiplying its input's channels.
_ADDS = {operator.add, operator.iadd, torch.add, operator.mul, operator.imul, torch.mul}


class TraceError(ConfigError):
    """A block whose channels cannot be followed through its traced graph (the node and operation are named)."""


def _qualified_name(module: nn.Module) -> str:
    return f"{type(module).__module__}.{type(module).__qualname__}"


def _same_space(module: nn.Module) -> bool:
    return isinstance(module, _SAME_SPACE_MODULES) or _qualified_name(module) in SAME_SPACE_NAMES


class _Tracer(fx.Tracer):
    """Keeps parameter-free shortcut modules (``leaf_types``) and registered per-channel modules whole, as standard
    layers are."""

    def __init__(self, leaf_types: tuple[type, ...]) -> None:
        super().__init__()
        self.leaf_types = leaf_types

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, self.leaf_types) or _same_space(m) or super().is_leaf_module(m, qualname)


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
    divisions: dict[str, int] = field(default_factory=dict)  # groups a grouped convolution reads or writes


@dataclass
class _Analysis:
    graph: fx.Graph
    modules: dict[str, nn.Module]
    space: dict[fx.Node, int]  # each tensor's channel space (find() applied)
    incoming: int
    outgoing: int
    names: dict[int, str]  # inner space -> group name (its first producing layer)
    groups: TracedGroups


def _analyse(block: nn.Module, shortcut_types: Iterable[type]) -> _Analysis:
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
    followers: list[tuple[int, nn.Module]] = []  # (space, activation module on it), in graph order
    grouped: list[tuple[int, int, int, str]] = []  # (input space, output space, groups, where) of grouped convs
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
                space[node], writer[node] = next(counter), module
                if isinstance(module, _CONVS) and module.groups != 1:
                    grouped.append((source, space[node], module.groups, where))
                writes.append((space[node], node.target, module))
                reads.append((source, module))
            elif isinstance(module, leaf_types):
                space[node] = source  # the incoming stream, carried (padded, strided) into the outgoing one
            elif _same_space(module):
                space[node] = source
                if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                    norms.append((source, module, writer[inputs[0]]))
                elif isinstance(module, _SAME_SPACE_MODULES) and not isinstance(
                        module, (nn.Identity, nn.Dropout, nn.AdaptiveAvgPool2d, nn.MaxPool2d)):
                    followers.append((source, module))
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
    for name, producers in groups.producers.items():  # at worst the group's last producing layer itself
        groups.activations[name] = producers[-1]
    for s, module in followers:  # better, the last activation module on the group (a gate's ReLU)
        if find(s) in names:
            groups.activations[names[find(s)]] = module
    for s, norm, before in norms:
        s = find(s)
        if s in names:
            groups.activations[names[s]] = norm  # the last BatchNorm on the group wins
        elif s == incoming and id(before) in on_input:
            groups.in_activations.append(norm)  # a depthwise conv's BatchNorm on the incoming stream
    for spaces_of_conv in grouped:  # both sides of a grouped conv keep equal counts in each of its groups
        source, made, count, where = spaces_of_conv
        for s in (find(source), find(made)):
            if s not in names:
                raise TraceError(f"{where}: a grouped convolution (groups={count}) on the block's incoming or "
                                 "outgoing stream is not followed yet")
            name = names[s]
            divisions = math.lcm(groups.divisions.get(name, 1), count)
            if groups.inner[name] % divisions:
                raise TraceError(f"{where}: group {name!r} of {groups.inner[name]} channels cannot keep equal "
                                 f"counts in {divisions} runs")
            groups.divisions[name] = divisions
    space = {node: find(s) for node, s in space.items()}
    return _Analysis(graph, modules, space, incoming, outgoing, names, groups)


def trace_groups(block: nn.Module, *, shortcut_types: Iterable[type] = ()) -> TracedGroups:
    """The channel groups of ``block`` from its ``torch.fx`` trace; ``shortcut_types``: parameter-free modules that
    carry the incoming stream into the outgoing one (kept whole in the trace)."""
    return _analyse(block, shortcut_types).groups


def slice_traced(block: nn.Module, inp: torch.Tensor, out: torch.Tensor, inner: dict[str, torch.Tensor], *,
                 shortcut_types: Iterable[type] = ()) -> fx.GraphModule:
    """``block`` keeping the dense channel ids ``inp`` of the incoming stream, ``out`` of the outgoing one and
    ``inner[group]`` of each inner group (named as :func:`trace_groups` names them): a traced copy whose layers
    are sliced copies, with a channel map (:class:`IndexShortcut`) put on an identity shortcut wherever the kept
    incoming and outgoing channels differ. The dense ``block`` is not changed."""
    a = _analyse(block, shortcut_types)
    gm = fx.GraphModule(copy.deepcopy(block), a.graph)
    index: dict[fx.Node, torch.Tensor] = {}
    maps = 0

    def of_space(s: int) -> torch.Tensor:  # incoming: a gate's excite layer on an unexpanded block's input
        return out if s == a.outgoing else inp if s == a.incoming else inner[a.names[s]]

    for node in list(gm.graph.nodes):
        if node.op == "placeholder":
            index[node] = inp
        elif node.op == "call_module":
            module, arg = a.modules[node.target], node.all_input_nodes[0]
            if isinstance(module, _CONVS) and _is_depthwise(module):
                index[node] = index[arg]
                sliced = slice_layer(module, in_idx=index[arg], out_idx=index[arg])
            elif isinstance(module, (*_CONVS, nn.Linear)):
                index[node] = of_space(a.space[node])
                sliced = slice_layer(module, in_idx=index[arg], out_idx=index[node])
            elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                index[node] = index[arg]
                sliced = slice_layer(module, out_idx=index[node])
            elif not _same_space(module):  # a parameter-free shortcut into the outgoing stream
                index[node] = out
                sliced = slice_layer(module, in_idx=index[arg], out_idx=out)
            else:
                index[node] = index[arg]
                continue
            gm.add_submodule(node.target, sliced)
        elif node.op == "call_function" and node.target in _ADDS:
            operands = node.all_input_nodes
            produced = [n for n in operands if index[n] is not inp] or operands
            index[node] = index[produced[0]]
            for operand in operands:
                if not torch.equal(index[operand], index[node]):  # an identity path whose channels differ
                    name = f"channel_map_{maps}"
                    maps += 1
                    gm.add_submodule(name, IndexShortcut(channel_map(index[operand], index[node])))
                    with gm.graph.inserting_before(node):
                        mapped = gm.graph.call_module(name, (operand,))
                    node.replace_input_with(operand, mapped)
        elif node.op == "call_function":
            index[node] = index[node.all_input_nodes[0]]
    gm.recompile()
    return gm.train(block.training)


class TracedBlockHandler(BlockHandler):
    """A :class:`BlockHandler` for any block type the trace can follow: groups from :func:`trace_groups`, slicing
    by :func:`slice_traced`. ``shortcut_types``: parameter-free shortcut modules the block may hold."""

    def __init__(self, shortcut_types: Iterable[type] = ()) -> None:
        self.shortcut_types = tuple(shortcut_types)

    def _groups(self, block: nn.Module) -> TracedGroups:
        return trace_groups(block, shortcut_types=self.shortcut_types)

    def inner_groups(self, block: nn.Module) -> dict[str, int]:
        return self._groups(block).inner

    def inner_activations(self, block: nn.Module) -> dict[str, nn.Module]:
        return self._groups(block).activations

    def inner_layers(self, block: nn.Module) -> dict[str, tuple[list[nn.Module], list[nn.Module]]]:
        groups = self._groups(block)
        return {name: (groups.producers[name], groups.consumers.get(name, [])) for name in groups.inner}

    def in_activations(self, block: nn.Module) -> list[nn.Module]:
        return self._groups(block).in_activations

    def inner_divisions(self, block: nn.Module) -> dict[str, int]:
        return self._groups(block).divisions

    def stream_layers(self, block: nn.Module) -> tuple[list[nn.Module], list[nn.Module]]:
        groups = self._groups(block)
        return groups.out_producers, groups.in_consumers

    def slice(self, block: nn.Module, channels: BlockChannels) -> nn.Module:
        return slice_traced(block, channels.inp, channels.out, channels.inner, shortcut_types=self.shortcut_types)


#: Parameter-free shortcut modules a traced block may hold, kept whole in the trace (a family registers its own,
#: e.g. CIFAR ResNets' zero padding, with a layer slicer for it).
SHORTCUT_TYPES: set[type] = set()

_POOLS = {F.adaptive_avg_pool2d, F.avg_pool2d, torch.flatten}
_HEAD_METHODS = {"flatten", "view", "reshape", "size", "mean"}


def _has_conv(module: nn.Module) -> bool:
    return any(isinstance(m, _CONVS) for m in module.modules())


def _is_block(module: nn.Module) -> bool:
    return _has_conv(module) and any(True for _ in module.children())


def block_candidates(model: nn.Module) -> list[str]:
    """Names of the modules a traced model is cut at: every child of an ``nn.Sequential`` that holds a convolution
    and is not a single layer, outside any such block (ResNet stages' blocks, MobileNetV2's ``features``); a child
    that is itself a sequence of such blocks (EfficientNet's and RegNet's stages) is cut into them."""
    names: list[str] = []

    def walk(prefix: str, module: nn.Module) -> None:
        for name, child in module.named_children():
            path = f"{prefix}{name}"
            stage = isinstance(child, nn.Sequential) and all(_is_block(c) for c in child.children())
            if isinstance(module, nn.Sequential) and _is_block(child) and not stage:
                names.append(path)
            else:
                walk(f"{path}.", child)

    walk("", model)
    return names


class TracedAdapter:
    """A decomposition read off a ``torch.fx`` trace, for any model whose blocks :func:`block_candidates` finds:
    the stem is the chain of layers before the first block (or the first block, when it reads the image), the head
    a global pooling and the first ``nn.Linear`` after the last block; a block with an identity path and equal
    widths continues its predecessor's stage. Default split points: the starts of the last ``depth`` stages."""

    def decompose(self, model: nn.Module) -> Any:
        from sigmab.graph.decompose import ClassifierHead, Decomposition, MLPHead

        candidates = set(block_candidates(model))
        shortcuts = tuple(SHORTCUT_TYPES)

        class Tracer(fx.Tracer):
            def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
                return qualname in candidates or super().is_leaf_module(m, qualname)

        graph = Tracer().trace(model)
        modules = dict(model.named_modules())
        calls = [n for n in graph.nodes if n.op == "call_module" and n.target in candidates]
        if not calls:
            raise TraceError(f"{type(model).__name__}: no blocks found (no nn.Sequential of convolutional modules)")
        nodes = [n for n in graph.nodes if n.op not in ("placeholder", "output")]
        if calls[0].all_input_nodes[0].op == "placeholder":  # the first block reads the image: it is the stem
            calls = calls[1:]
        if not calls:
            raise TraceError(f"{type(model).__name__}: no blocks after the stem")
        stem_nodes = nodes[:nodes.index(calls[0])]
        for before, node in zip(calls, calls[1:]):
            if node.all_input_nodes != [before]:
                raise TraceError(f"{type(model).__name__} node {node.name!r}: its block does not read the previous "
                                 "block's output alone")
        stem = nn.Sequential(*self._chain(model, stem_nodes, modules))
        head_nodes = nodes[nodes.index(calls[-1]) + 1:]
        first = next((i for i, n in enumerate(head_nodes) if n.op == "call_module"
                      and isinstance(modules[n.target], nn.Linear)), None)
        pooled = any(n.target in _POOLS or n.target in _HEAD_METHODS or isinstance(modules.get(str(n.target)),
                     (nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout)) for n in head_nodes[:first])
        if first is None or not pooled:
            raise TraceError(f"{type(model).__name__}: the head after {calls[-1].target!r} must pool globally and end "
                             "in an nn.Linear")
        linear, rest = modules[head_nodes[first].target], self._chain(model, head_nodes[first + 1:], modules)
        head = MLPHead(linear, nn.Sequential(*rest)) if rest else ClassifierHead(linear)
        blocks = [modules[n.target] for n in calls]
        stages, widths = [], []
        for index, block in enumerate(blocks):
            a = _analyse(block, shortcuts)
            width = a.groups.out_producers[-1].out_channels
            previous = widths[-1] if widths else None
            keeps = index > 0 and a.incoming == a.outgoing and width == previous
            stages.append(stages[-1] + (0 if keeps else 1) if stages else 0)
            widths.append(width)
        stem_width = [m for m in stem.modules() if isinstance(m, _CONVS)][-1].out_channels
        return Decomposition(stem, blocks, [n.target for n in calls], stages, widths, stem_width, head)

    @staticmethod
    def _chain(model: nn.Module, nodes: list[fx.Node], modules: dict[str, nn.Module]) -> list[nn.Module]:
        layers: list[nn.Module] = []
        for node in nodes:
            if node.op == "call_module":
                module = modules[node.target]
                layers += list(module) if isinstance(module, nn.Sequential) else [module]
            elif node.op == "call_function" and node.target in (F.relu, torch.relu):
                layers.append(nn.ReLU())
            else:
                raise TraceError(f"{type(model).__name__} node {node.name!r}: a stem or a head after its first "
                                 "linear layer must be a chain of layers")
        return layers

    def default_split_points(self, decomposition: Any, depth: int) -> list[str]:
        starts = [name for b, name in enumerate(decomposition.block_names)
                  if b > 0 and decomposition.stages[b] != decomposition.stages[b - 1]]
        if not 1 <= depth <= len(starts):
            raise ConfigError(f"no default split points for depth {depth} here; pass --split-points")
        return starts[-depth:]

    def default_widths(self, decomposition: Any, depth: int) -> list[float] | None:
        return None
