"""Does routing beat static pruning? Leaves that start from the fine-tuned static prune, then specialise.

Hypothesis (issue 19, rung b): spend the static budget first (prune, fine-tune ``static.epochs``), then
split the fine-tuned prune into a tree (its backbone shared, a copy of the rest per leaf, k-means routers:
:func:`sigmab.tree.from_pruned.tree_from_pruned`) and train every leaf on its own routed inputs only
(hard routing, distillation from the dense model) for ``specialise.epochs``. Against it: the same prune
fine-tuned ``specialise.epochs`` more on all inputs, same schedule. Every path of the tree *is* the prune
plus its routers, so the active parameters match; both arms see the same number of epochs of data.
The hypothesis is refuted where the tree's routed Top-1 is not above the continued prune's.

With ``routers`` (rungs d, c), the specialised tree's routers are then retrained to send each training input to
its lowest-loss leaf (:mod:`sigmab.tree.router_fit`) and, with ``respecialise`` epochs, the leaves train again
under the new routing (one hard-EM step); the static arm gets the same extra epochs for the comparison.

Each run writes ``benchmarks/results/specialise/<id>.json``: test Top-1 of the start (tree before
specialisation = the prune, the sanity rung), of the continued prune and of the specialised tree; the
specialisation gain (routed minus best single leaf on all inputs), oracle Top-1, routing shares,
parameters, device and wall time. Work folders under ``benchmarks/runs/`` make every stage resumable.

    python -m benchmarks.specialise --config benchmarks/configs/specialise_resnet20.yaml [--only ID]
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import RESULTS, ROOT, git_commit, machine
from benchmarks.leaf_fit import ARMS, fit_by_leaf
from sigmab.config import resolve_config
from sigmab.errors import ConfigError
from sigmab.eval import evaluate
from sigmab.inputs import folder_eval_data
from sigmab.prune import PruneConfig
from sigmab.prune.finetune import PruneFinetuneConfig, finetune_pruned
from sigmab.prune.pipeline import evaluate_pruned_folder, prune_checkpoint
from sigmab.prune.spec import FINETUNED_WEIGHTS, PRUNED_SPEC, PRUNED_WEIGHTS
from sigmab.train.distributed import resolve_device
from sigmab.tree import ConvertConfig, load_tree, save_tree
from sigmab.tree.finetune import FinetuneConfig, finetune
from sigmab.tree.model import SigmaBTree
from sigmab.tree.pipeline import convert_pruned_folder
from sigmab.tree.report import evaluate_tree_folder
from sigmab.tree.router_pipeline import RouterFitConfig, refit_routers
from sigmab.tree.spec import TreeSpec
from sigmab.utils.io import atomic_write_json

RUNS = ROOT / "benchmarks" / "runs" / "specialise"
OUT = RESULTS / "specialise"


def _path(p: str) -> Path:
    return Path(p) if Path(p).is_absolute() else (ROOT / p).resolve()


def _static(grid: dict[str, Any], work: Path, *, progress: bool) -> Path:
    """The fine-tuned static prune every run starts from (pruned and fine-tuned once, resumable)."""
    folder = work / "static"
    cfg = resolve_config(PruneFinetuneConfig, grid["static"])
    if not (folder / PRUNED_SPEC).is_file():
        prune_checkpoint(_path(grid["weights"]), arch=grid["model"], dataset=grid["dataset"],
                         data_root=str(_path(grid["data"])) if grid.get("data") else None, out=folder,
                         cfg=resolve_config(PruneConfig, grid["prune"]), seed=cfg.seed, progress=progress)
    if not (folder / FINETUNED_WEIGHTS).is_file():
        finetune_pruned(folder, cfg, resume=(folder / "finetune" / "last.pt").is_file(), progress=progress)
    return folder


def _continued(static: Path, work: Path, settings: dict[str, Any], grid: dict[str, Any], *, progress: bool,
               sliced: bool = False) -> Path:
    """The static prune fine-tuned ``settings['epochs']`` more on every input (the same schedule as the leaves);
    with ``sliced``, ``settings['epochs']`` from the prune's sliced (not fine-tuned) weights instead, the static
    arm of a tree that starts there too."""
    folder = work / (f"static-{settings['epochs']}ep-lr{settings['lr']}-from-sliced" if sliced
                     else f"static-plus-{settings['epochs']}ep-lr{settings['lr']}")
    if not (folder / PRUNED_SPEC).is_file():
        folder.mkdir(parents=True, exist_ok=True)
        for name in (PRUNED_SPEC, "report.json"):
            shutil.copy2(static / name, folder / name)
        # start from the fine-tuned weights (or the sliced ones)
        shutil.copy2(static / (PRUNED_WEIGHTS if sliced else FINETUNED_WEIGHTS), folder / PRUNED_WEIGHTS)
    if not (folder / FINETUNED_WEIGHTS).is_file():  # the tree's schedule: epochs and peak lr (not its routing)
        cfg = resolve_config(PruneFinetuneConfig, grid["static"], {"epochs": settings["epochs"], "lr": settings["lr"]})
        finetune_pruned(folder, cfg, resume=(folder / "finetune" / "last.pt").is_file(), progress=progress)
    return folder


def _starts_sliced(run: dict[str, Any]) -> bool:
    """Whether the run's tree starts from the prune's sliced weights (then both arms train ``specialise.epochs``
    from there) rather than from the fine-tuned prune (both arms train ``specialise.epochs`` more)."""
    return run["tree"].get("from_pruned_weights", "finetuned") == "sliced"


def _check_run(run: dict[str, Any]) -> None:
    """Refuse, before any training, a run whose arms could not be compared."""
    if run.get("routers") and _starts_sliced(run):
        raise ConfigError(f"{run['id']}: trained routers are compared with the continued prune; they need a "
                          "tree that starts from the fine-tuned one")


def _tree(static: Path, work: Path, run: dict[str, Any], grid: dict[str, Any], *, progress: bool) -> Path:
    """Split the static prune into a tree (rung b: the prune's channels, or each leaf's own from its cluster),
    then train every leaf on its own routed inputs."""
    folder = work / run["id"]
    if not (folder / "tree.json").is_file():
        convert_pruned_folder(static, out=folder, cfg=resolve_config(ConvertConfig, run["tree"]), progress=progress)
    if run.get("route_by") == "classes" and not (folder / "class_groups.json").is_file():
        tree, spec = load_tree(folder, weights="tree.safetensors")
        report = _route_by_classes(tree, spec, grid, run, progress=progress)
        save_tree(tree, spec, folder)
        atomic_write_json(folder / "class_groups.json", report)  # last: a kill before it refits again
    if not (folder / "finetuned.safetensors").is_file():
        # `epochs` extra epochs in all; the first `soft_epochs` of them (default none) with soft routing, where
        # every leaf learns from every input, weighted by its routing probability.
        settings = dict(run["specialise"])
        soft = int(settings.get("soft_epochs", 0))
        specialise = {k: v for k, v in grid["static"].items() if k != "epochs"}
        cfg = resolve_config(FinetuneConfig, specialise, {
            **{k: v for k, v in settings.items() if k != "epochs"},
            "soft_epochs": soft, "hard_epochs": settings["epochs"] - soft})
        finetune(folder, cfg, resume=(folder / "finetune" / "last.pt").is_file(), progress=progress)
    return folder


def _route_by_classes(tree: SigmaBTree, spec: TreeSpec, grid: dict[str, Any], run: dict[str, Any], *,
                      progress: bool) -> dict[str, Any]:
    """Replace the k-means routers by routers trained to send each input to its class group: the classes split
    where the prune (every path of the unspecialised tree) confuses them least on the held-out split."""
    static = grid["static"]
    settings = dict(run.get("class_routers") or {})
    cfg = RouterFitConfig(targets="classes", val_fraction=static["val_fraction"], seed=static.get("seed", 0),
                          **settings)
    source = dict(spec.convert_config.get("source") or {})
    return refit_routers(tree, spec, cfg, data_root=source.get("data_root"), dataset=grid["dataset"],
                         progress=progress)


def _trained_routers(tree_dir: Path, work: Path, run: dict[str, Any], grid: dict[str, Any], *, progress: bool
                     ) -> tuple[Path, dict[str, Any]]:
    """Rung (d), then (c): routers retrained to pick each training input's lowest-loss leaf
    (:mod:`sigmab.tree.router_fit`); with ``routers.respecialise`` epochs, the leaves then train again on the
    inputs the new routers send them (one hard-EM step)."""
    settings = dict(run["routers"])
    folder = work / f"{run['id']}-routers"
    report_file = folder / "router_fit.json"
    if not report_file.is_file():
        tree, spec = load_tree(tree_dir)
        source = dict(spec.convert_config.get("source") or {})
        static = grid["static"]
        cfg = RouterFitConfig(targets="best-leaf", settings=dict(settings.get("settings") or {}),
                              val_fraction=static.get("val_fraction", 0.0), seed=static.get("seed", 0),
                              **{k: settings[k] for k in ("kind", "epochs", "lr") if k in settings})
        fit = refit_routers(tree, spec, cfg, data_root=source.get("data_root"), dataset=grid["dataset"],
                            progress=progress)["fit_on_train"]
        folder.mkdir(parents=True, exist_ok=True)
        save_tree(tree, spec, folder)
        atomic_write_json(report_file, fit)
    respecialise = settings.get("respecialise", 0)
    if respecialise and not (folder / "finetuned.safetensors").is_file():
        cfg = resolve_config(FinetuneConfig, {k: v for k, v in grid["static"].items() if k != "epochs"},
                             {"soft_epochs": 0, "hard_epochs": respecialise,
                              **{k: v for k, v in run["specialise"].items() if k != "epochs"}})
        finetune(folder, cfg, resume=(folder / "finetune" / "last.pt").is_file(), progress=progress)
    return folder, json.loads(report_file.read_text())


def _train_seconds(metrics_csv: Path) -> float:
    """Training time of a run folder: the sum of its epochs' ``epoch_seconds`` (not this invocation's time,
    which is only evaluation when the training was done before)."""
    with open(metrics_csv) as f:
        return round(sum(float(row["epoch_seconds"]) for row in csv.DictReader(f)), 1)


def _tree_summary(report: dict[str, Any]) -> dict[str, Any]:
    diagnosis = report["diagnosis"]
    best = max(leaf["top1_all"] for leaf in diagnosis["leaves"])
    return {"top1": report["top1"], "best_single_leaf_top1": best,
            "specialisation_gain_pp": round(report["top1"] - best, 4), "oracle_top1": diagnosis["oracle_top1"],
            "confident_top1": diagnosis["confident_top1"], "leaf_disagreement": diagnosis["disagreement"],
            "leaf_shares": [leaf["share"] for leaf in report["leaves"]],
            "active_params_mean": report["active_params_mean"], "stored_params": report["stored_params"]}


def _start_top1(tree_dir: Path) -> float:
    """Test Top-1 of the tree before specialisation: every path is the prune, so this is the prune's."""
    tree, spec = load_tree(tree_dir, weights="tree.safetensors")
    source = dict(spec.convert_config.get("source") or {})
    _, _, loader = folder_eval_data(source, spec.dense_meta, what="tree", dataset=None, data_root=None,
                                    split="test", val_fraction=0.0, seed=0, batch_size=256)
    return evaluate(tree, loader).top1


