"""Conversion from files: a dense checkpoint and a dataset in, a tree folder out.

Tree folder: ``tree.json`` (spec, with the conversion settings and where the dense model and data
came from), ``tree.safetensors`` (converted weights) and ``report.json`` (stored and per-path
active parameters against dense). Every setting is checked before any file is written.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sigmab.errors import ConfigError
from sigmab.eval import profile_model
from sigmab.inputs import calibration_images, load_dense_for
from sigmab.models import build_from_meta
from sigmab.models.checkpoint import recorded_data_source
from sigmab.prune.spec import PRUNED_WEIGHTS, load_pruned
from sigmab.tree.convert import DEFAULT_CALIB_SIZE, Conversion, ConvertConfig, convert
from sigmab.tree.from_pruned import tree_from_pruned
from sigmab.tree.metrics import cost_summary
from sigmab.tree.spec import SPEC_FILE, save_tree
from sigmab.utils.io import atomic_write_json, building_folder


def convert_checkpoint(checkpoint: str | Path, *, dataset: str, out: str | Path, cfg: ConvertConfig,
                       arch: str | None = None, data_root: str | None = None,
                       progress: bool = False) -> tuple[Conversion, dict[str, Any]]:
    """Convert a dense checkpoint into a tree folder at ``out``; returns the conversion and its report."""
    out = Path(out)
    if (out / SPEC_FILE).exists():
        raise ConfigError(f"{out} already holds a converted tree; choose another --out")
    with building_folder(out, what="tree") as folder:
        conversion, report = _convert_into(folder, checkpoint, dataset=dataset, cfg=cfg, arch=arch,
                                           data_root=data_root, progress=progress)
    return conversion, report


def _convert_into(out: Path, checkpoint: str | Path, *, dataset: str, cfg: ConvertConfig, arch: str | None,
                  data_root: str | None, progress: bool) -> tuple[Conversion, dict[str, Any]]:
    model, _ = load_dense_for(checkpoint, dataset=dataset, arch=arch)
    images = calibration_images(dataset, data_root, model.meta, size=cfg.calib_size, seed=cfg.seed,
                                default_size=DEFAULT_CALIB_SIZE)
    t0 = time.perf_counter()
    conversion = convert(model, images, cfg, progress=progress)
    source = {"checkpoint": str(Path(checkpoint).resolve()), "arch": model.meta.arch, "dataset": dataset,
              "data_root": str(Path(data_root).resolve()) if data_root else None}
    return conversion, _save_conversion(out, conversion, model, images, source, time.perf_counter() - t0)


def convert_pruned_folder(pruned: str | Path, *, out: str | Path, cfg: ConvertConfig, progress: bool = False
                          ) -> tuple[Conversion, dict[str, Any]]:
    """Split a pruned folder (``sigmab prune``; its fine-tuned weights when present) into a tree folder at ``out``
    whose every path is that prune (:func:`sigmab.tree.from_pruned.tree_from_pruned`; with
    ``cfg.from_pruned_channels="cluster"`` the nodes after the split re-select their channels from the dense
    checkpoint the prune recorded). Calibration images come from the dataset the prune recorded."""
    out = Path(out)
    if (out / SPEC_FILE).exists():
        raise ConfigError(f"{out} already holds a converted tree; choose another --out")
    net, spec = load_pruned(pruned, weights=PRUNED_WEIGHTS if cfg.from_pruned_weights == "sliced" else None)
    recorded = spec.prune_config.get("source")
    source = recorded_data_source(pruned, recorded, purpose="calibrate the routers on")
    dense = None
    if cfg.from_pruned_channels == "cluster":  # the nodes take the dense model's statistics and weights
        if not (recorded or {}).get("checkpoint"):
            raise ConfigError(f"{pruned} does not record the dense checkpoint it was cut from, which "
                              "from_pruned_channels='cluster' reads")
        dense, _ = load_dense_for(recorded["checkpoint"], dataset=source["dataset"], arch=spec.dense_meta.arch)
    with building_folder(out, what="tree") as folder:
        images = calibration_images(source["dataset"], source.get("data_root"), spec.dense_meta,
                                    size=cfg.calib_size, seed=cfg.seed, default_size=DEFAULT_CALIB_SIZE)
        t0 = time.perf_counter()
        conversion = tree_from_pruned(net, spec, images, cfg, dense=dense)
        source = {**source, "pruned": str(Path(pruned).resolve())}
        report = _save_conversion(folder, conversion, dense if dense is not None else build_from_meta(spec.dense_meta),
                                  images, source, time.perf_counter() - t0)
    return conversion, report


def _save_conversion(out: Path, conversion: Conversion, dense: nn.Module, images: torch.Tensor,
                     source: dict[str, Any], seconds: float) -> dict[str, Any]:
    """Write ``conversion`` (with ``source`` recorded) and its cost report (against ``dense``) into ``out``."""
    conversion.spec.convert_config["source"] = source
    meta = conversion.spec.dense_meta
    input_shape = (meta.in_channels, *images.shape[2:])
    share = torch.bincount(conversion.calib_leaves, minlength=len(conversion.tree.leaves)).double()
    costs = cost_summary(conversion.tree, input_shape, share / share.sum())
    dense_cost = profile_model(dense, input_shape)
    report = {
        "dense_params": dense_cost.params, "dense_macs": dense_cost.macs, **costs,
        "stored_fraction_of_dense": costs["stored_params"] / dense_cost.params,
        "active_fraction_of_dense": costs["active_params_mean"] / dense_cost.params,
        "calib_leaf_share": (share / share.sum()).tolist(), "split_points": conversion.spec.split_points,
        "convert_seconds": seconds,
    }
    save_tree(conversion.tree, conversion.spec, out)
    atomic_write_json(out / "report.json", report)
    return report
