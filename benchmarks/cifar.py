"""CIFAR benchmark runner: build -> fine-tune -> evaluate for a grid of SigmaB and baseline configurations.

    python -m benchmarks.cifar --config benchmarks/configs/resnet56.yaml [--only RUN_ID] [--seeds 0 1]

A grid names its dense model by ``weights`` (a pretrained checkpoint) or trains it first from its
``train`` settings (``sigmab train``, resumable) in ``benchmarks/runs/<grid>-dense/``.

A run's ``method`` is ``sigmab`` (default: ``convert`` + ``finetune`` settings, or a ``preset``),
a static pruning criterion, ``l1``, ``fpgm`` or ``hrank`` (``prune`` + ``finetune`` settings of
``sigmab prune``), ``nested`` (``nested`` settings; one result per route) or ``dispatch``
(``models`` + ``dispatch`` settings, :mod:`benchmarks.cifar_dispatch`; one result per point of its
front). Each run x seed works in ``benchmarks/runs/<run>-s<seed>/`` (git-ignored) and resumes where
it stopped: a converted tree or pruned model is reused, fine-tuning continues from its last
checkpoint. Its result goes to ``benchmarks/results/cifar/<run>-s<seed>.json`` (the shared results
schema). Settings are
chosen on a held-out part of the training set (``val_fraction``); the test split is evaluated
once at the end of each run, for the report.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks.cifar_dispatch import front_file, model_sources, run_dispatch_grid
from benchmarks.common import RESULTS, ROOT, RUNS, SHARED, git_commit, machine
from sigmab.config import preset_layer, read_preset, resolve_config
from sigmab.data import load_split
from sigmab.dispatch.pipeline import DispatchConfig
from sigmab.errors import ConfigError
from sigmab.eval import RESULT_FIELDS, ModelReport, evaluate, profile_model
from sigmab.importance.filters import CRITERIA
from sigmab.models import load_model
from sigmab.nested import Route
from sigmab.nested.training import NestedConfig, evaluate_routes, load_nested, train_nested
from sigmab.prune import PruneConfig
from sigmab.prune.finetune import PruneFinetuneConfig, finetune_pruned
from sigmab.prune.pipeline import evaluate_pruned_folder, prune_checkpoint
from sigmab.prune.spec import FINETUNED_WEIGHTS as PRUNE_FINETUNED
from sigmab.train import TrainConfig, train
from sigmab.tree.convert import ConvertConfig
from sigmab.tree.finetune import FINETUNED_WEIGHTS, FinetuneConfig, finetune
from sigmab.tree.pipeline import convert_checkpoint
from sigmab.tree.report import evaluate_tree_folder
from sigmab.utils.io import atomic_write_json


def add_resnet56_run_args(parser: argparse.ArgumentParser) -> None:
    """--tree/--pruned/--checkpoint/--data, defaulting to the ResNet-56 runs the deployment benchmarks read:
    the SigmaB preset tree and the FPGM prune at -66% (seed 0), the shared weights and CIFAR-10."""
    parser.add_argument("--tree", type=Path, default=RUNS / "r56-d2-w50-25-kd-6ep-s0" / "tree")
    parser.add_argument("--pruned", type=Path, default=RUNS / "r56-fpgm-66-s0" / "pruned")
    parser.add_argument("--checkpoint", type=Path, default=SHARED / "weights" / "resnet56-4bfd9763.th")
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "cifar10.npz.xz")
CIFAR_RESULTS = RESULTS / "cifar"


def _resolve(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else (ROOT / p).resolve()


def load_grid(path: Path) -> dict[str, Any]:
    """Read and check a grid YAML: every run's settings are validated before the first one starts."""
    grid = yaml.safe_load(path.read_text())
    if not isinstance(grid, dict):
        raise ConfigError(f"{path}: expected a mapping")
    for key in ("model", "dataset", "runs"):
        if key not in grid:
            raise ConfigError(f"{path}: missing '{key}'")
    if "weights" not in grid and "train" not in grid:
        raise ConfigError(f"{path}: give 'weights' (a pretrained checkpoint) or 'train' (settings to train one)")
    grid.setdefault("name", path.stem)
    if "train" in grid:
        dense_train_config(grid)
    ids = [r["id"] for r in grid["runs"]]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{path}: run ids must be unique, got {ids}")
    for run in grid["runs"]:
        method = run.get("method", "sigmab")
        if method not in METHOD_TABLE:
            raise ConfigError(f"{path}: run {run['id']} has unknown method {method!r}; known: "
                              f"{', '.join(METHOD_TABLE)}")
        preset = run.get("preset")
        if preset and read_preset(preset).get("model") not in (None, grid["model"]):
            raise ConfigError(f"{path}: run {run['id']} uses preset {preset}, which is not for {grid['model']}")
        _configs(grid, run, seed=0)
        method_of(run).check(run)
    return grid