def train_arm(grid: dict[str, Any], run: dict[str, Any], arm: str, *, runs_dir: Path = RUNS, progress: bool) -> Path:
    """Only one arm's training (the static start first, if missing); both arms' folders are resumable."""
    _check_run(run)
    work = runs_dir / grid["name"]
    static = _static(grid, work, progress=progress)
    if arm == "static":
        return _continued(static, work, run["specialise"], grid, progress=progress, sliced=_starts_sliced(run))
    return _tree(static, work, run, grid, progress=progress)


def run_one(grid: dict[str, Any], run: dict[str, Any], *, progress: bool, runs_dir: Path = RUNS,
            results_dir: Path = OUT, fit: bool = False) -> Path:
    """Both arms of one run (the shared static start is built once per grid); returns the result file. With
    ``fit``, also how each arm fits the training images against the test split
    (:func:`benchmarks.leaf_fit.fit_by_leaf`)."""
    _check_run(run)
    t0 = time.perf_counter()
    work = runs_dir / grid["name"]
    static = _static(grid, work, progress=progress)
    continued = _continued(static, work, run["specialise"], grid, progress=progress, sliced=_starts_sliced(run))
    tree_dir = _tree(static, work, run, grid, progress=progress)
    # the prune the run starts from: fine-tuned, or (a tree that starts from the sliced weights) before fine-tuning
    static_report = evaluate_pruned_folder(static, split="test",
                                           weights=PRUNED_WEIGHTS if _starts_sliced(run) else None)
    continued_report = evaluate_pruned_folder(continued, split="test")
    tree_report = evaluate_tree_folder(tree_dir, split="test", diagnose=True)
    tree = _tree_summary(tree_report)
    result = {
        "benchmark": "specialise", "model": grid["model"], "dataset": grid["dataset"], "run_id": run["id"],
        "config": {"prune": grid["prune"], "static": grid["static"], "tree": run["tree"],
                   "specialise": run["specialise"]},
        "static_epochs": 0 if _starts_sliced(run) else grid["static"]["epochs"],
        "extra_epochs": run["specialise"]["epochs"], "start_weights": "sliced" if _starts_sliced(run) else "finetuned",
        "static_top1": static_report["top1"], "tree_start_top1": round(_start_top1(tree_dir), 4),
        "static_continued_top1": continued_report["top1"], "tree_top1": tree_report["top1"],
        "dense_top1": tree_report["dense_top1"],
        "tree_minus_static_pp": round(tree_report["top1"] - continued_report["top1"], 4),
        **{k: tree[k] for k in ("best_single_leaf_top1", "specialisation_gain_pp", "oracle_top1", "confident_top1",
                                "leaf_disagreement")},
        "leaves": tree_report["leaves"], "diagnosis": tree_report["diagnosis"],
        "split_points": tree_report["split_points"],
        "static_params": continued_report["active_params_mean"],
        "active_params_mean": tree_report["active_params_mean"],
        "stored_params": tree_report["stored_params"], "dense_params": tree_report["dense_params"],
        "device": str(resolve_device(grid["static"].get("device", "auto"))),
        "wall_seconds": time.perf_counter() - t0, "git_commit": git_commit(), "machine": machine(),
        "tree_train_seconds": _train_seconds(tree_dir / "finetune" / "metrics.csv"),
        "static_train_seconds": _train_seconds(continued / "finetune" / "metrics.csv"),
        "tree_metrics_csv": (tree_dir / "finetune" / "metrics.csv").read_text(),
        "static_continued_metrics_csv": (continued / "finetune" / "metrics.csv").read_text(),
    }
    if fit:
        result["fit"] = fit_by_leaf(tree_dir, continued, val_fraction=grid["static"]["val_fraction"],
                                    seed=grid["static"].get("seed", 0))
    if (tree_dir / "class_groups.json").is_file():
        result["class_groups"] = json.loads((tree_dir / "class_groups.json").read_text())
        result["config"]["route_by"] = "classes"
    if run.get("routers"):
        routed_dir, router_fit = _trained_routers(tree_dir, work, run, grid, progress=progress)
        routed = _tree_summary(evaluate_tree_folder(routed_dir, split="test", diagnose=True))
        extra = run["routers"].get("respecialise", 0)
        matched = result["static_continued_top1"]
        if extra:  # the static arm gets the re-specialisation's epochs too
            matched = evaluate_pruned_folder(_continued(static, work, {**run["specialise"],
                                                                       "epochs": run["specialise"]["epochs"] + extra},
                                                        grid, progress=progress), split="test")["top1"]
        result["trained_routers"] = {**routed, "settings": run["routers"], "fit_on_train": router_fit,
                                     "static_matched_top1": matched,
                                     "tree_minus_static_pp": round(routed["top1"] - matched, 4),
                                     "respecialised_epochs": run["routers"].get("respecialise", 0),
                                     "metrics_csv": (routed_dir / "finetune" / "metrics.csv").read_text()
                                     if (routed_dir / "finetune" / "metrics.csv").is_file() else ""}
        result["wall_seconds"] = time.perf_counter() - t0
    out = results_dir / f"{run['id']}.json"
    atomic_write_json(out, result)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="grid YAML (benchmarks/configs/specialise_*.yaml)")
    parser.add_argument("--only", action="append", help="run only this id (repeatable)")
    parser.add_argument("--arm", choices=ARMS, help="train only this arm of each run and write no result (run the "
                        "arms in parallel processes, then once without --arm to evaluate both)")
    parser.add_argument("--fit", action="store_true", help="also compare how the arms fit the training images "
                        "with how they do on the test split, per leaf (one more pass over the training split each)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    grid = yaml.safe_load(args.config.read_text())
    grid.setdefault("name", args.config.stem)
    ids = [r["id"] for r in grid["runs"]]
    unknown = sorted(set(args.only or []) - set(ids))
    if unknown:
        raise ConfigError(f"unknown run id(s) {', '.join(unknown)}; the grid has {', '.join(ids)}")
    for run in grid["runs"]:
        if args.only and run["id"] not in args.only:
            continue
        if args.arm:
            folder = train_arm(grid, run, args.arm, progress=not args.no_progress)
            print(f"{run['id']} {args.arm} arm: {folder}", flush=True)
            continue
        out = run_one(grid, run, progress=not args.no_progress, fit=args.fit)
        print(f"{run['id']}: {out}", flush=True)


if __name__ == "__main__":
    main()
