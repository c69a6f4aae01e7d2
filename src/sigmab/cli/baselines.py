"""Subcommands of the other dynamic-inference systems: ``sigmab nested`` and ``sigmab dispatch``."""

from __future__ import annotations

import argparse
from pathlib import Path

from sigmab.cli.common import run_command
from sigmab.config import add_config_flags, command_config
from sigmab.errors import ConfigError


def add_nested(sub: argparse._SubParsersAction) -> None:
    from sigmab.nested.training import NestedConfig

    p = run_command(sub, "nested", func=_cmd_nested,
                    help="multi-level nested sparse network with rerouting, from a dense checkpoint",
                    description="Mask the dense model at every sparsity level (nested by magnitude, one shared set "
                                "of weights), train all levels jointly, and report Top-1, non-zero parameters and "
                                "MACs of every level and rerouting, and the storage of all levels together. "
                                "Defaults < --config YAML < flags.",
                    folder="nested-model folder to create", config="options", resume="continue the training in OUT",
                    options={"nested network": NestedConfig})
    p.add_argument("--checkpoint", type=Path, help="dense weights (not needed with --resume)")
    p.add_argument("--arch", help="architecture, for checkpoints without sigmab metadata")


def resumed_source(out: Path, arch: str | None) -> tuple[Path, str | None]:
    """The dense checkpoint (and architecture) a nested run in ``out`` started from, as its last.pt records."""
    from sigmab.nested.training import CHECKPOINT_FORMAT
    from sigmab.train.run_folder import load_resume_checkpoint

    last = out / "last.pt"
    if not last.is_file():
        raise ConfigError(f"nothing to resume: {last} does not exist")
    source = load_resume_checkpoint(last, fmt=CHECKPOINT_FORMAT).extra.get("source") or {}
    if not source.get("checkpoint"):
        raise ConfigError(f"{last} does not record its dense checkpoint (an older sigmab wrote it); pass --checkpoint")
    return Path(source["checkpoint"]), arch or source.get("arch")


def _cmd_nested(args: argparse.Namespace) -> int:
    from sigmab.nested.training import NestedConfig, format_nested_report, train_nested

    cfg = command_config(NestedConfig, args, run_config=args.out / "config.yaml")
    checkpoint, arch = args.checkpoint, args.arch
    if checkpoint is None:
        if not args.resume:
            raise ConfigError("--checkpoint is required (unless --resume)")
        checkpoint, arch = resumed_source(args.out, arch)
    report = train_nested(checkpoint, cfg, args.out, arch=arch, resume=args.resume, progress=not args.no_progress)
    print(format_nested_report(report, args.out))
    return 0


def add_dispatch(sub: argparse._SubParsersAction) -> None:
    from sigmab.dispatch.pipeline import DispatchConfig

    p = sub.add_parser("dispatch", help="PERTINENCE-style input dispatcher over several models, searched by a GA",
                       description="Score every model on a held-out part of the training set and on the test set, "
                                   "search the dispatcher's training settings (penalties, threshold, width) with a "
                                   "genetic algorithm for the front of accuracy against mean MACs, and report that "
                                   "front on the test set.")
    p.add_argument("models", nargs="+", type=Path,
                   help="two or more dense checkpoints, tree folders or pruned-model folders (same inputs)")
    p.add_argument("--arch", nargs="+", metavar="ARCH",
                   help="architecture of checkpoints without sigmab metadata: one for all, or one per model in "
                        "order ('-' for a model that needs none), e.g. --arch resnet20 resnet56")
    p.add_argument("--out", type=Path, required=True, help="folder for report.json")
    p.add_argument("--no-progress", action="store_true")
    add_config_flags(p, DispatchConfig)
    p.set_defaults(func=_cmd_dispatch, writes="out")


def _cmd_dispatch(args: argparse.Namespace) -> int:
    from sigmab.dispatch.pipeline import DispatchConfig, run_dispatch

    cfg = command_config(DispatchConfig, args)
    arch = args.arch and [None if a == "-" else a for a in args.arch]
    report = run_dispatch([str(m) for m in args.models], cfg, args.out,
                          arch=arch[0] if arch and len(arch) == 1 else arch, progress=not args.no_progress)
    print(f"{'model':<24} {'test top-1':>10} {'MACs/input':>14}")
    for m in report["models"]:
        print(f"{m['name']:<24} {m['top1']:>9.2f}% {m['mean_macs']:>14,.0f}")
    print(f"oracle (any model right): {report['oracle_top1']:.2f}%")
    print(f"{'front (test)':<24} {'top-1':>10} {'MACs/input':>14}  shares")
    for row in report["front"]:
        print(f"{'threshold ' + format(row['settings']['threshold'], '.2f'):<24} {row['top1']:>9.2f}% "
              f"{row['mean_macs']:>14,.0f}  {', '.join(f'{s:.2f}' for s in row['shares'])}")
    print(f"report: {args.out / 'report.json'}")
    return 0
