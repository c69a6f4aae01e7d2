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
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sigmab.errors import ConfigError
from sigmab.routing import margin_form, node_key, router_key, takes_branch_one, walk_all
from sigmab.routing.names import children, is_router
from sigmab.tree.model import SigmaBTree
from sigmab.utils.extras import import_extra
from sigmab.utils.io import atomic_path, atomic_write_json
from sigmab.utils.progress import progress_bar

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
        _strip_debug_metadata(tmp)


def _strip_debug_metadata(path: Path) -> None:
    """Drop the exporter's per-node debug metadata (Python stack traces, FX node names) from an ONNX file.

    They are most of a conditional tree's file: every node inside a ``torch.cond`` branch carries the whole
    stack of its tracing, so the 36 KB of weights of a tiny tree came in a 2.2 MB ``tree.onnx``."""
    onnx = import_extra("onnx")

    model = onnx.load(str(path))

    def strip(graph: Any) -> None:
        for node in graph.node:
            del node.metadata_props[:]
            node.doc_string = ""
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    strip(attribute.g)
                for sub_graph in attribute.graphs:
                    strip(sub_graph)

    strip(model.graph)
    onnx.save(model, str(path))


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence what the exporters say that is not the user's business: pytree deprecations inside torch, and
    torch.onnx's note that it skips torchvision's operators when torchvision is absent."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._export")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


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


@dataclass(frozen=True)
class GraphJob:
    """One graph to export: ``module`` traced on ``example`` (N, ...), batch dim dynamic unless told otherwise."""

    name: str
    kind: str
    module: nn.Module
    example: torch.Tensor
    dynamic_batch: bool = True


def _export_one(job: GraphJob, folder: Path, onnx: bool) -> ExportedGraph:
    program = export_program(job.module, job.example, dynamic_batch=job.dynamic_batch)
    files = {"pt2": f"{job.name}.pt2"}
    with atomic_path(folder / files["pt2"]) as tmp:
        torch.export.save(program, tmp)
    if onnx:
        files["onnx"] = f"{job.name}.onnx"
        save_onnx(program, folder / files["onnx"])
    with torch.no_grad():
        out = job.module(job.example)
    return ExportedGraph(job.name, job.kind, files, list(job.example.shape), list(out.shape))


