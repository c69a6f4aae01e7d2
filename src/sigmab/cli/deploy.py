"""Deployment subcommands of the CLI: export, package and edge-sim."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sigmab.errors import ConfigError
from sigmab.export.quantize import CALIBRATION_METHODS, FLOAT_LAYERS, QuantizeConfig
from sigmab.utils.io import building_folder, check_output_file


def _source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", nargs="?", type=Path,
                   help="run folder: a tree (`sigmab convert`), pruned model, nested net (one graph per level) or "
                        "`sigmab train` run")
    p.add_argument("--checkpoint", type=Path, help="a dense checkpoint instead of RUN")
    p.add_argument("--arch", help="architecture, for checkpoints without sigmab metadata (e.g. resnet56)")


def add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a tree's units and paths (or a dense/pruned model) as graphs",
                       description="torch.export programs (.pt2) and, with the [export] extra, ONNX files of "
                                   "every unit (backbone, routers, nodes) and root-to-leaf path, with export.json. "
                                   "Inputs are normalised images (mean/std in the manifest); the batch is dynamic. "
                                   "With --int8, ONNX graphs quantised to int8 (QDQ, per-channel weights) instead, "
                                   "calibrated on training images; `sigmab eval` runs either kind of export.")
    _source_args(p)
    p.add_argument("--out", type=Path, required=True, help="folder to write the graphs into")
    p.add_argument("--no-onnx", action="store_true", help="torch.export programs only")
    p.add_argument("--no-paths", action="store_true", help="trees: units only, no whole-path graphs")
    q = p.add_argument_group("int8 (post-training static quantisation with onnxruntime)")
    q.add_argument("--int8", action="store_true", help="quantise every ONNX graph to int8 (the conditional "
                   "single-graph tree is left out: onnxruntime does not quantise inside If branches)")
    q.add_argument("--calib-size", type=int, default=QuantizeConfig.calib_size,
                   help=f"training images to calibrate activations on (default {QuantizeConfig.calib_size})")
    q.add_argument("--calib-seed", type=int, default=QuantizeConfig.calib_seed, help="seed of that draw")
    q.add_argument("--calib-method", default=QuantizeConfig.method, choices=sorted(CALIBRATION_METHODS),
                   help="activation ranges: min/max of the calibration activations, a histogram percentile or entropy "
                   f"(default {QuantizeConfig.method})")
    q.add_argument("--int8-activations", default="auto", choices=("auto", "uint8", "int8"),
                   help="activation type: uint8 (U8S8, the type onnxruntime's x86 kernels fuse; 7-bit weights on CPUs "
                   "without VNNI), int8 (S8S8), or auto: uint8 on x86, int8 elsewhere (default auto)")
    q.add_argument("--int8-keep-float", nargs="+", default=[], choices=FLOAT_LAYERS, metavar="LAYER",
                   help="leave these layers in fp32 wherever a graph holds them: 'stem' (the first weight layer of "
                   "every graph that reads the input; MobileNetV2's int8 loss is mostly there), 'classifier' (the "
                   "last of every graph that writes logits); the manifest and `sigmab eval` show the bytes they cost")
    q.add_argument("--dataset", help="calibration dataset (default: the one the folder records)")
    q.add_argument("--data-root", help="its location: an .npz file or a folder (default: the recorded one)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_export, writes="out")


def _export_source(opened: Any, args: argparse.Namespace) -> dict[str, Any]:
    """What the manifest records of the exported model's origin, for `sigmab eval` to find the fp32 model."""
    return {"kind": opened.kind, "run": str(args.run.resolve()) if args.run else None,
            "checkpoint": str(args.checkpoint.resolve()) if args.checkpoint else None, "arch": args.arch,
            "dataset": args.dataset or opened.source.get("dataset"),
            "data_root": str(Path(args.data_root).resolve()) if args.data_root else opened.source.get("data_root")}


def _cmd_export(args: argparse.Namespace) -> int:
    from sigmab.export import export_any, onnx_available
    from sigmab.folders import open_model

    onnx = not args.no_onnx
    if (onnx or args.int8) and not onnx_available():
        raise ConfigError("ONNX export needs the [export] extra (pip install 'sigmab[export]'); or pass --no-onnx")
    if args.int8_keep_float and not args.int8:
        raise ConfigError("--int8-keep-float chooses layers of an --int8 export; add --int8")
    if args.int8 and args.no_onnx:
        raise ConfigError("--int8 quantises the ONNX graphs; it cannot go with --no-onnx")
    cfg = QuantizeConfig(calib_size=args.calib_size, calib_seed=args.calib_seed, method=args.calib_method,
                         activations=args.int8_activations, keep_float=tuple(args.int8_keep_float))
    opened = open_model(args.run, args.checkpoint, arch=args.arch)
    source = _export_source(opened, args)
    images = _calibration(source, opened.meta, cfg) if args.int8 else None  # a missing dataset fails before work
    with building_folder(args.out, what="export") as folder:  # never mixed into, or over, another folder
        if images is None:
            manifest = export_any(opened.kind, opened.model, opened.meta, folder, onnx=onnx, paths=not args.no_paths,
                                  source=source, progress=not args.no_progress)
        else:
            manifest = _export_int8(opened, folder, images, cfg, source, args)
    what = "int8 onnx" if args.int8 else "pt2 + onnx" if onnx else "pt2"
    print(f"exported {len(manifest['graphs'])} graph(s) of the {opened.kind} model to {args.out} "
          f"({what}); manifest {args.out / 'export.json'}")
    return 0