def _data_root(grid: dict[str, Any]) -> str | None:
    return str(_resolve(grid["data"])) if grid.get("data") else None


def dense_train_config(grid: dict[str, Any]) -> TrainConfig:
    """The settings of a grid's own dense training (its ``train:`` section, with the grid's model and data)."""
    fixed = {"arch": grid["model"], "dataset": grid["dataset"], "data_root": _data_root(grid),
             "val_fraction": grid.get("val_fraction", 0.1)}
    return resolve_config(TrainConfig, grid["train"], fixed)


def dense_weights(grid: dict[str, Any], *, progress: bool, runs_dir: Path = RUNS) -> Path:
    """The grid's dense checkpoint: its ``weights`` (with ``train`` too, the settings that made them: a record), or
    the model trained (resuming) from its ``train`` settings."""
    if "weights" in grid:
        return _resolve(grid["weights"])
    folder = runs_dir / f"{grid['name']}-dense"
    weights = folder / "model.safetensors"
    if not weights.is_file():
        print(f"{grid['name']}: training the dense {grid['model']} in {folder}", flush=True)
        train(dense_train_config(grid), folder, resume=(folder / "last.pt").is_file(), progress=progress)
    return weights


def run_layers(run: dict[str, Any], section: str) -> list[dict[str, Any]]:
    """A run's settings for one step: its preset's, then its own on top."""
    return [preset_layer(run.get("preset"), section), run.get(section, {})]


def _tree_configs(grid: dict[str, Any], run: dict[str, Any], seed: int) -> tuple[Any, Any]:
    val = {"val_fraction": grid.get("val_fraction", 0.1)}
    return (resolve_config(ConvertConfig, *run_layers(run, "convert"), {"seed": seed}),
            resolve_config(FinetuneConfig, val, *run_layers(run, "finetune"), {"seed": seed}))


def _single_config(cls: type, section: str) -> Any:
    def configs(grid: dict[str, Any], run: dict[str, Any], seed: int) -> tuple[Any, None]:
        fixed = {"seed": seed, "dataset": grid["dataset"], "data_root": _data_root(grid)}
        return resolve_config(cls, {"val_fraction": grid.get("val_fraction", 0.1)}, run.get(section, {}), fixed), None

    return configs


def _prune_configs(grid: dict[str, Any], run: dict[str, Any], seed: int) -> tuple[Any, Any]:
    val = {"val_fraction": grid.get("val_fraction", 0.1)}
    return (resolve_config(PruneConfig, run.get("prune", {}), {"criterion": run["method"]}),
            resolve_config(PruneFinetuneConfig, val, run.get("finetune", {}), {"seed": seed}))


def _configs(grid: dict[str, Any], run: dict[str, Any], seed: int) -> tuple[Any, Any]:
    """(conversion or pruning settings, fine-tuning settings) of a run."""
    return method_of(run).configs(grid, run, seed)


