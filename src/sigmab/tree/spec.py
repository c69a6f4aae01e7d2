"""A tree's architecture as a small JSON spec, and the one builder that turns a spec into modules.

The spec holds the dense model's metadata, the split points and every node's kept channel ids;
weights live beside it in a safetensors file. Conversion and reloading both build through
:func:`build_node`/:func:`build_tree`, so a reloaded tree has exactly the converted structure.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sigmab.errors import CheckpointError
from sigmab.graph import BlockChannels, Decomposition, block_handler, decompose
from sigmab.graph.slicing import sliced_stem
from sigmab.models import ModelMeta, build_from_meta
from sigmab.models.checkpoint import load_folder_weights, read_folder_spec, save_state_dict
from sigmab.routing import RouterSpec, build_router, node_key, router_bits, router_key
from sigmab.routing.names import children, unit_bits
from sigmab.tree.model import SigmaBTree
from sigmab.utils.io import atomic_write_json
from sigmab.utils.manifest import write_folder_manifest

# /2: each router is a {kind, in_channels, settings} entry (/1 stored its input channels: a cosine router);
# an optional "backbone" entry slices the shared backbone too (absent: the backbone is the dense one).
SPEC_FORMAT = "sigmab.tree/2"
READABLE_FORMATS = ("sigmab.tree/1", SPEC_FORMAT)
SPEC_FILE = "tree.json"


@dataclass
class NodeSpec:
    """Blocks ``start`` to ``end`` (exclusive) of the dense model, with kept channels per block;
    ``head_in`` (the classifier's kept inputs) only for leaves."""

    start: int
    end: int
    blocks: list[BlockChannels]
    head_in: list[int] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "blocks": [b.to_json() for b in self.blocks],
                "head_in": self.head_in}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> NodeSpec:
        return cls(int(d["start"]), int(d["end"]), [BlockChannels.from_json(b) for b in d["blocks"]], d.get("head_in"))


@dataclass
class BackboneSpec:
    """A sliced backbone: the stem's kept output channels and the kept channels of every block before the
    first split point (a tree built from a static prune shares the prune's backbone)."""

    stem_out: list[int]
    blocks: list[BlockChannels]

    def to_json(self) -> dict[str, Any]:
        return {"stem_out": self.stem_out, "blocks": [b.to_json() for b in self.blocks]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BackboneSpec:
        return cls([int(c) for c in d["stem_out"]], [BlockChannels.from_json(b) for b in d["blocks"]])


@dataclass
class TreeSpec:
    dense_meta: ModelMeta
    depth: int
    split_points: list[str]
    nodes: dict[str, NodeSpec]
    routers: dict[str, RouterSpec]
    convert_config: dict[str, Any] = field(default_factory=dict)
    node_sizes: dict[str, int] = field(default_factory=dict)  # calibration samples per node (k-means)
    backbone: BackboneSpec | None = None  # None: the dense backbone

    def router_target(self, router: str) -> list[float] | None:
        """The k-means shares of a router's two children, the balance target during fine-tuning."""
        sizes = [self.node_sizes.get(node_key(child)) for child in children(unit_bits(router))]
        if None in sizes or sum(sizes) == 0:
            return None
        return [s / sum(sizes) for s in sizes]

    def to_json(self) -> dict[str, Any]:
        return {"format": SPEC_FORMAT, "dense_meta": self.dense_meta.to_dict(), "depth": self.depth,
                "split_points": self.split_points, "nodes": {k: v.to_json() for k, v in self.nodes.items()},
                "routers": {k: v.to_json() for k, v in self.routers.items()},
                "convert_config": self.convert_config, "node_sizes": self.node_sizes,
                **({"backbone": self.backbone.to_json()} if self.backbone is not None else {})}

    @classmethod
    def from_json(cls, d: dict[str, Any], *, source: str = "tree spec") -> TreeSpec:
        if not isinstance(d, dict) or d.get("format") not in READABLE_FORMATS:
            found = d.get("format") if isinstance(d, dict) else None
            raise CheckpointError(f"{source}: not a sigmab tree spec (format {found!r})")
        try:
            return cls(ModelMeta.from_dict(d["dense_meta"]), int(d["depth"]), list(d["split_points"]),
                       {k: NodeSpec.from_json(v) for k, v in d["nodes"].items()},
                       {k: RouterSpec.from_json(v) for k, v in d["routers"].items()},
                       dict(d.get("convert_config") or {}),
                       {k: int(v) for k, v in (d.get("node_sizes") or {}).items()},
                       BackboneSpec.from_json(d["backbone"]) if d.get("backbone") is not None else None)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"{source}: malformed tree spec ({exc!r})") from None


def build_node(dec: Decomposition, spec: NodeSpec) -> nn.Sequential:
    """The sliced blocks of a node, plus the sliced classifier head for a leaf."""
    layers: list[nn.Module] = [block_handler(dec.blocks[i]).slice(dec.blocks[i], ch)
                               for i, ch in zip(range(spec.start, spec.end), spec.blocks)]
    if spec.head_in is not None:
        layers.append(dec.head.sliced(torch.tensor(spec.head_in, dtype=torch.long)))
    return nn.Sequential(*layers)


