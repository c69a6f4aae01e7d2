"""Export a SigmaB tree as standalone graphs: every unit (backbone, router, node), every root-to-leaf
path, and, through the same route, a dense or statically pruned model.

Each graph is a ``torch.export`` program with a dynamic batch dim, saved as ``.pt2``; with the
``[export]`` extra installed, also as ONNX (the dynamo-based ``torch.onnx`` exporter). A runtime that
is not PyTorch runs ``backbone -> r -> n<b> -> r<b> -> ...``, taking each router's argmax, or, one
input at a time, the single graph ``tree`` in which every router is a conditional (``torch.cond``,
ONNX ``If``); the folder's ``export.json`` names every graph's file, input and output.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sigmab.errors import ConfigError
from sigmab.routing import node_key, router_key, takes_branch_one, walk_all
from sigmab.routing.names import children, is_router
from sigmab.tree.model import SigmaBTree
from sigmab.utils.io import atomic_path, atomic_write_json

EXPORT_FORMAT = "sigmab.export/1"
MANIFEST = "export.json"
INPUT_NAME = "x"
OUTPUT_NAME = "y"


def onnx_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxscript"))


def path_module(tree: SigmaBTree, leaf: str) -> nn.Sequential:
    """Backbone and the nodes on the path to ``leaf``, without routers: (N, C, H, W) -> (N, K)."""
    if leaf not in tree.leaves:
        raise ConfigError(f"no leaf {leaf!r}; the tree has {', '.join(tree.leaves)}")
    return nn.Sequential(tree.backbone, *(tree.nodes[k] for k in tree.path_keys(leaf)[0])).eval()


class _RoutedSubtree(nn.Module):
    """Node ``n<bits>``, then (below a leaf) its router choosing one child subtree with ``torch.cond``."""

    def __init__(self, tree: SigmaBTree, bits: str) -> None:
        super().__init__()
        self.node = tree.nodes[node_key(bits)]
        self.router = tree.routers[router_key(bits)] if len(bits) < tree.depth else None
        self.branches = nn.ModuleList([_RoutedSubtree(tree, c) for c in children(bits)]) if self.router else None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.node(h)
        return h if self.router is None else _route(self.router, self.branches, h)


def _route(router: nn.Module, branches: nn.ModuleList, h: torch.Tensor) -> torch.Tensor:
    return torch.cond(takes_branch_one(router(h)), branches[1], branches[0], (h,))


class ConditionalTree(nn.Module):
    """The whole tree as one graph for batch-1 inference: (1, C, H, W) -> (1, K), each router a
    conditional (ONNX ``If``), so a runtime executes only the routed path. Ties go to branch 0, as argmax."""

    def __init__(self, tree: SigmaBTree) -> None:
        super().__init__()
        self.backbone = tree.backbone
        self.router = tree.routers[router_key("")]
        self.branches = nn.ModuleList([_RoutedSubtree(tree, c) for c in children("")])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _route(self.router, self.branches, self.backbone(x))


def tree_units(tree: SigmaBTree, example: torch.Tensor) -> dict[str, tuple[nn.Module, torch.Tensor]]:
    """Every unit of the tree with an example of its input: ``backbone`` takes images, router ``r<b>``
    and node ``n<b>x`` take the stream after node ``n<b>`` (after the backbone for the root)."""
    units: dict[str, tuple[nn.Module, torch.Tensor]] = {"backbone": (tree.backbone, example)}

    def record(key: str, h: torch.Tensor) -> torch.Tensor:
        units[key] = (tree.routers[key] if is_router(key) else tree.nodes[key], h)
        return tree.run_unit(key, h)

    with torch.no_grad():
        walk_all(tree.backbone(example), tree.depth, record)
    return units


def export_program(module: nn.Module, example: torch.Tensor, *, dynamic_batch: bool = True
                   ) -> torch.export.ExportedProgram:
    """``torch.export`` of ``module`` (eval mode) on (N, ...) inputs, with N dynamic unless told otherwise."""
    if not dynamic_batch:
        return torch.export.export(module.eval(), (example,))
    batch = torch.export.Dim("batch", min=1, max=65536)
    return torch.export.export(module.eval(), (example,), dynamic_shapes=({0: batch},))


def save_onnx(program: torch.export.ExportedProgram, path: str | os.PathLike[str]) -> None:
    """Write ``program`` as an ONNX file (atomically), input ``x`` and output ``y``."""
    if not onnx_available():
        raise ConfigError("ONNX export needs the [export] extra: pip install 'sigmab[export]'")
    onnx_program = torch.onnx.export(program, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                     dynamo=True, verbose=False)
    with atomic_path(path) as tmp:
        onnx_program.save(str(tmp))


@dataclass(frozen=True)
class ExportedGraph:
    name: str
    kind: str  # backbone | router | node | path | model
    files: dict[str, str]  # format (pt2, onnx) -> file name in the folder
    input_shape: list[int]  # example input shape; dim 0 is dynamic
    output_shape: list[int]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "files": self.files, "input_shape": self.input_shape,
                "output_shape": self.output_shape}


def _export_one(name: str, kind: str, module: nn.Module, example: torch.Tensor, folder: Path,
                onnx: bool, *, dynamic_batch: bool = True) -> ExportedGraph:
    program = export_program(module, example, dynamic_batch=dynamic_batch)
    files = {"pt2": f"{name}.pt2"}
    with atomic_path(folder / files["pt2"]) as tmp:
        torch.export.save(program, tmp)
    if onnx:
        files["onnx"] = f"{name}.onnx"
        save_onnx(program, folder / files["onnx"])
    with torch.no_grad():
        out = module(example)
    return ExportedGraph(name, kind, files, list(example.shape), list(out.shape))


def _write_manifest(folder: Path, graphs: list[ExportedGraph], extra: dict[str, Any]) -> dict[str, Any]:
    manifest = {"format": EXPORT_FORMAT, "input": INPUT_NAME, "output": OUTPUT_NAME,
                "graphs": {g.name: g.to_json() for g in graphs}, **extra}
    atomic_write_json(folder / MANIFEST, manifest)
    return manifest


def export_tree(tree: SigmaBTree, example: torch.Tensor, folder: str | os.PathLike[str], *,
                onnx: bool = True, paths: bool = True, conditional: bool = True,
                preprocess: dict[str, Any] | None = None) -> dict[str, Any]:
    """Export every unit of ``tree`` (and, with ``paths``, every root-to-leaf path; with ``conditional``, the
    whole tree as one batch-1 graph ``tree`` whose routers are conditionals) into ``folder``.

    ``example`` (N, C, H, W) fixes every dim but the batch; ``preprocess`` (e.g. the mean and std the
    graphs expect their inputs normalised with) is recorded in the manifest. Returns the manifest
    written as ``export.json``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tree = tree.eval()
    graphs = []
    for name, (module, x) in tree_units(tree, example).items():
        kind = "backbone" if name == "backbone" else "router" if is_router(name) else "node"
        graphs.append(_export_one(name, kind, module, x, folder, onnx))
    if paths:
        graphs += [_export_one(f"path-{leaf}", "path", path_module(tree, leaf), example, folder, onnx)
                   for leaf in tree.leaves]
    if conditional:
        graphs.append(_export_one("tree", "conditional-tree", ConditionalTree(tree).eval(), example[:1], folder, onnx,
                                  dynamic_batch=False))
    return _write_manifest(folder, graphs, {"kind": "tree", "depth": tree.depth, "leaves": tree.leaves,
                                            "preprocess": preprocess or {}})


