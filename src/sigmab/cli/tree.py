"""Subcommands that build and train SigmaB trees: ``convert``, ``finetune``, ``fit-routers``."""

from __future__ import annotations

import argparse
from pathlib import Path

from sigmab.cli.common import run_command
from sigmab.config import command_config, read_preset
from sigmab.errors import ConfigError
from sigmab.models.checkpoint import load_checkpoint
from sigmab.tree.convert import ConvertConfig
from sigmab.tree.finetune import FINETUNED_WEIGHTS, FinetuneConfig, finetune
from sigmab.tree.pipeline import convert_checkpoint, convert_pruned_folder
from sigmab.tree.report import format_convert_report
from sigmab.tree.router_pipeline import REPORT_FILE as ROUTER_FIT_REPORT
from sigmab.tree.router_pipeline import RouterFitConfig, fit_routers_folder
from sigmab.tree.spec import read_spec


def add_convert(sub: argparse._SubParsersAction) -> None:
    p = run_command(sub, "convert", func=_cmd_convert, help="convert a pretrained dense model into a SigmaB tree",
                    description="Calibrate, cluster (spherical k-means), initialise routers and slice per-branch "
                                "channels. With --from-pruned, split a `sigmab prune` folder instead: every path "
                                "starts as that prune (its channels and weights; width settings are ignored). "
                                "Defaults < --preset < --config YAML < flags.",
                    folder="tree folder to create", preset=True, config="conversion options",
                    options={"conversion": ConvertConfig})
    start = p.add_mutually_exclusive_group(required=True)
    start.add_argument("--checkpoint", type=Path, help="dense weights")
    start.add_argument("--from-pruned", type=Path, metavar="FOLDER",
                       help="a pruned folder (`sigmab prune`): the tree's backbone and every path start as it")
    p.add_argument("--arch", help="architecture, for checkpoints without sigmab metadata")
    p.add_argument("--dataset", help="dataset the calibration images come from (train split); required with "
                                     "--checkpoint, read from the prune with --from-pruned")
    p.add_argument("--data-root", help="dataset location")


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


def add_finetune(sub: argparse._SubParsersAction) -> None:
    run_command(sub, "finetune", func=_cmd_finetune,
                help="soft-routing fine-tuning of a converted tree, then a hard-routing phase",
                description="Fine-tune RUN in place (RUN/finetune/, RUN/finetuned.safetensors). Runs as one process "
                            "or under torchrun (DDP). Defaults < --preset < --config YAML < flags.",
                folder="tree folder written by `sigmab convert`", in_place=True, preset=True,
                config="fine-tuning options", resume="continue from RUN/finetune/last.pt",
                options={"fine-tuning": FinetuneConfig})


def _cmd_finetune(args: argparse.Namespace) -> int:
    cfg = command_config(FinetuneConfig, args, step="finetune", run_config=args.run / "finetune" / "config.yaml")
    read_spec(args.run)  # a bad folder fails before the process group starts
    _, result = finetune(args.run, cfg, resume=args.resume, progress=not args.no_progress)
    if result is not None:
        print(f"fine-tuned: hard-routed top-1 {result.top1:.2f}% | leaf shares "
              f"{', '.join(f'{float(s):.3f}' for s in result.leaf_share)} | weights {args.run / FINETUNED_WEIGHTS}")
    return 0


def add_fit_routers(sub: argparse._SubParsersAction) -> None:
    p = run_command(sub, "fit-routers", func=_cmd_fit_routers,
                    help="train a tree's routers on best-leaf or class-group targets (new folder)",
                    description="Train new routers for the tree in RUN (its fine-tuned weights when present) and "
                                "write the tree to --out; RUN is not changed. With --targets best-leaf this is the "
                                "E-step of hard EM: follow it with `sigmab finetune OUT --soft-epochs 0 "
                                "--hard-epochs N` and repeat. Defaults < --config YAML < flags.",
                    folder="tree folder to create", config="router-fitting options",
                    options={"router fitting": RouterFitConfig})
    p.add_argument("run", type=Path, help="tree folder (`sigmab convert`, fine-tuned or not)")


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