def _calibration(source: dict[str, Any], meta: Any, cfg: QuantizeConfig) -> Any:
    from sigmab.inputs import calibration_images

    if not source.get("dataset"):
        raise ConfigError("--int8 calibrates on training images: pass --dataset (the model records none)")
    return calibration_images(source["dataset"], source.get("data_root"), meta, size=cfg.calib_size,
                              seed=cfg.calib_seed).numpy()


def _export_int8(opened: Any, folder: Path, images: Any, cfg: QuantizeConfig, source: dict[str, Any],
                 args: argparse.Namespace) -> dict[str, Any]:
    """fp32 ONNX graphs into a scratch folder, then their int8 versions into ``folder``."""
    import tempfile

    from sigmab.export import export_any
    from sigmab.export.quantize import quantize_export

    with tempfile.TemporaryDirectory(prefix="sigmab-fp32-") as fp32:
        export_any(opened.kind, opened.model, opened.meta, fp32, onnx=True, paths=not args.no_paths,
                   conditional=False, margin_routers=True, source=source, progress=not args.no_progress)
        calibration = {"dataset": source["dataset"], "split": "train", "images": len(images), "seed": cfg.calib_seed}
        return quantize_export(fp32, folder, images, cfg, calibration=calibration, progress=not args.no_progress)


def add_package(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("package", help="write a tree as per-unit safetensors files for the leaf-on-demand runtime",
                       description="One safetensors file per unit (backbone, each router, each node) and "
                                   "package.json; `sigmab.runtime.LeafOnDemandRunner` loads only routed units.")
    p.add_argument("run", type=Path, help="tree folder")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=_cmd_package, writes="out")


def _cmd_package(args: argparse.Namespace) -> int:
    from sigmab.runtime import write_package
    from sigmab.tree.spec import load_tree

    tree, spec = load_tree(args.run)
    with building_folder(args.out, what="package") as folder:
        manifest = write_package(tree, spec, folder)
    for name, unit in manifest["units"].items():
        print(f"  {name:<10} {unit['kind']:<9} {unit['bytes']:>12,} bytes")
    print(f"package: {args.out} ({len(manifest['units'])} units)")
    return 0


def add_edge_sim(sub: argparse._SubParsersAction) -> None:
    from sigmab.edge import ORDER_HELP

    p = sub.add_parser("edge-sim", help="off-chip weight traffic and roofline latency on edge accelerators",
                       description="Simulate dense, pruned and SigmaB models on device profiles: weights used by "
                                   "every input are placed on chip while they fit, the rest of the weight memory "
                                   "caches nodes (LRU); anything else streams from off-chip memory per inference.")
    p.add_argument("--tree", type=Path, help="tree folder")
    p.add_argument("--routes", type=Path, help="the tree's routes (`sigmab eval TREE --save-routes FILE`)")
    p.add_argument("--pruned", type=Path, action="append", default=[], help="pruned-model folder (repeatable)")
    p.add_argument("--checkpoint", type=Path, help="dense checkpoint")
    p.add_argument("--arch", help="architecture of --checkpoint, if it has no sigmab metadata")
    p.add_argument("--export", type=Path, action="append", default=[],
                   help="export folder (`sigmab export`, e.g. --int8; repeatable): its weights count as the bytes its "
                        "graph files store; the model it was exported from gives the layers and MACs (a tree's "
                        "export needs --routes)")
    p.add_argument("--device", action="append", help="packaged profile name or YAML file (repeatable; "
                                                      "default: every packaged profile)")
    p.add_argument("--precision", choices=("fp32", "fp16", "int8"), help="override the devices' weight precision")
    p.add_argument("--orders", nargs="+", default=["shuffled", "runs:8", "runs:64"], help=ORDER_HELP)
    p.add_argument("--policy", nargs="+", default=["hybrid"], choices=("hybrid", "lru"),
                   help="node placement: 'hybrid' places the most used nodes, then caches the rest (LRU); "
                        "'lru' caches every node (default: hybrid; give both to compare)")
    p.add_argument("--sram-sweep", nargs="+", type=int, metavar="BYTES",
                   help="also sweep the first device's on-chip weight memory over these sizes")
    p.add_argument("--seed", type=int, default=0, help="seed of the input orders")
    p.add_argument("--out", type=Path, help="write every result as JSON here")
    p.add_argument("--plot", type=Path, help="PNG: latency per device (and the sweep beside it, as *-sweep.png)")
    p.add_argument("--force", action="store_true", help="overwrite existing --out/--plot files")
    p.set_defaults(func=_cmd_edge_sim)