def export_model(model: nn.Module, example: torch.Tensor, folder: str | os.PathLike[str], *,
                 onnx: bool = True, preprocess: dict[str, Any] | None = None) -> dict[str, Any]:
    """Export a plain (dense or statically pruned) model as one graph ``model`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    graph = _export_one("model", "model", model.eval(), example, folder, onnx)
    return _write_manifest(folder, [graph], {"kind": "model", "preprocess": preprocess or {}})


def export_any(kind: str, model: nn.Module, meta: Any, folder: str | os.PathLike[str], *, onnx: bool = True,
               paths: bool = True, batch: int = 2) -> dict[str, Any]:
    """Export what :func:`sigmab.inputs.load_model_or_folder` loaded, with ``meta``'s input shape and
    normalisation recorded as the graphs' preprocessing."""
    example = torch.randn(batch, meta.in_channels, *meta.input_size, generator=torch.Generator().manual_seed(0))
    preprocess = {"mean": list(meta.mean), "std": list(meta.std), "input_size": list(meta.input_size),
                  "in_channels": meta.in_channels, "arch": meta.arch, "source_kind": kind}
    if kind == "tree":
        assert isinstance(model, SigmaBTree)
        return export_tree(model, example, folder, onnx=onnx, paths=paths, preprocess=preprocess)
    if kind == "nested":
        return export_levels(model, example, folder, onnx=onnx, preprocess=preprocess)
    return export_model(model, example, folder, onnx=onnx, preprocess=preprocess)


def export_levels(net: Any, example: torch.Tensor, folder: str | os.PathLike[str], *, onnx: bool = True,
                  preprocess: dict[str, Any] | None = None) -> dict[str, Any]:
    """Export a nested sparse net as one graph per level, ``level-<i>`` (densest first): the level is fixed at
    export, its masked weights baked into the graph."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    previous = net.route
    try:
        graphs = [_export_one(f"level-{level}", "level", net.set_route(level).eval(), example, folder, onnx)
                  for level in range(net.num_levels)]
    finally:
        net.set_route(previous)
    return _write_manifest(folder, graphs, {"kind": "nested", "levels": net.num_levels,
                                            "preprocess": preprocess or {}})
