"""The embedded demo: the whole pipeline on scikit-learn's bundled digits, no data or weights needed.

Train a dense ResNet-8, convert it to a depth-2 SigmaB tree, fine-tune it, evaluate both, and
draw the tree. Settings: the packaged ``demo*.yaml`` configs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sigmab.config import read_yaml_config, resolve_config
from sigmab.errors import ConfigError
from sigmab.train import TrainConfig, train
from sigmab.tree.convert import ConvertConfig
from sigmab.tree.finetune import FinetuneConfig, finetune
from sigmab.tree.pipeline import convert_checkpoint
from sigmab.tree.report import evaluate_tree_folder, format_tree_report
from sigmab.utils.io import atomic_write_json


def run_demo(out: Path, *, progress: bool = True) -> dict[str, Any]:
    """Run the pipeline into ``out`` (dense/, tree/, report.json, tree.png); returns the tree report."""
    t0 = time.perf_counter()
    train_cfg = resolve_config(TrainConfig, read_yaml_config("demo"))
    convert_cfg = resolve_config(ConvertConfig, read_yaml_config("demo_convert"))
    finetune_cfg = resolve_config(FinetuneConfig, read_yaml_config("demo_finetune"))
    print(f"[1/4] training a dense {train_cfg.arch} on scikit-learn's digits ({train_cfg.epochs} epochs)", flush=True)
    dense = train(train_cfg, out / "dense", progress=progress)
    print(f"[2/4] converting to a depth-{convert_cfg.depth} SigmaB tree", flush=True)
    convert_checkpoint(out / "dense" / "model.safetensors", dataset=train_cfg.dataset, out=out / "tree",
                       cfg=convert_cfg, progress=progress)
    print(f"[3/4] fine-tuning: {finetune_cfg.soft_epochs} soft-routing + {finetune_cfg.hard_epochs} hard-routing "
          "epochs", flush=True)
    finetune(out / "tree", finetune_cfg, progress=progress)
    print("[4/4] evaluating dense and SigmaB on the test split", flush=True)
    report = evaluate_tree_folder(out / "tree", progress=progress)
    report["dense_top1"] = round(dense.final.top1, 4)
    report["demo_seconds"] = round(time.perf_counter() - t0, 1)
    atomic_write_json(out / "report.json", report)
    print()
    print(format_tree_report(report))
    try:
        from sigmab.plots.tree_plot import plot_tree

        picture = plot_tree(report, out / "tree.png")
        print(f"\npicture of the tree: {picture}")
    except ConfigError as exc:
        print(f"\n(no picture: {exc})")
    print(f"run folder: {out} (dense/, tree/, report.json) | {report['demo_seconds']:.0f} s")
    return report