def _export_origin(folder: Path) -> tuple[str, str | None, str | None, tuple[str, dict[str, int]]]:
    """An export folder as an edge-sim source: (label, the run folder or checkpoint it was exported from,
    (its precision, the weight bytes of each graph file))."""
    from sigmab.export import OnnxGraphs
    from sigmab.export.evaluate import graph_bytes

    graphs = OnnxGraphs(folder)
    source = dict(graphs.manifest.get("source") or {})
    if not (source.get("run") or source.get("checkpoint")):
        raise ConfigError(f"{folder} does not record the model it was exported from (export it again)")
    precision = graphs.manifest.get("precision", "fp32")
    return f"{precision}-export", source.get("run"), source.get("checkpoint"), (precision, graph_bytes(graphs))


def _cmd_edge_sim(args: argparse.Namespace) -> int:
    from sigmab.edge import load_device, model_workload, packaged_devices, tree_workload, with_file_bytes
    from sigmab.edge.study import format_table, results_json, run_study, sram_sweep
    from sigmab.folders import load_model_or_folder
    from sigmab.tree.routes import load_routes
    from sigmab.utils.io import atomic_write_json

    if args.tree is not None and args.routes is None:
        raise ConfigError("--tree and --routes go together (make the routes with `sigmab eval TREE --save-routes`)")
    devices = [load_device(d) for d in args.device] if args.device else list(packaged_devices().values())
    if args.precision:
        devices = [d.with_changes(precision=args.precision) for d in devices]
    workloads, routes = [], None
    # (label, run folder, checkpoint, (precision, bytes per unit) measured from an export's files or None)
    sources = [("tree", args.tree, None, None)] if args.tree else []
    sources += [("pruned", folder, None, None) for folder in args.pruned]
    sources += [("dense", None, args.checkpoint, None)] if args.checkpoint else []
    sources += [_export_origin(folder) for folder in args.export]
    if not sources:
        raise ConfigError("nothing to simulate: give --tree/--routes, --pruned, --checkpoint or --export")
    sweep_plot = args.plot.with_name(args.plot.stem + "-sweep.png") if args.plot and args.sram_sweep else None
    for target, what in ((args.out, "results file"), (args.plot, "plot"), (sweep_plot, "sweep plot")):
        if target is not None:
            check_output_file(target, what=what, force=args.force)
    for label, run, checkpoint, measured in sources:
        kind, model, meta = load_model_or_folder(run, checkpoint, arch=args.arch)
        shape = (meta.in_channels, *meta.input_size)
        name = f"{label}:{Path(run).name if run else Path(checkpoint).stem}"
        workload = tree_workload(model, shape, name=name) if kind == "tree" else model_workload(model, shape, name=name)
        workloads.append(workload if measured is None else with_file_bytes(workload, measured[1],
                                                                           precision=measured[0]))
        if kind == "tree":
            if args.routes is None:
                raise ConfigError(f"{run} is a tree: pass --routes (`sigmab eval {run} --save-routes FILE`)")
            routes = load_routes(args.routes)
            if routes.leaves != model.leaves:
                raise ConfigError(f"{args.routes} was saved for leaves {routes.leaves}, not {model.leaves}")
    results = run_study(workloads, routes, devices, args.orders, seed=args.seed, policies=args.policy)
    print(format_table(results))
    sweep = sram_sweep(workloads, routes, devices[0], args.sram_sweep, args.orders, seed=args.seed,
                       policies=args.policy) \
        if args.sram_sweep else []
    if args.out:
        atomic_write_json(args.out, {**results_json(results), "sweep": [r.to_json() for r in sweep],
                                     "devices": {d.name: {**d.__dict__, "sources": list(d.sources)} for d in devices}})
        print(f"results: {args.out}")
    if args.plot:
        from sigmab.plots.edge_plot import plot_devices, plot_sram_sweep

        plot_devices(results, args.plot, title="edge weight-traffic model")
        if sweep:
            plot_sram_sweep(sweep, sweep_plot,
                            title=f"{devices[0].name}, weight memory swept")
        print(f"plot: {args.plot}")
    return 0

