"""Evaluate an export folder (fp32 or int8) in onnxruntime, beside the PyTorch model it was exported from.

A tree runs as :class:`OnnxTreeRunner` does (backbone, then router argmax and node, level by level); a plain
model runs its one graph. Beside Top-1 the report gives, against the fp32 PyTorch model the export records as
its source: the share of inputs that reach the same leaf (route agreement) and that get the same prediction,
and the bytes of the graphs' weights as stored in the files.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sigmab.data import load_split
from sigmab.errors import ConfigError
from sigmab.export.graphs import MANIFEST
from sigmab.export.onnx_runner import OnnxGraphs, OnnxTreeRunner
from sigmab.export.quantize import weight_bytes
from sigmab.models.checkpoint import file_in_folder
from sigmab.routing import path_keys
from sigmab.utils.progress import progress_bar


def graph_bytes(graphs: OnnxGraphs) -> dict[str, int]:
    """Weight bytes of every ONNX graph of an export: recorded by the quantiser, else read from the file."""
    out = {}
    for name, graph in graphs.manifest["graphs"].items():
        if "onnx" in graph["files"]:
            path = file_in_folder(graphs.folder, graph["files"]["onnx"], manifest=MANIFEST)
            out[name] = int(graph.get("weight_bytes") or weight_bytes(path))
    return out


def _reference(source: dict[str, Any]) -> Any:
    """The fp32 PyTorch model the export came from, or ``None`` (with a note) when it cannot be opened."""
    from sigmab.folders import open_model

    run, checkpoint = source.get("run"), source.get("checkpoint")
    where = run or checkpoint
    if not where or not Path(where).exists():
        print(f"note: the export's source model ({where or 'not recorded'}) is not readable here; no agreement "
              "with fp32 is reported", file=sys.stderr)
        return None
    return open_model(run, None if run else checkpoint, arch=source.get("arch")).model


def _classes(manifest: dict[str, Any]) -> int | None:
    """Number of classes of an export: the last output dim of its model or of a path graph (none for units only)."""
    for name, graph in manifest["graphs"].items():
        if name == "model" or name.startswith("path-"):
            return int(graph["output_shape"][-1])
    return None


def _leaf_table(leaf_ids: np.ndarray, right: np.ndarray, leaves: list[str]) -> list[dict[str, Any]]:
    rows = []
    for i, leaf in enumerate(leaves):
        mine = leaf_ids == i
        rows.append({"leaf": leaf, "share": round(float(mine.mean()), 4),
                     "top1": round(100 * float(right[mine].mean()), 4) if mine.any() else None})
    return rows


def evaluate_export_folder(folder: str | os.PathLike[str], *, dataset: str | None = None,
                           data_root: str | None = None, split: str = "test", batch_size: int = 256,
                           reference: bool = True, progress: bool = False) -> dict[str, Any]:
    """Top-1 of the export in ``folder`` on ``split`` (dataset and location default to the recorded ones), per-leaf
    shares and Top-1 for a tree, weight bytes; with ``reference``, the same for the fp32 PyTorch source model and
    the agreement of routes and predictions."""
    folder = Path(folder)
    kind_graphs = OnnxGraphs(folder)
    manifest = kind_graphs.manifest
    kind = manifest.get("kind")
    if kind not in ("tree", "model"):
        raise ConfigError(f"{folder}: evaluating a {kind} export is not supported (trees and plain models are)")
    graphs = OnnxTreeRunner(folder) if kind == "tree" else kind_graphs
    source = dict(manifest.get("source") or {})
    dataset = dataset or source.get("dataset")
    if dataset is None:
        raise ConfigError(f"pass --dataset ({folder} does not record one)")
    data = load_split(dataset, split, root=data_root if data_root is not None else source.get("data_root"))
    pre = manifest["preprocess"]
    classes = _classes(manifest)
    if classes is not None and classes != data.num_classes:
        raise ConfigError(f"the export has {classes} classes; {dataset} at {data.source} has {data.num_classes}")
    fp32 = _reference(source) if reference else None
    leaves, right, ref_leaves, ref_right, agree = [], [], [], [], []
    t0 = time.perf_counter()
    loader = data.loader(batch_size=batch_size, mean=pre["mean"], std=pre["std"])
    for x, y in progress_bar(loader, enabled=progress, desc="eval export", unit="batch"):
        if kind == "tree":
            logits, leaf = graphs.predict(x.numpy())
            leaves.append(leaf)
        else:
            logits = graphs.run("model", x.numpy())
        pred = logits.argmax(1)
        right.append(pred == y.numpy())
        if fp32 is not None:
            with torch.no_grad():
                if kind == "tree":
                    ref_logits, ref_leaf = fp32.forward_hard(x)
                    ref_leaves.append(ref_leaf.numpy())
                else:
                    ref_logits = fp32(x)
            ref_pred = ref_logits.argmax(1).numpy()
            ref_right.append(ref_pred == y.numpy())
            agree.append(ref_pred == pred)
    seconds = time.perf_counter() - t0
    right_all = np.concatenate(right)
    sizes = graph_bytes(kind_graphs)
    report: dict[str, Any] = {
        "export": str(folder), "kind": kind, "precision": manifest.get("precision", "fp32"), "dataset": dataset,
        "split": split, "n_samples": int(len(right_all)), "top1": round(100 * float(right_all.mean()), 4),
        "graph_bytes": sizes, "seconds": round(seconds, 3),
        "float_layers": list((manifest.get("quantization") or {}).get("keep_float") or [])}
    if kind == "tree":
        leaf_ids = np.concatenate(leaves)
        report["leaves"] = _leaf_table(leaf_ids, right_all, manifest["leaves"])
        units = [n for n in sizes if not n.startswith("path-") and n != "tree"]
        report["stored_bytes"] = sum(sizes[n] for n in units)
        report["active_bytes_mean"] = round(sum(
            row["share"] * sum(sizes[u] for u in ("backbone", *sum(path_keys(row["leaf"]), [])))
            for row in report["leaves"]), 1)
    else:
        report["stored_bytes"] = report["active_bytes_mean"] = sizes["model"]
    if fp32 is not None:
        ref_right_all = np.concatenate(ref_right)
        report["fp32"] = {"top1": round(100 * float(ref_right_all.mean()), 4),
                          "prediction_agreement": round(float(np.concatenate(agree).mean()), 6)}
        if kind == "tree":
            ref_ids = np.concatenate(ref_leaves)
            report["fp32"]["route_agreement"] = round(float((ref_ids == leaf_ids).mean()), 6)
            report["fp32"]["leaves"] = _leaf_table(ref_ids, ref_right_all, manifest["leaves"])
    return report


def format_export_report(report: dict[str, Any]) -> str:
    """The report of :func:`evaluate_export_folder` as a few lines of text."""
    lines = [f"{report['precision']} {report['kind']} export {report['export']} on {report['dataset']}/"
             f"{report['split']}: top-1 {report['top1']:.2f}% ({report['n_samples']} samples) | weights "
             f"{report['stored_bytes']:,} B stored, {report['active_bytes_mean']:,.0f} B per input | "
             f"{report['seconds']:.1f} s"]
    if report.get("float_layers"):
        lines.append(f"kept in fp32: {', '.join(report['float_layers'])} (their bytes are in the weights above)")
    fp32 = report.get("fp32")
    if fp32:
        routes = f", same leaf {100 * fp32['route_agreement']:.2f}%" if "route_agreement" in fp32 else ""
        lines.append(f"fp32 PyTorch source: top-1 {fp32['top1']:.2f}% | same prediction "
                     f"{100 * fp32['prediction_agreement']:.2f}%{routes}")
    for row in report.get("leaves", []):
        top1 = "-" if row["top1"] is None else f"{row['top1']:.2f}%"
        lines.append(f"  leaf {row['leaf']}: {100 * row['share']:.1f}% of inputs, top-1 {top1}")
    return "\n".join(lines)
