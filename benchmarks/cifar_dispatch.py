"""``method: dispatch`` runs of a benchmark grid: a PERTINENCE-style dispatcher over several finished models.

A run lists its ``models``, cheapest or not (they are ordered by measured MACs):

    - {weights: ../shared/weights/resnet20-12fca82f.th, arch: resnet20}   # a dense checkpoint
    - {run: r56-d2-w50-25-kd-6ep-s0/tree}     # a tree or pruned folder under benchmarks/runs/

and ``dispatch`` settings (:class:`sigmab.dispatch.pipeline.DispatchConfig`; ``learn_on:
test-half`` for models that trained on the whole training set, whose Top-1 is then reported on the other
half of the test split, the grid's dense model's too). Its report goes to
``benchmarks/runs/<run>-s<seed>/dispatch/report.json`` (reused when present) and every point of the
searched front becomes one shared-schema result ``<run>-f<k>-s<seed>.json``: Top-1, and mean/max active
parameters and MACs per input with the dispatcher's own included; stored = every model + the dispatcher.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import git_commit, machine
from sigmab.dispatch.pipeline import DispatchConfig, dispatch_models, dispatch_splits, load_models
from sigmab.errors import ConfigError
from sigmab.eval import BYTES_PER_WEIGHT, RESULT_FIELDS, ModelReport, evaluate, profile_model
from sigmab.models import load_model
from sigmab.utils.io import atomic_write_json


def model_sources(run: dict[str, Any], *, runs_dir: Path, resolve: Callable[[str], Path]
                  ) -> tuple[list[Path], list[str | None]]:
    """(paths, architectures) of a dispatch run's ``models``; a malformed entry is a ConfigError naming it."""
    entries = run.get("models")
    if not isinstance(entries, list) or len(entries) < 2:
        raise ConfigError(f"run {run['id']}: 'models' must list at least two models")
    paths, archs = [], []
    for entry in entries:
        if not isinstance(entry, dict) or ("weights" in entry) == ("run" in entry):
            raise ConfigError(f"run {run['id']}: each model is {{weights: PATH, arch: NAME}} or {{run: FOLDER}}, "
                              f"got {entry!r}")
        paths.append(resolve(entry["weights"]) if "weights" in entry else runs_dir / entry["run"])
        archs.append(entry.get("arch"))
    return paths, archs


def front_file(run_id: str, index: int, seed: int) -> str:
    return f"{run_id}-f{index}-s{seed}.json"


def run_dispatch_grid(grid: dict[str, Any], run: dict[str, Any], seed: int, cfg: DispatchConfig, *,
                      dense_weights: Path, runs_dir: Path, results_dir: Path, resolve: Callable[[str], Path],
                      progress: bool) -> list[Path]:
    """Search (or reuse) a dispatcher over the run's models; one result per point of its front."""
    paths, archs = model_sources(run, runs_dir=runs_dir, resolve=resolve)
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ConfigError(f"run {run['id']} needs {', '.join(missing)}: run the grid that makes them first")
    t0 = time.perf_counter()
    folder = runs_dir / f"{run['id']}-s{seed}" / "dispatch"
    if (folder / "report.json").is_file():
        report = json.loads((folder / "report.json").read_text())
    else:
        models, meta = load_models(paths, arch=archs)
        report = dispatch_models(models, meta, cfg, progress=progress)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(folder / "report.json", report)
    dense = load_model(dense_weights, arch=grid["model"])
    _, test = dispatch_splits(cfg)  # the dense model is scored on the inputs the front is reported on
    dense_top1 = evaluate(dense, test.loader(batch_size=cfg.batch_size, mean=dense.meta.mean,
                                             std=dense.meta.std)).top1
    profile = profile_model(dense, test.input_shape)
    models = report["models"]
    out = []
    for k, row in enumerate(report["front"]):
        own = row["dispatcher_params"]
        point = ModelReport(
            method="dispatch", dataset=grid["dataset"], split="test-half" if cfg.learn_on == "test-half" else "test",
            n_samples=len(test), top1=row["top1"], dense_top1=round(dense_top1, 4),
            active_params_mean=row["mean_params"], active_params_max=own + max(m["max_params"] for m in models),
            active_params_min=own + min(m["mean_params"] for m in models),
            active_macs_mean=row["mean_macs"], stored_params=own + report["stored_params_models"],
            weight_bytes_per_inference=row["mean_params"] * BYTES_PER_WEIGHT["fp32"], weight_precision="fp32",
            dense_params=profile.params, dense_macs=profile.macs)
        result = {
            "benchmark": "cifar_run", "model": grid["model"], "dataset": grid["dataset"], "method": "dispatch",
            "run_id": f"{run['id']}:f{k}", "config": {"dispatch": vars(cfg), "models": run["models"],
                                                       "settings": row["settings"]},
            **{k: point.to_dict()[k] for k in RESULT_FIELDS}, "val_top1": row["val_top1"], "dense_val_top1": None,
            "dispatch": {"models": models, "shares": row["shares"], "oracle_top1": report["oracle_top1"],
                         "dispatcher_macs": row["dispatcher_macs"], "dispatcher_params": own},
            "finetune_epochs": 0, "wall_seconds": time.perf_counter() - t0, "seed": seed,
            "git_commit": git_commit(), "machine": machine(), "finetune_metrics_csv": "",
        }
        path = results_dir / front_file(run["id"], k, seed)
        atomic_write_json(path, result)
        out.append(path)
    return out
