"""The static-pruning subcommand: ``prune``."""

from __future__ import annotations

import argparse
from pathlib import Path

from sigmab.cli.common import run_command
from sigmab.config import command_config
from sigmab.errors import ConfigError, TrainingError
from sigmab.models.checkpoint import load_checkpoint
from sigmab.prune import PruneConfig
from sigmab.prune.finetune import PruneFinetuneConfig, finetune_pruned
from sigmab.prune.pipeline import prune_checkpoint
from sigmab.prune.spec import FINETUNED_WEIGHTS as PRUNE_FINETUNED
from sigmab.prune.spec import PRUNED_SPEC, read_pruned_spec
from sigmab.train.distributed import barrier, init_distributed, resolve_device


def add_prune(sub: argparse._SubParsersAction) -> None:
    p = run_command(sub, "prune", func=_cmd_prune, help="static structured pruning (L1, FPGM, HRank), then fine-tuning",
                    description="Score channel groups with one criterion, slice the dense model physically and "
                                "fine-tune it (same recipe as `sigmab finetune`). Defaults < --config YAML < flags.",
                    folder="pruned-model folder to create", config="pruning and fine-tuning options",
                    resume="continue the fine-tuning in OUT",
                    options={"pruning": PruneConfig, "fine-tuning": PruneFinetuneConfig})
    p.add_argument("--checkpoint", type=Path, help="dense weights (not needed with --resume)")
    p.add_argument("--arch", help="architecture, for checkpoints without sigmab metadata")


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
