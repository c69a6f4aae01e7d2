"""Evaluation reports of tree folders: hard-routed top-1, routing, costs, and the dense model beside them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sigmab.errors import ConfigError
from sigmab.eval import ModelReport, evaluate, profile_model
from sigmab.inputs import folder_eval_data
from sigmab.models import build_from_meta, load_model
from sigmab.models.checkpoint import recorded_source
from sigmab.tree.diagnostics import diagnose_routing
from sigmab.tree.evaluate import evaluate_tree
from sigmab.tree.metrics import cost_summary
from sigmab.tree.routes import Routes, save_routes
from sigmab.tree.spec import load_tree


def evaluate_tree_folder(run: str | Path, *, dataset: str | None = None, data_root: str | None = None,
                         split: str = "test", batch_size: int = 256, with_dense: bool = True,
                         val_fraction: float = 0.0, seed: int = 0, diagnose: bool = False,
                         routes: str | Path | None = None, progress: bool = False) -> dict[str, Any]:
    """Evaluate the tree in ``run`` (fine-tuned weights when present) and, when its source checkpoint
    is readable, the dense model on the same data. ``split="val"`` needs the ``val_fraction`` and
    ``seed`` the held-out part was drawn with. ``diagnose`` adds ``diagnosis``, the leaf-gap and
    routing-headroom breakdown of the drop (see :mod:`sigmab.tree.diagnostics`); it needs the dense model.
    ``routes`` names a file to save every input's leaf and label in (:mod:`sigmab.tree.routes`)."""
    run = Path(run)
    tree, spec = load_tree(run)
    source = recorded_source(run, spec.convert_config.get("source"))
    meta = spec.dense_meta
    dataset, data, loader = folder_eval_data(source, meta, what="tree", dataset=dataset, data_root=data_root,
                                             split=split, val_fraction=val_fraction, seed=seed,
                                             batch_size=batch_size)
    result = evaluate_tree(tree, loader, data.num_classes, progress=progress)
    if routes is not None:
        save_routes(Routes(tree.leaves, result.leaf_ids.numpy(), data.labels.numpy()), routes)
    input_shape = data.input_shape
    costs = cost_summary(tree, input_shape, result.leaf_share)
    dense_profile = profile_model(build_from_meta(meta), input_shape)
    dense_top1, diagnosis = None, None
    checkpoint = source.get("checkpoint")
    if (with_dense or diagnose) and checkpoint and Path(checkpoint).is_file():
        dense = load_model(checkpoint, arch=source.get("arch"))
        if diagnose:  # the diagnosis runs the dense model over the same data: its top-1 comes with it
            diagnosis = diagnose_routing(tree, dense, loader, progress=progress).to_dict()
            dense_top1 = diagnosis["dense_top1"]
        else:
            dense_top1 = evaluate(dense, loader, progress=progress).top1
    elif diagnose:
        raise ConfigError(f"diagnosing {run} needs its dense checkpoint, {checkpoint!r}, which is not readable")
    weights = "finetuned.safetensors" if (run / "finetuned.safetensors").is_file() else "tree.safetensors"
    leaves = [{"leaf": leaf, "share": float(share), "top1": top1, "params": path["params"], "macs": path["macs"],
               "class_counts": classes.tolist()}
              for leaf, share, top1, path, classes in zip(tree.leaves, result.leaf_share, result.leaf_top1,
                                                          costs["paths"], result.leaf_classes)]
    report = ModelReport(
        method="sigmab", dataset=dataset, split=split, n_samples=result.n_samples, top1=round(result.top1, 4),
        dense_top1=None if dense_top1 is None else round(dense_top1, 4),
        **{k: costs[k] for k in ("active_params_mean", "active_params_min", "active_params_max", "active_macs_mean",
                                 "stored_params", "weight_bytes_per_inference", "weight_precision")},
        dense_params=dense_profile.params, dense_macs=dense_profile.macs, leaves=leaves, diagnosis=diagnosis)
    return {"run": str(run), "weights": weights, **report.to_dict(), "params": costs["active_params_mean"],
            "macs": costs["active_macs_mean"], "split_points": spec.split_points, "depth": spec.depth}


def format_tree_report(r: dict[str, Any]) -> str:
    dense_top1 = "n/a" if r["dense_top1"] is None else f"{r['dense_top1']:.2f}%"
    lines = [
        f"{'':<24}{'dense':>14}{'SigmaB (hard)':>16}",
        f"{'top-1':<24}{dense_top1:>14}{r['top1']:>15.2f}%",
        f"{'active params (mean)':<24}{r['dense_params']:>14,}{r['active_params_mean']:>16,.0f}",
        f"{'active params (max)':<24}{r['dense_params']:>14,}{r['active_params_max']:>16,}",
        f"{'stored params':<24}{r['dense_params']:>14,}{r['stored_params']:>16,}",
        f"{'active MACs (mean)':<24}{r['dense_macs']:>14,}{r['active_macs_mean']:>16,.0f}",
        f"{'weight bytes / input':<24}{4 * r['dense_params']:>14,}{r['weight_bytes_per_inference']:>16,.0f}",
        f"active-parameter reduction: {100 * r['active_params_reduction']:.1f}% "
        f"({r['n_samples']} {r['split']} samples, {r['weights']})",
        "", f"{'leaf':<8}{'share':>8}{'top-1':>9}{'params':>10}",
    ]
    for leaf in r["leaves"]:
        top1 = "-" if leaf["top1"] is None else f"{leaf['top1']:.1f}%"
        lines.append(f"{leaf['leaf']:<8}{100 * leaf['share']:>7.1f}%{top1:>9}{leaf['params']:>10,}")
    return "\n".join(lines)


def format_convert_report(r: dict[str, Any], leaves: list[str]) -> str:
    lines = [f"dense params {r['dense_params']:,} | stored {r['stored_params']:,} "
             f"({100 * r['stored_fraction_of_dense']:.0f}% of dense) | active per input: mean "
             f"{r['active_params_mean']:,.0f} ({100 * r['active_fraction_of_dense']:.1f}% of dense), "
             f"min {r['active_params_min']:,}, max {r['active_params_max']:,}",
             f"split points {', '.join(r['split_points'])} | converted in {r['convert_seconds']:.1f} s"]
    for leaf, path, share in zip(leaves, r["paths"], r["calib_leaf_share"]):
        lines.append(f"  {leaf}: {path['params']:,} params, {path['macs']:,} MACs, {100 * share:.1f}% of calibration")
    return "\n".join(lines)