def _sigmab(grid: dict[str, Any], run: dict[str, Any], work: Path, convert_cfg: ConvertConfig,
            finetune_cfg: FinetuneConfig, *, progress: bool) -> tuple[Path, dict[str, Any], dict[str, Any] | None]:
    """Convert and fine-tune (resuming); returns (tree folder, test report, val report)."""
    tree_dir = work / "tree"
    if not (tree_dir / "tree.json").is_file():
        convert_checkpoint(dense_weights(grid, progress=progress), arch=grid["model"], dataset=grid["dataset"],
                           data_root=_data_root(grid), out=tree_dir, cfg=convert_cfg, progress=progress)
    if not (tree_dir / FINETUNED_WEIGHTS).is_file():
        resume = (tree_dir / "finetune" / "last.pt").is_file()
        finetune(tree_dir, finetune_cfg, resume=resume, progress=progress)
    val = evaluate_tree_folder(tree_dir, split="val", val_fraction=finetune_cfg.val_fraction,
                               seed=finetune_cfg.seed) if finetune_cfg.val_fraction > 0 else None
    test = evaluate_tree_folder(tree_dir, split="test", diagnose=True)
    return tree_dir, test, val


def _pruned(grid: dict[str, Any], run: dict[str, Any], work: Path, prune_cfg: PruneConfig,
            finetune_cfg: PruneFinetuneConfig, *, progress: bool
            ) -> tuple[Path, dict[str, Any], dict[str, Any] | None]:
    """Prune and fine-tune (resuming); returns (pruned folder, test report, val report)."""
    folder = work / "pruned"
    if not (folder / "pruned.json").is_file():
        prune_checkpoint(dense_weights(grid, progress=progress), arch=grid["model"], dataset=grid["dataset"],
                         data_root=_data_root(grid), out=folder, cfg=prune_cfg, seed=finetune_cfg.seed,
                         progress=progress)
    if not (folder / PRUNE_FINETUNED).is_file():
        resume = (folder / "finetune" / "last.pt").is_file()
        finetune_pruned(folder, finetune_cfg, resume=resume, progress=progress)
    val = evaluate_pruned_folder(folder, split="val", val_fraction=finetune_cfg.val_fraction,
                                 seed=finetune_cfg.seed) if finetune_cfg.val_fraction > 0 else None
    test = evaluate_pruned_folder(folder, split="test")
    return folder, test, val


def grid_results(grid: dict[str, Any]) -> Path:
    """Where a grid's results go: ``benchmarks/results/<results>/`` (default ``cifar``)."""
    return RESULTS / grid.get("results", "cifar")


def _route_file(run_id: str, label: str, seed: int) -> str:
    return f"{run_id}-{label.replace('->', 'to').replace('@', 'at')}-s{seed}.json"


