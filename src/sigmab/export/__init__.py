"""Deployment: standalone graphs of a tree's units and paths (torch.export, ONNX) and their runner."""

from sigmab.export.graphs import (
    ConditionalTree,
    ExportedGraph,
    export_any,
    export_model,
    export_program,
    export_tree,
    onnx_available,
    path_module,
    tree_units,
)
from sigmab.export.onnx_runner import OnnxGraphs, OnnxTreeRunner, read_export_manifest

__all__ = [
    "ConditionalTree",
    "ExportedGraph",
    "OnnxGraphs",
    "OnnxTreeRunner",
    "export_any",
    "export_model",
    "export_program",
    "export_tree",
    "onnx_available",
    "path_module",
    "read_export_manifest",
    "tree_units",
]
