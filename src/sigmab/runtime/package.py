"""A tree as a deployable package: one safetensors file per unit (backbone, each router, each node)
and a JSON manifest holding the tree spec and every unit's file and byte size.

A runtime reads the manifest, builds the (weightless) structure from the spec, and loads a unit's
file only when an input's path needs it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from sigmab.errors import CheckpointError
from sigmab.models.checkpoint import file_in_folder, read_folder_spec
from sigmab.routing.names import is_router
from sigmab.tree.model import SigmaBTree
from sigmab.tree.spec import TreeSpec
from sigmab.utils.io import atomic_path, atomic_write_json

PACKAGE_FORMAT = "sigmab.package/1"
PACKAGE_MANIFEST = "package.json"


def tree_unit_modules(tree: SigmaBTree) -> dict[str, nn.Module]:
    """``backbone``, routers ``r<bits>`` and nodes ``n<bits>`` of a tree, by unit name."""
    return {"backbone": tree.backbone, **dict(tree.routers.items()), **dict(tree.nodes.items())}


def state_bytes(module: nn.Module) -> int:
    """Bytes of a module's state_dict tensors: what loading it reads."""
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


def unit_path(tree: SigmaBTree, leaf: str) -> list[str]:
    """The units one input routed to ``leaf`` runs, in order: backbone, then router and node per level."""
    nodes, routers = tree.path_keys(leaf)
    return ["backbone", *(u for pair in zip(routers, nodes) for u in pair)]


def write_package(tree: SigmaBTree, spec: TreeSpec, folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Write every unit's weights and ``package.json`` into ``folder`` (each file atomically)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    units = {}
    for name, module in tree_unit_modules(tree).items():
        tensors = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
        file = f"{name}.safetensors"
        with atomic_path(folder / file) as tmp:
            save_file(tensors, str(tmp), metadata={"format": PACKAGE_FORMAT, "unit": name})
        units[name] = {"file": file, "bytes": state_bytes(module),
                       "kind": "backbone" if name == "backbone" else "router" if is_router(name) else "node"}
    meta = spec.dense_meta
    manifest = {"format": PACKAGE_FORMAT, "tree": spec.to_json(), "units": units,
                "paths": {leaf: unit_path(tree, leaf) for leaf in tree.leaves},
                "preprocess": {"mean": list(meta.mean), "std": list(meta.std), "input_size": list(meta.input_size)}}
    atomic_write_json(folder / PACKAGE_MANIFEST, manifest)
    return manifest


def read_package_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    manifest = read_folder_spec(Path(folder) / PACKAGE_MANIFEST, what="package", fmt=PACKAGE_FORMAT)
    for name, unit in manifest["units"].items():
        path = file_in_folder(folder, unit["file"], manifest=PACKAGE_MANIFEST)
        if not path.is_file():
            raise CheckpointError(f"{folder}: unit {name!r} has no weights file {unit['file']}")
        unit["path"] = str(path)
    return manifest


def release_weights(module: nn.Module) -> None:
    """Drop a module's floating-point parameters and buffers to the meta device (no memory held);
    structural integer buffers (channel maps) stay."""
    for sub in module.modules():
        for name, param in list(sub._parameters.items()):
            if param is not None:
                sub._parameters[name] = nn.Parameter(torch.empty_like(param, device="meta"), param.requires_grad)
        for name, buf in list(sub._buffers.items()):
            if buf is not None and buf.is_floating_point():
                sub._buffers[name] = torch.empty_like(buf, device="meta")
