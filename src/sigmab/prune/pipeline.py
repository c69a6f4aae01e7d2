"""Static pruning from files: a dense checkpoint and a dataset in, a pruned-model folder out; and its
evaluation in the same result fields as a SigmaB tree (for a static model, active = stored)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sigmab.config import save_config
from sigmab.errors import ConfigError
from sigmab.eval import ModelReport, evaluate, profile_model
from sigmab.importance.filters import get_criterion
from sigmab.inputs import calibration_images, folder_eval_data, load_dense_for
from sigmab.models import build_from_meta, load_model
from sigmab.models.checkpoint import recorded_source
from sigmab.prune.plan import PruneConfig, prune
from sigmab.prune.spec import FINETUNED_WEIGHTS, PRUNED_SPEC, PRUNED_WEIGHTS, load_pruned, save_pruned
from sigmab.utils.io import atomic_write_json, building_folder


def prune_checkpoint(checkpoint: str | Path, *, dataset: str, out: str | Path, cfg: PruneConfig, seed: int = 0,
                     arch: str | None = None, data_root: str | None = None, progress: bool = False,
                     finetune_config: Any = None) -> dict[str, Any]:
    """Prune a dense checkpoint into a folder at ``out``; returns the report (also ``out/report.json``).

    ``seed`` draws the calibration images of data-driven criteria. ``finetune_config`` (the fine-tuning that will
    follow) is saved in the folder with the prune (``finetune/config.yaml``), so a ``--resume`` after a crash or
    a divergence before the first epoch ended still fine-tunes with it, not with defaults.
    """
    out = Path(out)
    if (out / PRUNED_SPEC).exists():
        raise ConfigError(f"{out} already holds a pruned model; choose another --out (or --resume)")
    with building_folder(out, what="pruned-model") as folder:
        report = _prune_into(folder, checkpoint, dataset=dataset, cfg=cfg, seed=seed, arch=arch,
                             data_root=data_root, progress=progress)
        if finetune_config is not None:
            save_config(finetune_config, folder / "finetune" / "config.yaml")
    return report


def _prune_into(out: Path, checkpoint: str | Path, *, dataset: str, cfg: PruneConfig, seed: int, arch: str | None,
                data_root: str | None, progress: bool) -> dict[str, Any]:
    model, _ = load_dense_for(checkpoint, dataset=dataset, arch=arch)
    images = None
    if get_criterion(cfg.criterion).statistic is not None:
        images = calibration_images(dataset, data_root, model.meta, size=cfg.calib_size, seed=seed)
    t0 = time.perf_counter()
    net, spec = prune(model, cfg, images, progress=progress)
    seconds = time.perf_counter() - t0
    spec.prune_config["source"] = {
        "checkpoint": str(Path(checkpoint).resolve()), "arch": model.meta.arch, "dataset": dataset,
        "data_root": str(Path(data_root).resolve()) if data_root else None, "calib_seed": seed}
    input_shape = (model.meta.in_channels, *model.meta.input_size)
    dense, pruned = profile_model(model, input_shape), profile_model(net, input_shape)
    report = {"criterion": cfg.criterion, "scope": cfg.scope, "uniform_keep": spec.prune_config["uniform_keep"],
              "params": pruned.params, "macs": pruned.macs, "dense_params": dense.params, "dense_macs": dense.macs,
              "params_reduction": 1.0 - pruned.params / dense.params, "prune_seconds": seconds}
    save_pruned(net, spec, out)
    atomic_write_json(out / "report.json", report)
    return report


def evaluate_pruned_folder(folder: str | Path, *, dataset: str | None = None, data_root: str | None = None,
                           split: str = "test", batch_size: int = 256, with_dense: bool = True,
                           val_fraction: float = 0.0, seed: int = 0, precision: str = "fp32",
                           progress: bool = False, weights: str | None = None) -> dict[str, Any]:
    """Top-1 and costs of the pruned model in ``folder`` (``weights``, else the fine-tuned weights when present),
    with the dense model beside it when its checkpoint is readable: a :class:`ModelReport` (one path: active =
    stored) with the folder's weights and pruning settings beside it."""
    folder = Path(folder)
    net, spec = load_pruned(folder, weights=weights)
    source = recorded_source(folder, spec.prune_config.get("source"))
    meta = spec.dense_meta
    dataset, data, loader = folder_eval_data(source, meta, what="pruned-model", dataset=dataset,
                                             data_root=data_root, split=split, val_fraction=val_fraction, seed=seed,
                                             batch_size=batch_size)
    result = evaluate(net, loader, progress=progress, channels_last=True)
    input_shape = data.input_shape
    profile, dense_profile = profile_model(net, input_shape), profile_model(build_from_meta(meta), input_shape)
    dense_top1 = None
    checkpoint = source.get("checkpoint")
    if with_dense and checkpoint and Path(checkpoint).is_file():
        dense = load_model(checkpoint, arch=source.get("arch"))
        dense_top1 = evaluate(dense, loader, progress=progress, channels_last=True).top1
    report = ModelReport.static(
        method=str(spec.prune_config.get("criterion")), dataset=dataset, split=split, n_samples=result.n_samples,
        top1=round(result.top1, 4), dense_top1=None if dense_top1 is None else round(dense_top1, 4),
        params=profile.params, macs=profile.macs, precision=precision, dense_params=dense_profile.params,
        dense_macs=dense_profile.macs)
    return {
        "run": str(folder),
        "weights": weights or (FINETUNED_WEIGHTS if (folder / FINETUNED_WEIGHTS).is_file() else PRUNED_WEIGHTS),
        **report.to_dict(), "params": profile.params, "macs": profile.macs,
        "prune_config": {k: v for k, v in spec.prune_config.items() if k != "source"},
    }


def format_pruned_report(r: dict[str, Any]) -> str:
    dense = "n/a" if r["dense_top1"] is None else f"{r['dense_top1']:.2f}%"
    return "\n".join([
        f"pruned ({r['method']}, {r['prune_config'].get('scope')} scope) on {r['dataset']}/{r['split']} "
        f"({r['n_samples']} samples, {r['weights']})",
        f"  top-1 {r['top1']:.2f}% | dense {dense}",
        f"  params {r['params']:,} of {r['dense_params']:,} ({100 * r['active_params_reduction']:.1f}% fewer) | "
        f"MACs {r['macs']:,} of {r['dense_macs']:,}",
    ])
