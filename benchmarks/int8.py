"""int8 against fp32 for what a user ships: each model exported to ONNX twice (fp32, and int8 with
``sigmab export --int8``'s quantisation), both evaluated in onnxruntime on the CIFAR-10 test split beside the
fp32 PyTorch model (Top-1, route and prediction agreement, weight bytes of the files), and both timed in the
same run: batch-1 latency and batch-256 throughput, int8 as a ratio of fp32 (median of repeats).

The models come from a YAML list (``benchmarks/configs/int8_resnet56.yaml``): a name, a run folder or a dense
checkpoint. Each model's row is kept in the result file as it is measured; a second run measures only the
models it lacks (``--force`` measures again).

    python -m benchmarks.int8 --config benchmarks/configs/int8_resnet56.yaml
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from benchmarks.common import RESULTS, ROOT, git_commit, machine, seconds, summarise
from sigmab.data import Normalize, load_split
from sigmab.export import OnnxGraphs, OnnxTreeRunner, export_any
from sigmab.export.evaluate import evaluate_export_folder
from sigmab.export.quantize import QuantizeConfig, quantize_export
from sigmab.folders import open_model
from sigmab.inputs import calibration_images
from sigmab.utils.io import atomic_write_json


def _path(value: str | None) -> Path | None:
    return None if value is None else Path(value) if Path(value).is_absolute() else (ROOT / value).resolve()


def _data_root(grid: dict[str, Any]) -> str | None:
    return str(_path(grid["data"])) if grid.get("data") else None


def _export_pair(entry: dict[str, Any], grid: dict[str, Any], work: Path, cfg: QuantizeConfig) -> tuple[Path, Path]:
    """The fp32 and int8 export folders of one model (units only for a tree, as the runner uses them)."""
    run, checkpoint = _path(entry.get("run")), _path(entry.get("checkpoint"))
    opened = open_model(run, checkpoint, arch=entry.get("arch"))
    data = _data_root(grid)
    source = {"kind": opened.kind, "run": str(run) if run else None, "checkpoint": str(checkpoint) if checkpoint
              else None, "arch": entry.get("arch"), "dataset": grid["dataset"], "data_root": data}
    fp32, int8 = work / "fp32", work / "int8"
    export_any(opened.kind, opened.model, opened.meta, fp32, paths=False, conditional=False, source=source)
    margin = work / "fp32-margin"  # the int8 export quantises routers in their margin form (same branches)
    export_any(opened.kind, opened.model, opened.meta, margin, paths=False, conditional=False, margin_routers=True,
               source=source)
    images = calibration_images(grid["dataset"], data, opened.meta, size=cfg.calib_size, seed=cfg.calib_seed)
    quantize_export(margin, int8, images.numpy(), cfg, calibration={"dataset": grid["dataset"], "split": "train",
                                                                    "images": cfg.calib_size, "seed": cfg.calib_seed})
    return fp32, int8


def _timings(fp32: Path, int8: Path, x: np.ndarray, *, repeats: int, singles: int) -> dict[str, Any]:
    """Batch and batch-1 wall times of both exports, measured alternately; ratios int8 over fp32 speed."""
    runners: dict[str, Callable[[np.ndarray], object]] = {}
    for name, folder in (("fp32", fp32), ("int8", int8)):
        graphs = OnnxGraphs(folder)
        if graphs.manifest["kind"] == "tree":
            runner = OnnxTreeRunner(folder)
            runners[name] = runner.predict
        else:
            runners[name] = lambda a, g=graphs: g.run("model", a)
    batch: dict[str, list[float]] = {k: [] for k in runners}
    latency: dict[str, list[float]] = {k: [] for k in runners}
    for fn in runners.values():
        fn(x)  # warm-up; the sessions open here
    for _ in range(repeats):
        for name, fn in runners.items():
            batch[name].append(seconds(lambda fn=fn: fn(x)))
            latency[name].append(statistics.median(seconds(lambda fn=fn, i=i: fn(x[i:i + 1])) for i in range(singles)))
    return {
        "batch_size": len(x), "repeats": repeats, "latency_inputs": singles,
        **{f"{k}_batch_seconds": summarise(v) for k, v in batch.items()},
        **{f"{k}_latency_ms": summarise([1e3 * s for s in v]) for k, v in latency.items()},
        "int8_throughput_speedup": statistics.median(f / i for f, i in zip(batch["fp32"], batch["int8"])),
        "int8_latency_speedup": statistics.median(f / i for f, i in zip(latency["fp32"], latency["int8"])),
    }


def entry_config(cfg: QuantizeConfig, entry: dict[str, Any]) -> QuantizeConfig:
    """The grid's quantisation settings with a model entry's own ``quantize:`` on top (e.g. ``keep_float: [stem]``
    for a row that keeps the stem conv in fp32 beside the fully int8 row of the same model)."""
    return dataclasses.replace(cfg, **entry.get("quantize", {}))


def measure(entry: dict[str, Any], grid: dict[str, Any], cfg: QuantizeConfig, *, repeats: int, singles: int
            ) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sigmab-int8-") as tmp:
        fp32, int8 = _export_pair(entry, grid, Path(tmp), cfg)
        print(f"{entry['name']}: exported", flush=True)
        reports = {name: evaluate_export_folder(folder, split="test") for name, folder in (("fp32", fp32),
                                                                                           ("int8", int8))}
        print(f"{entry['name']}: evaluated", flush=True)
        test = load_split(grid["dataset"], "test", root=_data_root(grid))
        meta = open_model(_path(entry.get("run")), _path(entry.get("checkpoint")), arch=entry.get("arch")).meta
        x = Normalize(meta.mean, meta.std)(test.images[:256]).numpy()
        timing = _timings(fp32, int8, x, repeats=repeats, singles=singles)
        quantization = json.loads((int8 / "export.json").read_text())["quantization"]
    row = {"name": entry["name"], "label": entry.get("label", entry["name"]), "run": entry.get("run"),
           "checkpoint": entry.get("checkpoint"), "kind": reports["int8"]["kind"], "quantization": quantization,
           "timing": timing}
    for name, report in reports.items():  # agreement: with the fp32 PyTorch model on the same inputs
        pytorch = report.get("fp32", {})
        row[name] = {**{k: report[k] for k in ("top1", "stored_bytes", "active_bytes_mean", "graph_bytes")},
                     "leaves": report.get("leaves"), "prediction_agreement": pytorch.get("prediction_agreement"),
                     "route_agreement": pytorch.get("route_agreement")}
    row["pytorch_fp32_top1"] = reports["int8"]["fp32"]["top1"]
    row["int8_minus_fp32_pp"] = round(row["int8"]["top1"] - row["fp32"]["top1"], 4)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--only", action="append", help="measure only this model (repeatable)")
    parser.add_argument("--force", action="store_true", help="measure again models the result file already has")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--latency-inputs", type=int, default=32)
    args = parser.parse_args()
    grid = yaml.safe_load(args.config.read_text())
    out = RESULTS / f"{grid['name']}.json"
    result = json.loads(out.read_text()) if out.is_file() else {"benchmark": "int8", "rows": {}}
    cfg = QuantizeConfig(**grid.get("quantize", {}))
    for entry in grid["models"]:
        if (args.only and entry["name"] not in args.only) or (entry["name"] in result["rows"] and not args.force):
            continue
        row = measure(entry, grid, entry_config(cfg, entry), repeats=args.repeats, singles=args.latency_inputs)
        result["rows"][entry["name"]] = row
        result.update({"model": grid["model"], "dataset": grid["dataset"], "git_commit": git_commit(),
                       "machine": machine(), "onnxruntime": __import__("onnxruntime").__version__})
        atomic_write_json(out, result)  # after every model: a later run measures only the rest
        print(f"{entry['name']}: fp32 {row['fp32']['top1']:.2f}% int8 {row['int8']['top1']:.2f}% "
              f"({row['int8_minus_fp32_pp']:+.2f} pp); wrote {out}", flush=True)


if __name__ == "__main__":
    main()