def build_backbone(dec: Decomposition, first_split: int, spec: BackboneSpec | None = None) -> nn.Sequential:
    """The stem and the blocks before ``first_split``: dense, or sliced as ``spec`` says."""
    if spec is None:
        return nn.Sequential(dec.stem, *dec.blocks[:first_split])
    if len(spec.blocks) != first_split:
        raise CheckpointError(f"the backbone spec has {len(spec.blocks)} blocks; the first split point is after "
                              f"{first_split}")
    return nn.Sequential(sliced_stem(dec, spec.stem_out),
                         *[block_handler(dec.blocks[i]).slice(dec.blocks[i], ch) for i, ch in enumerate(spec.blocks)])


MAX_DEPTH = 3


def check_spec(dec: Decomposition, spec: TreeSpec) -> None:
    """Raise ``ValueError`` unless ``spec`` describes a tree of the dense decomposition ``dec``: a depth in
    1..MAX_DEPTH, every node and router of that depth, block ranges inside the model and every channel id
    inside the dense widths."""
    if not 1 <= spec.depth <= MAX_DEPTH:
        raise ValueError(f"depth must be 1..{MAX_DEPTH}, got {spec.depth}")
    nodes = {node_key(format(i, f"0{d}b")) for d in range(1, spec.depth + 1) for i in range(2**d)}
    if set(spec.nodes) != nodes or set(spec.routers) != {router_key(b) for b in router_bits(spec.depth)}:
        raise ValueError(f"a depth-{spec.depth} tree has nodes {sorted(nodes)} and their routers; the spec has "
                         f"{sorted(spec.nodes)} and {sorted(spec.routers)}")
    if len(spec.split_points) != spec.depth:
        raise ValueError(f"{len(spec.split_points)} split points for depth {spec.depth}")

    def check_blocks(start: int, blocks: list[BlockChannels], where: str) -> None:
        for i, ch in enumerate(blocks, start):
            block = dec.blocks[i]
            ch.check_widths(dec.width_before(i), dec.widths[i], block_handler(block).inner_groups(block),
                            where=f"{where} block {dec.block_names[i]}")

    for key, node in spec.nodes.items():
        if not 0 <= node.start < node.end <= len(dec.blocks) or len(node.blocks) != node.end - node.start:
            raise ValueError(f"node {key}: blocks {node.start}..{node.end} do not fit {len(dec.blocks)} blocks")
        check_blocks(node.start, node.blocks, f"node {key}")
        is_leaf = len(unit_bits(key)) == spec.depth
        if is_leaf != (node.head_in is not None):
            raise ValueError(f"node {key}: head_in must be given for leaves and only for leaves")
        if node.head_in is not None:
            BlockChannels.from_json({"in": node.head_in, "out": node.head_in, "inner": {}}).check_widths(
                dec.widths[-1], dec.widths[-1], {}, where=f"node {key} head")
    if spec.backbone is not None:
        check_blocks(0, spec.backbone.blocks, "backbone")
        BlockChannels.from_json({"in": spec.backbone.stem_out, "out": spec.backbone.stem_out, "inner": {}}
                                ).check_widths(dec.stem_width, dec.stem_width, {}, where="backbone stem")


def build_tree(dense: nn.Module, spec: TreeSpec, *, source: str = "tree spec") -> SigmaBTree:
    """Slice ``dense`` as ``spec`` says (weights copied from ``dense``); a spec that does not fit the dense
    architecture is a ``CheckpointError`` naming ``source``."""
    dec = decompose(dense)
    try:
        check_spec(dec, spec)
    except ValueError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
    first = dec.split_index(spec.split_points[0])
    nodes = {k: build_node(dec, v) for k, v in spec.nodes.items()}
    routers = {k: build_router(v) for k, v in spec.routers.items()}
    tree = SigmaBTree(build_backbone(dec, first, spec.backbone), nodes, routers, spec.depth)
    tree.meta = spec.dense_meta
    return tree.eval()


def save_tree(tree: SigmaBTree, spec: TreeSpec, folder: str | os.PathLike[str], *,
              weights: str = "tree.safetensors") -> None:
    """Write ``tree.json`` and the weights file atomically."""
    folder = Path(folder)
    atomic_write_json(folder / SPEC_FILE, spec.to_json())
    save_tree_weights(tree, folder / weights)
    write_folder_manifest(folder, kind="tree", spec_format=SPEC_FORMAT)


def save_tree_weights(tree: SigmaBTree, path: str | os.PathLike[str]) -> None:
    """A tree's state_dict as safetensors, written atomically."""
    save_state_dict(tree, path, metadata={"format": SPEC_FORMAT})


def read_spec(folder: str | os.PathLike[str]) -> TreeSpec:
    path = Path(folder) / SPEC_FILE
    return TreeSpec.from_json(read_folder_spec(path, what="tree"), source=str(path))


def load_tree(folder: str | os.PathLike[str], *, weights: str | None = None) -> tuple[SigmaBTree, TreeSpec]:
    """Rebuild a saved tree; ``weights`` defaults to the fine-tuned file when present, else the converted one."""
    folder = Path(folder)
    spec = read_spec(folder)
    tree = build_tree(build_from_meta(spec.dense_meta), spec, source=str(folder / SPEC_FILE))
    load_folder_weights(tree, folder, weights, finetuned="finetuned.safetensors", built="tree.safetensors")
    return tree.eval(), spec
