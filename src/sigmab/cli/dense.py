"""Subcommands of the dense model and of every run folder: ``train``, ``eval``, ``demo``, ``models``, ``presets``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from sigmab.cli.common import run_command
from sigmab.config import command_config, list_presets
from sigmab.data import load_split
from sigmab.demo import run_demo
from sigmab.errors import ConfigError
from sigmab.eval import evaluate, profile_model
from sigmab.export.graphs import MANIFEST as EXPORT_MANIFEST
from sigmab.inputs import check_classes, load_dense_for
from sigmab.models import list_models
from sigmab.models.checkpoint import read_folder_spec
from sigmab.nested.training import evaluate_nested_folder, format_nested_report
from sigmab.prune.pipeline import evaluate_pruned_folder, format_pruned_report
from sigmab.train import TrainConfig, train
from sigmab.tree.report import evaluate_tree_folder, format_tree_report
from sigmab.utils.io import check_output_file
from sigmab.utils.manifest import folder_kind

DEMO_RUN_DIR = Path("runs/demo")


def add_train(sub: argparse._SubParsersAction) -> None:
    run_command(sub, "train", func=_cmd_train, help="train a dense model from scratch",
                description="Dense training. Defaults < --config YAML < flags; the resolved config is saved in the "
                            "run folder.",
                folder="run folder", config="option defaults (or a packaged config name, e.g. 'demo')",
                resume="continue the run in --out from its last checkpoint", options={"training": TrainConfig})


def _cmd_train(args: argparse.Namespace) -> int:
    cfg = command_config(TrainConfig, args, run_config=args.out / "config.yaml")
    result = train(cfg, args.out, resume=args.resume, progress=not args.no_progress)
    if result.final is not None:  # rank 0 (or a single process) reports
        print(f"{cfg.arch} on {cfg.dataset}: {result.eval_split} top-1 {result.final.top1:.2f}% | "
              f"params {result.params:,} | MACs {result.macs:,} | run folder {result.run_dir}")
    return 0


def add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="top-1, parameters and MACs of a dense checkpoint or of any run folder",
                       description="Evaluate a dense checkpoint (--checkpoint), or a run folder (RUN): a SigmaB tree, "
                                   "a pruned model, a nested sparse net (every route) or a `sigmab train` run.")
    p.add_argument("run", nargs="?", type=Path,
                   help="run folder: a tree (`sigmab convert`), pruned model, nested net or `sigmab train` run")
    p.add_argument("--checkpoint", type=Path, help="dense weights: .safetensors, .pt or .th")
    p.add_argument("--arch", help="architecture, for checkpoints without sigmab metadata (e.g. resnet56)")
    p.add_argument("--dataset", help="dataset name (a tree folder records its own)")
    p.add_argument("--data-root", help="dataset location: an .npz file or a folder")
    p.add_argument("--split", default="test", choices=("train", "test"), help="which split (default: test)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--per-module", action="store_true", help="also print the per-module parameter/MAC table")
    p.add_argument("--save-routes", type=Path, metavar="FILE",
                   help="tree folders: save each input's leaf and label (.npz), the stream `sigmab edge-sim` reads")
    p.add_argument("--force", action="store_true", help="overwrite an existing --save-routes file")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise ConfigError("--batch-size must be >= 1")
    if (args.run is None) == (args.checkpoint is None):
        raise ConfigError("give either a run folder (RUN) or --checkpoint")
    if args.run is not None and (args.run / EXPORT_MANIFEST).is_file():
        return _eval_export(args)
    kind = folder_kind(args.run) if args.run is not None else "dense"
    if args.save_routes is not None and kind != "tree":
        raise ConfigError(f"--save-routes is for tree folders (a {kind} model has no routes)")
    if args.save_routes is not None:
        check_output_file(args.save_routes, what="routes file", force=args.force)
    if kind == "dense" and args.run is not None:  # a `sigmab train` run folder: its weights and its dataset
        args.checkpoint = args.run / "model.safetensors"
        args.dataset = args.dataset or read_folder_spec(args.run / "summary.json", what="training run").get("dataset")
    elif args.run is not None:
        return _eval_folder(args, kind)
    if args.dataset is None:
        raise ConfigError("--dataset is required with --checkpoint")
    model, _ = load_dense_for(args.checkpoint, dataset=args.dataset, arch=args.arch)
    meta = model.meta
    data = load_split(args.dataset, args.split, root=args.data_root)
    check_classes(meta, data, args.dataset)
    profile = profile_model(model, data.input_shape)
    loader = data.loader(batch_size=args.batch_size, mean=meta.mean, std=meta.std)
    t0 = time.perf_counter()
    result = evaluate(model, loader, progress=not (args.no_progress or args.json), channels_last=True)
    seconds = time.perf_counter() - t0
    report = {"top1": round(result.top1, 4), "loss": round(result.loss, 6), "params": profile.params,
              "macs": profile.macs, "n_samples": result.n_samples, "arch": meta.arch, "dataset": args.dataset,
              "split": args.split, "checkpoint": str(args.checkpoint), "seconds": round(seconds, 3)}
    if args.json:
        print(json.dumps(report))
        return 0
    if args.per_module:
        print(profile.table())
    print(f"{meta.arch} on {args.dataset}/{args.split}: top-1 {result.top1:.2f}% ({result.n_samples} samples) | "
          f"params {profile.params:,} | MACs {profile.macs:,} | {seconds:.1f} s")
    return 0


def _eval_export(args: argparse.Namespace) -> int:
    """An export folder (`sigmab export`, fp32 or --int8) in onnxruntime, beside its fp32 PyTorch source."""
    from sigmab.export.evaluate import evaluate_export_folder, format_export_report

    if args.save_routes is not None:
        raise ConfigError("--save-routes is for tree run folders, not exports")
    report = evaluate_export_folder(args.run, dataset=args.dataset, data_root=args.data_root, split=args.split,
                                    batch_size=args.batch_size, progress=not (args.no_progress or args.json))
    print(json.dumps(report) if args.json else format_export_report(report))
    return 0


def _eval_folder(args: argparse.Namespace, kind: str) -> int:
    data = dict(dataset=args.dataset, data_root=args.data_root, split=args.split, batch_size=args.batch_size,
                progress=not (args.no_progress or args.json))
    if kind == "pruned":
        report = evaluate_pruned_folder(args.run, **data)
        print(json.dumps(report) if args.json else format_pruned_report(report))
        return 0
    if kind == "nested":
        report = evaluate_nested_folder(args.run, **data)
        print(json.dumps(report) if args.json else format_nested_report(report, args.run))
        return 0
    report = evaluate_tree_folder(args.run, routes=args.save_routes, **data)
    if args.json:
        print(json.dumps(report))
        return 0
    print(format_tree_report(report))
    return 0


def add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the whole pipeline on an embedded default: no data or weights needed",
                       description="Train a dense ResNet-8 on scikit-learn's digits, convert it to a SigmaB tree, "
                                   "fine-tune, evaluate both and draw the tree.")
    p.add_argument("--out", type=Path, default=DEMO_RUN_DIR, help=f"run folder (default: {DEMO_RUN_DIR})")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_demo, writes="out")


def _cmd_demo(args: argparse.Namespace) -> int:
    out = args.out
    if out.exists() and any(out.iterdir()):  # the demo always starts afresh; keep the old run beside it
        out = out.with_name(f"{out.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    run_demo(out, progress=not args.no_progress)
    return 0


ZOO_NOTE = ("and any torchvision:NAME or timm:NAME classification model (pip install 'sigmab[zoo]'; weights from "
            "--checkpoint, never downloaded)")


def add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the registered architectures")
    p.set_defaults(func=_print_models)


def _print_models(args: argparse.Namespace) -> int:
    print("\n".join(list_models()))
    print(ZOO_NOTE, file=sys.stderr)  # stdout stays one name per line, for scripts
    return 0


def add_presets(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list the packaged conversion + fine-tuning presets")
    p.set_defaults(func=lambda args: print("\n".join(f"{name}: {text}" for name, text in list_presets().items())) or 0)
