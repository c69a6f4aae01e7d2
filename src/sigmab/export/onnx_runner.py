"""Run an exported tree folder in onnxruntime: backbone, then router argmax and node, level by level.

This is the reference for what a non-PyTorch runtime does with ``export.json``; the tests check it
against the in-memory tree.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sigmab.errors import CheckpointError
from sigmab.export.graphs import EXPORT_FORMAT, MANIFEST
from sigmab.models.checkpoint import file_in_folder, read_folder_spec
from sigmab.routing import walk_hard
from sigmab.utils.extras import import_extra


def _session(path: Path) -> Any:
    ort = import_extra("onnxruntime", purpose="running ONNX graphs")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def read_export_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    return read_folder_spec(Path(folder) / MANIFEST, what="export", fmt=EXPORT_FORMAT)


class OnnxGraphs:
    """Lazily opened onnxruntime sessions of an export folder's graphs, by graph name."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.manifest = read_export_manifest(self.folder)
        self._sessions: dict[str, Any] = {}

    def run(self, name: str, x: np.ndarray) -> np.ndarray:
        """Graph ``name`` on ``x`` (N, ...) float32 -> its output (N, ...)."""
        if name not in self._sessions:
            graph = self.manifest["graphs"].get(name)
            if graph is None or "onnx" not in graph["files"]:
                raise CheckpointError(f"{self.folder}: no ONNX graph {name!r} in the export")
            self._sessions[name] = _session(file_in_folder(self.folder, graph["files"]["onnx"], manifest=MANIFEST))
        return self._sessions[name].run(None, {self.manifest["input"]: np.ascontiguousarray(x, np.float32)})[0]


class OnnxTreeRunner(OnnxGraphs):
    """Hard single-path inference of an exported tree: ``predict`` gives logits (N, K) and leaf ids (N,)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        super().__init__(folder)
        if self.manifest.get("kind") != "tree":
            raise CheckpointError(f"{self.folder}: the export holds a plain model, not a tree")
        self.depth = int(self.manifest["depth"])

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inputs (N, ...) float32 -> logits (N, K) and leaf ids (N,), routed by the package's one walk."""

        def run(key: str, h: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(self.run(key, h.numpy()))

        logits, leaf_ids = walk_hard(torch.from_numpy(self.run("backbone", x)), self.depth, run)
        return logits.numpy(), leaf_ids.numpy()