def run_nested(grid: dict[str, Any], run: dict[str, Any], seed: int, *, progress: bool, runs_dir: Path = RUNS,
               results_dir: Path = CIFAR_RESULTS) -> list[Path]:
    """Train (resuming) a nested sparse network and write one result per route (level or rerouting): each is a
    point of the method's curve, in the shared schema."""
    cfg, _ = _configs(grid, run, seed)
    folder = runs_dir / f"{run['id']}-s{seed}" / "nested"
    t0 = time.perf_counter()
    if not (folder / "report.json").is_file():
        train_nested(dense_weights(grid, progress=progress), cfg, folder, arch=grid["model"],
                     resume=(folder / "last.pt").is_file(), progress=progress)
    val = json.loads((folder / "report.json").read_text())
    net, _ = load_nested(folder)
    test = load_split(grid["dataset"], "test", root=_data_root(grid))
    loader = test.loader(batch_size=cfg.eval_batch_size, mean=net.meta.mean, std=net.meta.std)
    val_rows = {r["route"]: r for r in val["routes"]}
    rows = evaluate_routes(net, loader, test.input_shape, [Route(tuple(r["levels"])) for r in val["routes"]],
                           dense_params=val["dense_params"], progress=progress)
    dense = load_model(dense_weights(grid, progress=progress), arch=grid["model"])
    dense_top1 = evaluate(dense, loader).top1
    dense_macs = profile_model(dense, test.input_shape).macs
    stored = val_rows["L0"]["params"]
    paths = []
    for row in rows:
        # A route has one path; the net stores its densest level's weights (and the level counts).
        report = ModelReport.static(method="nested", dataset=grid["dataset"], split="test",
                                    n_samples=len(test), top1=row["top1"], dense_top1=round(dense_top1, 4),
                                    params=row["params"], macs=row["macs"], dense_params=val["dense_params"],
                                    dense_macs=dense_macs)
        result = {
            "benchmark": "cifar_run", "model": grid["model"], "dataset": grid["dataset"], "method": "nested",
            "run_id": f"{run['id']}:{row['route']}", "route": row["route"], "levels": row["levels"],
            "config": {"nested": vars(cfg)}, **{k: report.to_dict()[k] for k in RESULT_FIELDS},
            "stored_params": stored, "storage_bytes": val["storage_bytes"],
            "val_top1": val_rows[row["route"]]["top1"], "dense_val_top1": val["dense_top1"],
            "finetune_epochs": cfg.epochs, "wall_seconds": time.perf_counter() - t0, "seed": seed,
            "git_commit": git_commit(), "machine": machine(),
            "finetune_metrics_csv": (folder / "metrics.csv").read_text() if (folder / "metrics.csv").is_file() else "",
        }
        path = results_dir / _route_file(run["id"], row["route"], seed)
        atomic_write_json(path, result)
        paths.append(path)
    return paths


def run_one(grid: dict[str, Any], run: dict[str, Any], seed: int, *, progress: bool, runs_dir: Path = RUNS,
            results_dir: Path = CIFAR_RESULTS) -> Path:
    """Build (convert or prune), fine-tune and evaluate one run for one seed, resuming earlier partial work."""
    method = run.get("method", "sigmab")
    build_cfg, finetune_cfg = _configs(grid, run, seed)
    t0 = time.perf_counter()
    step = _sigmab if method_of(run).tree else _pruned
    folder, test, val = step(grid, run, runs_dir / f"{run['id']}-s{seed}", build_cfg, finetune_cfg,
                             progress=progress)
    result = {
        "benchmark": "cifar_run", "model": grid["model"], "dataset": grid["dataset"], "method": method,
        "run_id": run["id"],
        "config": {"convert" if method_of(run).tree else "prune": vars(build_cfg), "finetune": vars(finetune_cfg)},
        "val_top1": None if val is None else val["top1"],
        "dense_val_top1": None if val is None else val["dense_top1"],
        **{k: test[k] for k in RESULT_FIELDS}, "finetune_epochs": finetune_cfg.epochs,
        "wall_seconds": time.perf_counter() - t0, "seed": seed, "git_commit": git_commit(), "machine": machine(),
        "finetune_metrics_csv": (folder / "finetune" / "metrics.csv").read_text(),
    }
    out = results_dir / f"{run['id']}-s{seed}.json"
    atomic_write_json(out, result)
    return out


@dataclass(frozen=True)
class Method:
    """How a grid runs one method: its settings (``configs``: grid, run, seed -> (build or only settings,
    fine-tuning settings or None)); ``run`` does one seed and writes its result file(s); ``first_result`` names the
    file whose presence means the seed is done; ``tree``: its results can gain a routing diagnosis."""

    configs: Callable[[dict[str, Any], dict[str, Any], int], tuple[Any, Any]]
    run: Callable[..., Any]
    first_result: Callable[[str, int], str] = lambda run_id, seed: f"{run_id}-s{seed}.json"
    tree: bool = False
    check: Callable[[dict[str, Any]], Any] = lambda run: None  # more validation of a run when the grid loads


def _dispatch_run(grid: dict[str, Any], run: dict[str, Any], seed: int, *, progress: bool,
                  results_dir: Path) -> list[Path]:
    cfg, _ = _configs(grid, run, seed)
    return run_dispatch_grid(grid, run, seed, cfg, dense_weights=dense_weights(grid, progress=progress),
                             runs_dir=RUNS, results_dir=results_dir, resolve=_resolve, progress=progress)


