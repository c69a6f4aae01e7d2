"""Edge weight-traffic model on the CIFAR-10 ResNet-56 results: dense, static FPGM at -66% and the
SigmaB preset tree, on the packaged device profiles and over a sweep of on-chip weight memory.

Needs the run folders of ``benchmarks.cifar`` (``r56-d2-w50-25-kd-6ep`` of resnet56.yaml and
``r56-fpgm-66`` of resnet56_baselines.yaml, seed 0) and ../shared. The tree's routes on the 10,000
test images are computed here (``sigmab eval --save-routes`` does the same).

    python -m benchmarks.edge       # writes benchmarks/results/edge_resnet56.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.cifar import add_resnet56_run_args
from benchmarks.common import ROOT, write_result
from sigmab.edge import load_device, model_workload, packaged_devices, tree_workload
from sigmab.edge.study import format_table, run_study, sram_sweep
from sigmab.folders import load_model_or_folder
from sigmab.tree.report import evaluate_tree_folder
from sigmab.tree.routes import load_routes

ORDERS = ("shuffled", "runs:8", "runs:64")
POLICIES = ("hybrid", "lru")
SWEEP_DEVICE = "ethos-u55-mcu"
SWEEP_KIB = (32, 64, 128, 256, 384, 512, 768, 1024, 1536, 2048, 4096)


def _shown(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it."""
    path = path.resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_resnet56_run_args(parser)
    args = parser.parse_args()

    routes_file = args.tree.parent / "test-routes.npz"
    report = evaluate_tree_folder(args.tree, data_root=str(args.data), with_dense=False, routes=routes_file)
    routes = load_routes(routes_file)
    workloads = []
    for name, run, checkpoint in (("dense", None, args.checkpoint), ("fpgm-66%", args.pruned, None),
                                  ("sigmab", args.tree, None)):
        kind, model, meta = load_model_or_folder(run, checkpoint, arch="resnet56" if checkpoint else None)
        shape = (meta.in_channels, *meta.input_size)
        workloads.append(tree_workload(model, shape, name=name) if kind == "tree"
                         else model_workload(model, shape, name=name))
    devices = list(packaged_devices().values())
    results = run_study(workloads, routes, devices, ORDERS, policies=POLICIES)
    print(format_table(results))
    base = load_device(SWEEP_DEVICE)
    sweep = {precision: sram_sweep(workloads, routes, base.with_changes(precision=precision),
                                   [kib * 1024 for kib in SWEEP_KIB], ORDERS, policies=POLICIES)
             for precision in ("int8", "fp32")}
    write_result("edge_resnet56", {
        "benchmark": "edge", "model": "resnet56", "tree": _shown(args.tree), "pruned": _shown(args.pruned),
        "policies": list(POLICIES),
        "tree_top1": report["top1"], "leaf_share": [leaf["share"] for leaf in report["leaves"]],
        "n_inputs": len(routes.labels), "orders": list(ORDERS),
        "devices": {d.name: {"description": d.description, "weight_sram_bytes": d.weight_sram_bytes,
                             "offchip_bytes_per_s": d.offchip_bytes_per_s, "macs_per_s": d.macs_per_s,
                             "precision": d.precision, "sources": list(d.sources)} for d in devices},
        "workloads": {w.name: {"stored_params": w.stored_params,
                               "path_params": {leaf: w.path_params(leaf) for leaf in w.paths}} for w in workloads},
        "results": [r.to_json() for r in results],
        "sweep_device": SWEEP_DEVICE, "sweep": {p: [r.to_json() for r in rows] for p, rows in sweep.items()},
    })


if __name__ == "__main__":
    main()