def _export_all(jobs: list[GraphJob], folder: str | os.PathLike[str], onnx: bool, extra: dict[str, Any], *,
                progress: bool) -> dict[str, Any]:
    """Export every job into ``folder`` (a progress bar per graph), then write ``export.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    graphs = []
    with _quiet_exporter():
        bar = progress_bar(jobs, enabled=progress, desc="export", unit="graph")
        for job in bar:
            bar.set_postfix_str(job.name, refresh=True)
            graphs.append(_export_one(job, folder, onnx))
    return _write_manifest(folder, graphs, extra)


def _write_manifest(folder: Path, graphs: list[ExportedGraph], extra: dict[str, Any]) -> dict[str, Any]:
    manifest = {"format": EXPORT_FORMAT, "input": INPUT_NAME, "output": OUTPUT_NAME,
                "graphs": {g.name: g.to_json() for g in graphs}, **extra}
    atomic_write_json(folder / MANIFEST, manifest)
    return manifest


def export_tree(tree: SigmaBTree, example: torch.Tensor, folder: str | os.PathLike[str], *,
                onnx: bool = True, paths: bool = True, conditional: bool = True, margin_routers: bool = False,
                preprocess: dict[str, Any] | None = None, progress: bool = False) -> dict[str, Any]:
    """Export every unit of ``tree`` (and, with ``paths``, every root-to-leaf path; with ``conditional``, the
    whole tree as one batch-1 graph ``tree`` whose routers are conditionals) into ``folder``.

    ``example`` (N, C, H, W) fixes every dim but the batch; ``preprocess`` (e.g. the mean and std the
    graphs expect their inputs normalised with) is recorded in the manifest. With ``margin_routers`` each
    router graph gives ``[0, l1 - l0]`` instead of its logits (:func:`sigmab.routing.margin_form`: the same
    branches; the form routers are quantised in). Returns the manifest written as ``export.json``.
    """
    tree = tree.eval()
    jobs = []
    for name, (module, x) in tree_units(tree, example).items():
        kind = "backbone" if name == "backbone" else "router" if is_router(name) else "node"
        jobs.append(GraphJob(name, kind, margin_form(module) if margin_routers and kind == "router" else module, x))
    if paths:
        jobs += [GraphJob(f"path-{leaf}", "path", path_module(tree, leaf), example) for leaf in tree.leaves]
    if conditional:
        jobs.append(GraphJob("tree", "conditional-tree", ConditionalTree(tree).eval(), example[:1],
                             dynamic_batch=False))
    return _export_all(jobs, folder, onnx, {"kind": "tree", "depth": tree.depth, "leaves": tree.leaves,
                                            "routers": "margin" if margin_routers else "logits",
                                            "preprocess": preprocess or {}}, progress=progress)


def export_model(model: nn.Module, example: torch.Tensor, folder: str | os.PathLike[str], *,
                 onnx: bool = True, preprocess: dict[str, Any] | None = None, progress: bool = False
                 ) -> dict[str, Any]:
    """Export a plain (dense or statically pruned) model as one graph ``model`` into ``folder``."""
    return _export_all([GraphJob("model", "model", model.eval(), example)], folder, onnx,
                       {"kind": "model", "preprocess": preprocess or {}}, progress=progress)


class _AtLevel(nn.Module):
    """A nested sparse net fixed at one level: (N, ...) -> (N, K)."""

    def __init__(self, net: nn.Module, level: int) -> None:
        super().__init__()
        self.net, self.level = net, level

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_at(x, self.level)


def export_levels(net: Any, example: torch.Tensor, folder: str | os.PathLike[str], *, onnx: bool = True,
                  preprocess: dict[str, Any] | None = None, progress: bool = False) -> dict[str, Any]:
    """Export a nested sparse net as one graph per level, ``level-<i>`` (densest first): the level is fixed at
    export, its masked weights baked into the graph."""
    jobs = [GraphJob(f"level-{level}", "level", _AtLevel(net, level).eval(), example)
            for level in range(net.num_levels)]
    return _export_all(jobs, folder, onnx, {"kind": "nested", "levels": net.num_levels,
                                            "preprocess": preprocess or {}}, progress=progress)


def export_any(kind: str, model: nn.Module, meta: Any, folder: str | os.PathLike[str], *, onnx: bool = True,
               paths: bool = True, conditional: bool = True, margin_routers: bool = False, batch: int = 2,
               source: dict[str, Any] | None = None, progress: bool = False) -> dict[str, Any]:
    """Export what :func:`sigmab.folders.open_model` opened, with ``meta``'s input shape and normalisation
    recorded as the graphs' preprocessing and ``source`` (where the model came from: ``run`` or ``checkpoint``,
    ``dataset``...) as the manifest's ``source``."""
    example = torch.randn(batch, meta.in_channels, *meta.input_size, generator=torch.Generator().manual_seed(0))
    preprocess = {"mean": list(meta.mean), "std": list(meta.std), "input_size": list(meta.input_size),
                  "in_channels": meta.in_channels, "arch": meta.arch, "source_kind": kind}
    if kind == "tree":
        assert isinstance(model, SigmaBTree)
        manifest = export_tree(model, example, folder, onnx=onnx, paths=paths, conditional=conditional,
                               margin_routers=margin_routers, preprocess=preprocess, progress=progress)
    elif kind == "nested":
        manifest = export_levels(model, example, folder, onnx=onnx, preprocess=preprocess, progress=progress)
    else:
        manifest = export_model(model, example, folder, onnx=onnx, preprocess=preprocess, progress=progress)
    if source:
        manifest["source"] = source
        atomic_write_json(Path(folder) / MANIFEST, manifest)
    return manifest