_STATIC = Method(_prune_configs, lambda grid, run, seed, **kw: run_one(grid, run, seed, **kw))
METHOD_TABLE: dict[str, Method] = {
    "sigmab": Method(_tree_configs, lambda grid, run, seed, **kw: run_one(grid, run, seed, **kw), tree=True),
    "nested": Method(_single_config(NestedConfig, "nested"), lambda grid, run, seed, **kw: run_nested(
        grid, run, seed, **kw), first_result=lambda run_id, seed: _route_file(run_id, "L0", seed)),
    "dispatch": Method(_single_config(DispatchConfig, "dispatch"), _dispatch_run,
                       first_result=lambda run_id, seed: front_file(run_id, 0, seed),
                       check=lambda run: model_sources(run, runs_dir=RUNS, resolve=_resolve)),
    **dict.fromkeys(CRITERIA.names(), _STATIC),
}


def method_of(run: dict[str, Any]) -> Method:
    return METHOD_TABLE[run.get("method", "sigmab")]


def add_diagnosis(run: dict[str, Any], seed: int, *, progress: bool, runs_dir: Path = RUNS,
                  results_dir: Path = CIFAR_RESULTS) -> Path:
    """Add the leaf-gap / routing-headroom ``diagnosis`` to a result written before it existed.

    The tree is re-evaluated from its run folder; its test Top-1 must reproduce the stored one.
    """
    out = results_dir / f"{run['id']}-s{seed}.json"
    result = json.loads(out.read_text())
    tree_dir = runs_dir / f"{run['id']}-s{seed}" / "tree"
    if not (tree_dir / FINETUNED_WEIGHTS).is_file():
        raise ConfigError(f"{out} has no fine-tuned tree in {tree_dir} to diagnose; rerun it")
    test = evaluate_tree_folder(tree_dir, split="test", diagnose=True, progress=progress)
    if abs(test["top1"] - result["top1"]) > 1e-6:
        raise ConfigError(f"{tree_dir} gives test top-1 {test['top1']}, not the {result['top1']} in {out}")
    atomic_write_json(out, {**result, "diagnosis": test["diagnosis"]})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="grid YAML (benchmarks/configs/)")
    parser.add_argument("--only", nargs="*", help="run ids to do (default: all)")
    parser.add_argument("--seeds", nargs="*", type=int, help="override the grid's seeds")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--data", help="dataset location, overriding the grid's 'data'")
    parser.add_argument("--diagnose", action="store_true",
                        help="only add the routing diagnosis to finished results that lack one")
    args = parser.parse_args()
    try:
        grid = load_grid(args.config)
        if args.data:
            grid["data"] = args.data
        run_grid(grid, args)
    except ConfigError as exc:
        raise SystemExit(f"benchmarks.cifar: error: {exc}") from None


def run_grid(grid: dict[str, Any], args: argparse.Namespace) -> None:
    progress = not args.no_progress
    for run in grid["runs"]:
        if args.only and run["id"] not in args.only:
            continue
        for seed in args.seeds if args.seeds is not None else run.get("seeds", [0]):
            method = method_of(run)
            done = grid_results(grid) / method.first_result(run["id"], seed)
            if args.diagnose:
                if method.tree and done.is_file() and json.loads(done.read_text()).get("diagnosis") is None:
                    path = add_diagnosis(run, seed, progress=progress, results_dir=grid_results(grid))
                    print(f"{run['id']} seed {seed}: diagnosed, {path}")
                continue
            if done.is_file():
                print(f"{run['id']} seed {seed}: result exists, skipped", flush=True)
                continue
            print(f"{run['id']} seed {seed}: starting", flush=True)
            written = method.run(grid, run, seed, progress=progress, results_dir=grid_results(grid))
            print(f"{run['id']} seed {seed}: wrote {written}", flush=True)


if __name__ == "__main__":
    main()
