"""The ``sigmab`` command line: ``demo``, ``train``, ``convert``, ``finetune``, ``fit-routers``, ``prune``, ``nested``,
``dispatch``, ``eval``, ``export``, ``package``, ``edge-sim``, ``models``, ``presets``.

User errors (bad input, missing files, misfit checkpoints) print one ``sigmab: error: ...``
line and exit with status 2, before any work starts where they can be detected up front.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

from sigmab import __version__
from sigmab.cli_baselines import add_dispatch, add_nested
from sigmab.cli_deploy import add_edge_sim, add_export, add_package
from sigmab.config import add_config_flags, command_config, list_presets, read_preset
from sigmab.data import load_split
from sigmab.demo import run_demo
from sigmab.errors import ConfigError, SigmabError, TrainingError
from sigmab.eval import evaluate, profile_model
from sigmab.export.graphs import MANIFEST as EXPORT_MANIFEST
from sigmab.inputs import check_classes, load_dense_for
from sigmab.models import list_models
from sigmab.models.checkpoint import load_checkpoint, read_folder_spec
from sigmab.nested.training import evaluate_nested_folder, format_nested_report
from sigmab.prune import PruneConfig
from sigmab.prune.finetune import PruneFinetuneConfig, finetune_pruned
from sigmab.prune.pipeline import evaluate_pruned_folder, format_pruned_report, prune_checkpoint
from sigmab.prune.spec import FINETUNED_WEIGHTS as PRUNE_FINETUNED
from sigmab.prune.spec import PRUNED_SPEC, read_pruned_spec
from sigmab.train import TrainConfig, train
from sigmab.train.distributed import barrier, init_distributed, resolve_device
from sigmab.tree.convert import ConvertConfig
from sigmab.tree.finetune import FINETUNED_WEIGHTS, FinetuneConfig, finetune
from sigmab.tree.pipeline import convert_checkpoint, convert_pruned_folder
from sigmab.tree.report import evaluate_tree_folder, format_convert_report, format_tree_report
from sigmab.tree.router_pipeline import REPORT_FILE as ROUTER_FIT_REPORT
from sigmab.tree.router_pipeline import RouterFitConfig, fit_routers_folder
from sigmab.tree.spec import read_spec
from sigmab.utils.io import check_output_file
from sigmab.utils.lock import folder_lock
from sigmab.utils.manifest import folder_kind

DEMO_RUN_DIR = Path("runs/demo")
DESCRIPTION = ("Rebuild a pretrained dense network as a SigmaB-Net (a shared backbone, binary routers and "
               "channel-sliced leaves; each input runs one root-to-leaf path) and measure it beside static "
               "pruning, nested sparse networks and an input dispatcher. `sigmab demo` runs the whole pipeline on "
               "bundled data; `sigmab COMMAND --help` shows each command's options and defaults.")


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a dense model from scratch",
                       description="Dense training. Defaults < --config YAML < flags; the resolved config is "
                                   "saved in the run folder.")
    p.add_argument("--config", help="YAML file (or packaged config name, e.g. 'demo') with option defaults")
    p.add_argument("--out", required=True, type=Path, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_config_flags(p, TrainConfig)
    p.set_defaults(func=_cmd_train, writes="out")


def _cmd_train(args: argparse.Namespace) -> int:
    cfg = command_config(TrainConfig, args, run_config=args.out / "config.yaml")
    result = train(cfg, args.out, resume=args.resume, progress=not args.no_progress)
    if result.final is not None:  # rank 0 (or a single process) reports
        print(f"{cfg.arch} on {cfg.dataset}: {result.eval_split} top-1 {result.final.top1:.2f}% | "
              f"params {result.params:,} | MACs {result.macs:,} | run folder {result.run_dir}")
    return 0


def _add_eval(sub: argparse._SubParsersAction) -> None:
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


def _add_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert a pretrained dense model into a SigmaB tree",
                       description="Calibrate, cluster (spherical k-means), initialise routers and slice per-branch "
                                   "channels. With --from-pruned, split a `sigmab prune` folder instead: every "
                                   "path starts as that prune (its channels and weights; width settings are "
                                   "ignored). Defaults < --preset < --config YAML < flags.")
    start = p.add_mutually_exclusive_group(required=True)
    start.add_argument("--checkpoint", type=Path, help="dense weights")
    start.add_argument("--from-pruned", type=Path, metavar="FOLDER",
                       help="a pruned folder (`sigmab prune`): the tree's backbone and every path start as it")
    p.add_argument("--arch", help="architecture, for checkpoints without sigmab metadata")
    p.add_argument("--dataset", help="dataset the calibration images come from (train split); required with "
                                     "--checkpoint, read from the prune with --from-pruned")
    p.add_argument("--data-root", help="dataset location")
    p.add_argument("--out", required=True, type=Path, help="tree folder to create")
    _add_preset_flag(p)
    p.add_argument("--config", help="YAML file with conversion options")
    p.add_argument("--no-progress", action="store_true")
    add_config_flags(p, ConvertConfig)
    p.set_defaults(func=_cmd_convert, writes="out")


def _add_preset_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", help="packaged settings for a model and dataset (`sigmab presets` lists them)")


def _check_preset_model(preset: str, checkpoint: Path, arch: str | None) -> None:
    expected = read_preset(preset).get("model")
    found = arch if arch is not None else getattr(load_checkpoint(checkpoint).meta, "arch", None)
    if expected and found and found != expected:
        raise ConfigError(f"preset {preset} is for {expected}, but {checkpoint} is a {found}")


def _cmd_convert(args: argparse.Namespace) -> int:
    cfg = command_config(ConvertConfig, args, step="convert")
    if args.from_pruned is not None:
        given = [flag for flag, value in (("--dataset", args.dataset), ("--data-root", args.data_root),
                                          ("--arch", args.arch), ("--preset", args.preset)) if value]
        if given:
            raise ConfigError(f"{', '.join(given)} cannot be used with --from-pruned: the prune records its model "
                              "and data")
        conversion, report = convert_pruned_folder(args.from_pruned, out=args.out, cfg=cfg,
                                                   progress=not args.no_progress)
        print(format_convert_report(report, conversion.tree.leaves))
        print(f"tree folder: {args.out}; every path is the prune of {args.from_pruned} until fine-tuned")
        print(f"next: `sigmab finetune {args.out} --soft-epochs 0 --hard-epochs N` trains each leaf on its own "
              "routed inputs")
        return 0
    if args.dataset is None:
        raise ConfigError("convert --checkpoint needs --dataset (the calibration images' dataset)")
    if args.preset:
        _check_preset_model(args.preset, args.checkpoint, args.arch)
    conversion, report = convert_checkpoint(args.checkpoint, arch=args.arch, dataset=args.dataset,
                                            data_root=args.data_root, out=args.out, cfg=cfg,
                                            progress=not args.no_progress)
    print(format_convert_report(report, conversion.tree.leaves))
    print(f"tree folder: {args.out} (tree.json, tree.safetensors, report.json)")
    print(f"next: `sigmab finetune {args.out}`. Slicing alone leaves the leaves near chance (a width-0.5 tree "
          f"scores about 15-30% before fine-tuning); its Top-1 means something after the fine-tune.")
    return 0


def _add_finetune(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="soft-routing fine-tuning of a converted tree, then a hard-routing phase",
                       description="Fine-tune RUN in place (RUN/finetune/, RUN/finetuned.safetensors). Runs as one "
                                   "process or under torchrun (DDP). Defaults < --preset < --config YAML < flags.")
    p.add_argument("run", type=Path, help="tree folder written by `sigmab convert`")
    _add_preset_flag(p)
    p.add_argument("--config", help="YAML file with fine-tuning options")
    p.add_argument("--resume", action="store_true", help="continue from RUN/finetune/last.pt")
    p.add_argument("--no-progress", action="store_true")
    add_config_flags(p, FinetuneConfig)
    p.set_defaults(func=_cmd_finetune, writes="run")


def _cmd_finetune(args: argparse.Namespace) -> int:
    cfg = command_config(FinetuneConfig, args, step="finetune", run_config=args.run / "finetune" / "config.yaml")
    read_spec(args.run)  # a bad folder fails before the process group starts
    _, result = finetune(args.run, cfg, resume=args.resume, progress=not args.no_progress)
    if result is not None:
        print(f"fine-tuned: hard-routed top-1 {result.top1:.2f}% | leaf shares "
              f"{', '.join(f'{float(s):.3f}' for s in result.leaf_share)} | weights {args.run / FINETUNED_WEIGHTS}")
    return 0


def _add_fit_routers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit-routers", help="train a tree's routers on best-leaf or class-group targets (new folder)",
                       description="Train new routers for the tree in RUN (its fine-tuned weights when present) and "
                                   "write the tree to --out; RUN is not changed. With --targets best-leaf this is "
                                   "the E-step of hard EM: follow it with `sigmab finetune OUT --soft-epochs 0 "
                                   "--hard-epochs N` and repeat. Defaults < --config YAML < flags.")
    p.add_argument("run", type=Path, help="tree folder (`sigmab convert`, fine-tuned or not)")
    p.add_argument("--out", required=True, type=Path, help="tree folder to create")
    p.add_argument("--config", help="YAML file with router-fitting options")
    p.add_argument("--no-progress", action="store_true")
    add_config_flags(p, RouterFitConfig)
    p.set_defaults(func=_cmd_fit_routers, writes="out")


def _cmd_fit_routers(args: argparse.Namespace) -> int:
    cfg = command_config(RouterFitConfig, args)
    read_spec(args.run)  # a bad folder fails before any work
    report = fit_routers_folder(args.run, out=args.out, cfg=cfg, progress=not args.no_progress)
    before, after = report["fit_on_train"]["before"], report["fit_on_train"]["after"]
    print(f"routers ({cfg.kind}, {cfg.targets} targets) on the training images: routed top-1 "
          f"{before['routed_top1']:.2f}% -> {after['routed_top1']:.2f}%, best-leaf agreement "
          f"{before['best_leaf_agreement']:.1f}% -> {after['best_leaf_agreement']:.1f}%, leaf shares "
          + " / ".join(f"{s:.2f}" for s in after["leaf_shares"]))
    if "groups" in report:
        depth = max(map(len, report["groups"]))
        leaves = {bits: classes for bits, classes in report["groups"].items() if len(bits) == depth}
        print("class groups: " + "; ".join(f"n{bits}: {classes}" for bits, classes in sorted(leaves.items()))
              + f" | routers' group accuracy (held out) {report['group_accuracy']['val']:.1f}%, the tree's own "
              f"predictions {report['predicted_group_accuracy_val']:.1f}%")
    print(f"tree folder: {args.out} ({ROUTER_FIT_REPORT}). next: `sigmab eval {args.out}`, or `sigmab finetune "
          f"{args.out} --soft-epochs 0 --hard-epochs N` to train the leaves on their new inputs")
    return 0


def _add_prune(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prune", help="static structured pruning (L1, FPGM, HRank), then fine-tuning",
                       description="Score channel groups with one criterion, slice the dense model physically and "
                                   "fine-tune it (same recipe as `sigmab finetune`). Defaults < --config YAML < flags.")
    p.add_argument("--checkpoint", type=Path, help="dense weights (not needed with --resume)")
    p.add_argument("--arch", help="architecture, for checkpoints without sigmab metadata")
    p.add_argument("--out", required=True, type=Path, help="pruned-model folder to create")
    p.add_argument("--config", help="YAML file with pruning and fine-tuning options")
    p.add_argument("--resume", action="store_true", help="continue the fine-tuning in OUT")
    p.add_argument("--no-progress", action="store_true")
    add_config_flags(p, PruneConfig)
    add_config_flags(p, PruneFinetuneConfig)
    p.set_defaults(func=_cmd_prune, writes="out")


def _cmd_prune(args: argparse.Namespace) -> int:
    owners = (PruneConfig, PruneFinetuneConfig)  # one --config YAML holds the options of both steps
    # A prune killed, or diverged, before its first fine-tuning epoch ended has nothing to resume: --resume
    # fine-tunes it afresh, with the saved settings as the base and new flags allowed (a lower --lr).
    started = (args.out / "finetune" / "last.pt").is_file()
    ft_cfg = command_config(PruneFinetuneConfig, args, run_config=args.out / "finetune" / "config.yaml",
                            owners=owners, locked=started)
    if args.resume:
        read_pruned_spec(args.out)  # a bad folder fails before any work
    else:
        if args.checkpoint is None:
            raise ConfigError("--checkpoint is required (unless --resume)")
        if ft_cfg.dataset is None:
            raise ConfigError("--dataset is required")
        cfg = command_config(PruneConfig, args, owners=owners)
        if (args.out / PRUNED_SPEC).exists():
            raise ConfigError(f"{args.out} already holds a pruned model; choose another --out (or --resume)")
        if ft_cfg.epochs > 0 and ft_cfg.distill_weight > 0 and ft_cfg.teacher is not None:
            load_checkpoint(ft_cfg.teacher)  # a bad --teacher fails before the prune writes anything
    # Under torchrun, rank 0 alone prunes; every rank fine-tunes its shard.
    info = init_distributed(resolve_device(ft_cfg.device))
    if not args.resume and info.is_main:
        report = prune_checkpoint(args.checkpoint, dataset=ft_cfg.dataset, out=args.out, cfg=cfg, seed=ft_cfg.seed,
                                  arch=args.arch, data_root=ft_cfg.data_root, progress=not args.no_progress,
                                  finetune_config=ft_cfg if ft_cfg.epochs > 0 else None)
        print(f"pruned ({cfg.criterion}, {cfg.scope}): params {report['params']:,} of {report['dense_params']:,} "
              f"({100 * report['params_reduction']:.1f}% fewer), uniform keep ratio {report['uniform_keep']:.3f}")
    barrier(info)
    if ft_cfg.epochs > 0:
        try:
            _, result = finetune_pruned(args.out, ft_cfg, resume=args.resume and started,
                                        progress=not args.no_progress, dist_info=info)
        except TrainingError as exc:
            if (args.out / "finetune" / "last.pt").is_file():
                raise
            raise TrainingError(f"{exc.what}; no fine-tuning epoch finished, so `sigmab prune --out {args.out} "
                                "--resume` with new settings (e.g. a lower --lr) fine-tunes the prune afresh",
                                what=exc.what) from None
        if result is not None:
            print(f"fine-tuned: top-1 {result.top1:.2f}% | weights {args.out / PRUNE_FINETUNED}")
    print(f"pruned-model folder: {args.out} (evaluate with `sigmab eval {args.out}`)")
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
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


def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the registered architectures")
    p.set_defaults(func=lambda args: print("\n".join(list_models())) or 0)


def _add_presets(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list the packaged conversion + fine-tuning presets")
    p.set_defaults(func=lambda args: print("\n".join(f"{name}: {text}" for name, text in list_presets().items())) or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sigmab", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"sigmab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_demo, _add_train, _add_convert, _add_finetune, _add_fit_routers, _add_prune, add_nested,
                add_dispatch, _add_eval, add_export, add_package, add_edge_sim, _add_models, _add_presets):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Every command that writes a run folder holds that folder's lock (its flag is named by `writes`).
    written = getattr(args, getattr(args, "writes", ""), None)
    try:
        with folder_lock(written) if written is not None else nullcontext():
            return int(args.func(args))
    except SigmabError as exc:
        print(f"sigmab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sigmab: interrupted (a training run continues with --resume)", file=sys.stderr)
        return 130


