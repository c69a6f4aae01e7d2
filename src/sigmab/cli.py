"""The ``sigmab`` command line: ``train``, ``eval``, ``demo``, ``models``.

User errors (bad input, missing files, misfit checkpoints) print one ``sigmab: error: ...``
line and exit with status 2, before any work starts where they can be detected up front.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from sigmab import __version__
from sigmab.config import add_config_flags, read_yaml_config, resolve_config
from sigmab.data import ArrayLoader, get_dataset_info, load_split
from sigmab.errors import ConfigError, SigmabError
from sigmab.eval import evaluate, profile_model
from sigmab.models import list_models, load_model
from sigmab.train import TrainConfig, train
from sigmab.train.config import TRAIN_HELP

DEMO_RUN_DIR = Path("runs/demo")


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a dense model from scratch",
                       description="Dense training. Defaults < --config YAML < flags; the resolved config is "
                                   "saved in the run folder.")
    p.add_argument("--config", help="YAML file (or packaged config name, e.g. 'demo') with option defaults")
    p.add_argument("--out", required=True, type=Path, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_config_flags(p, TrainConfig, help_texts=TRAIN_HELP)
    p.set_defaults(func=_cmd_train)


def _train_config(args: argparse.Namespace) -> TrainConfig:
    flags = {k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__}
    layers = []
    saved = args.out / "config.yaml"
    if args.resume and saved.is_file():
        layers.append(read_yaml_config(str(saved)))
    elif args.config:
        layers.append(read_yaml_config(args.config))
    return resolve_config(TrainConfig, *layers, flags)


def _cmd_train(args: argparse.Namespace) -> int:
    cfg = _train_config(args)
    result = train(cfg, args.out, resume=args.resume, progress=not args.no_progress)
    print(f"{cfg.arch} on {cfg.dataset}: {result.eval_split} top-1 {result.final.top1:.2f}% | "
          f"params {result.params:,} | MACs {result.macs:,} | run folder {result.run_dir}")
    return 0


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="top-1, parameters and MACs of a checkpoint")
    p.add_argument("--checkpoint", required=True, type=Path, help="weights: .safetensors, .pt or .th")
    p.add_argument("--arch", help="architecture, for checkpoints without sigmab metadata (e.g. resnet56)")
    p.add_argument("--dataset", required=True, help="dataset name")
    p.add_argument("--data-root", help="dataset location: an .npz file or a folder")
    p.add_argument("--split", default="test", choices=("train", "test"), help="which split (default: test)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--per-module", action="store_true", help="also print the per-module parameter/MAC table")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise ConfigError("--batch-size must be >= 1")
    info = get_dataset_info(args.dataset)
    model = load_model(args.checkpoint, arch=args.arch)
    meta = model.meta
    if meta.num_classes != info.num_classes or meta.in_channels != info.in_channels:
        raise ConfigError(f"{args.checkpoint} expects {meta.in_channels}-channel inputs and {meta.num_classes} "
                          f"classes; {args.dataset} has {info.in_channels} and {info.num_classes}")
    data = load_split(args.dataset, args.split, root=args.data_root)
    profile = profile_model(model, (meta.in_channels, *data.images.shape[2:]))
    loader = ArrayLoader(data, batch_size=args.batch_size, mean=meta.mean, std=meta.std)
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


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the embedded demo: no data or weights needed")
    p.add_argument("--out", type=Path, default=DEMO_RUN_DIR, help=f"run folder (default: {DEMO_RUN_DIR})")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    cfg = resolve_config(TrainConfig, read_yaml_config("demo"))
    out = args.out
    if (out / "last.pt").is_file():  # the demo always starts afresh; keep the old run beside it
        out = out.with_name(f"{out.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    print(f"sigmab demo: training {cfg.arch} on scikit-learn's bundled digits for {cfg.epochs} epochs -> {out}")
    result = train(cfg, out, progress=not args.no_progress)
    print(f"\n{'model':<12}{'test top-1':>12}{'params':>12}{'MACs':>12}")
    print(f"{cfg.arch:<12}{result.final.top1:>11.2f}%{result.params:>12,}{result.macs:>12,}")
    print(f"\nrun folder: {out} (config.yaml, metrics.csv, model.safetensors, summary.json)")
    print(f"evaluate it again: sigmab eval --checkpoint {out / 'model.safetensors'} --dataset digits")
    return 0


def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the registered architectures")
    p.set_defaults(func=lambda args: print("\n".join(list_models())) or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sigmab", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"sigmab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_demo, _add_train, _add_eval, _add_models):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except SigmabError as exc:
        print(f"sigmab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sigmab: interrupted (a training run continues with --resume)", file=sys.stderr)
        return 130


