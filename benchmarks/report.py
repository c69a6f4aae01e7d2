"""Generate BENCHMARKS.md from the result files in benchmarks/results/.

Every figure in BENCHMARKS.md comes from a JSON file there; a missing or malformed file is an
error naming the file, never silently skipped.

    python -m benchmarks.report                # rewrites BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.c100_report import c100_section, c100_specialise_section, is_c100, write_c100_plot
from benchmarks.cifar_report import cifar_section, write_cifar_plots
from benchmarks.common import RESULTS, ROOT
from benchmarks.dense_eval import REQUIRED as DENSE_REQUIRED
from benchmarks.edge_report import edge_section, write_edge_plots
from benchmarks.int8_graph import REQUIRED as INT8_GRAPH_REQUIRED
from benchmarks.int8_report import REQUIRED as INT8_REQUIRED
from benchmarks.int8_report import SENSITIVITY_REQUIRED, int8_section, int8_sensitivity_section
from benchmarks.int8_speed import REQUIRED as INT8_SPEED_REQUIRED
from benchmarks.points_report import points_section, write_points_plots
from benchmarks.specialise_report import REQUIRED as SPECIALISE_REQUIRED
from benchmarks.specialise_report import specialise_section, write_specialise_plot
from benchmarks.train_speed import REQUIRED as TRAIN_SPEED_REQUIRED
from sigmab.data import get_dataset_info
from sigmab.errors import ConfigError
from sigmab.eval import RESULT_FIELDS
from sigmab.utils.io import atomic_write_text

Result = dict[str, Any]
REQUIRED: dict[str, tuple[str, ...]] = {
    "eval_speed": ("model", "n_samples", "batch_size", "top1", "cli_seconds", "loop_seconds_nchw",
                   "loop_seconds_channels_last", "channels_last_speedup", "target_seconds", "machine", "git_commit"),
    "demo_time": ("command", "seconds", "target_seconds", "machine", "git_commit"),
    "sigmab_engine": ("model", "calib_size", "convert_config", "convert_seconds", "convert_target_seconds",
                      "batch_size", "batch_seconds", "throughput_speedup", "ideal_speedup_from_macs",
                      "fraction_of_ideal", "fraction_target", "engine_efficiency_vs_single_path",
                      "latency_batch1_ms", "latency_speedup", "dense_macs", "active_macs_mean",
                      "active_params_mean", "dense_params", "machine", "git_commit"),
}
REQUIRED["sigmab_smoke"] = ("model", "convert_args", "finetune_args", "converted", "finetuned",
                             "finetune_metrics_csv", "convert_seconds", "finetune_seconds", "machine", "git_commit")
REQUIRED["cifar_run"] = ("model", "dataset", "method", "config", *RESULT_FIELDS, "finetune_epochs", "wall_seconds",
                          "seed", "git_commit", "run_id")
REQUIRED["edge"] = ("model", "tree", "pruned", "policies", "tree_top1", "leaf_share", "n_inputs", "orders", "devices",
                    "workloads", "results", "sweep_device", "sweep", "machine", "git_commit")
REQUIRED["inference_speed"] = ("model", "batch_size", "latency_inputs", "repeats", "baseline", "rows", "busiest_leaf",
                               "leaf_share", "macs", "onnxruntime", "machine", "git_commit")
REQUIRED["pointnet_speed"] = ("batch_size", "repeats", "threads", "forward", "kernels", "machine", "git_commit")
REQUIRED["resnet50_analytic"] = ("model", "input_size", "dense_params", "dense_macs", "published_cut", "rows", "chosen",
                                 "machine", "git_commit")
REQUIRED["epoch_time"] = ("grid", "config", "model", "dataset", "device", "batch_size", "epochs", "epoch_seconds",
                          "projected_minutes", "budget_minutes", "fits_budget", "machine", "git_commit")
REQUIRED["specialise"] = SPECIALISE_REQUIRED
REQUIRED["int8"] = INT8_REQUIRED
REQUIRED["int8_sensitivity"] = SENSITIVITY_REQUIRED
REQUIRED["dense_pretrained"] = DENSE_REQUIRED
REQUIRED["train_speed"] = TRAIN_SPEED_REQUIRED
REQUIRED["int8_graph"] = INT8_GRAPH_REQUIRED
REQUIRED["int8_speed"] = INT8_SPEED_REQUIRED
REQUIRED["dispatch_search"] = ("grid", "run_id", "seeds", "config", "rows", "mean_hypervolume", "adopt_nsga2",
                               "machine", "git_commit")
EXPECTED_FILES = ("eval_speed_resnet56.json", "demo_time.json", "sigmab_engine_resnet56.json",
                  "sigmab_smoke_resnet20.json")
PLOTS = ROOT / "benchmarks" / "plots"


class ReportError(SystemExit):
    def __init__(self, message: str) -> None:
        super().__init__(f"benchmarks.report: error: {message}")


def load_results(folder: Path) -> dict[str, list[Result]]:
    for name in EXPECTED_FILES:
        if not (folder / name).is_file():
            raise ReportError(f"missing result file {folder / name}; regenerate it (see BENCHMARKS.md)")
    by_kind: dict[str, list[Result]] = {}
    patterns = ("*.json", "cifar/*.json", "points/*.json", "specialise/*.json", "train_speed/*.json")
    for path in [p for pattern in patterns for p in sorted(folder.glob(pattern))]:
        try:
            result = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ReportError(f"{path}: not valid JSON ({exc})") from None
        kind = result.get("benchmark") if isinstance(result, dict) else None
        if kind not in REQUIRED:
            raise ReportError(f"{path}: unknown or missing 'benchmark' kind {kind!r}")
        missing = [k for k in REQUIRED[kind] if k not in result]
        if missing:
            raise ReportError(f"{path}: missing fields {missing}")
        result["_file"] = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
        by_kind.setdefault(kind, []).append(result)
    return by_kind


def _machine(r: Result) -> str:
    m = r["machine"]
    return f"{m['cpu_count']} CPUs, {m['torch_threads']} torch threads, torch {m['torch']}"


def _eval_speed(results: list[Result]) -> list[str]:
    lines = ["## Evaluation speed (`sigmab eval`)", "",
             "| model | images | batch | top-1 | `sigmab eval` wall (median) | loop NCHW | loop channels-last | "
             "channels-last speed-up | target | source |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        verdict = "met" if r["cli_seconds"]["median"] <= r["target_seconds"] else "**missed**"
        lines.append(
            f"| {r['model']} | {r['n_samples']:,} | {r['batch_size']} | {', '.join(f'{t:.2f}' for t in r['top1'])}% "
            f"| {r['cli_seconds']['median']:.1f} s ({len(r['cli_seconds']['runs'])} runs) "
            f"| {r['loop_seconds_nchw']['median']:.1f} s | {r['loop_seconds_channels_last']['median']:.1f} s "
            f"| {r['channels_last_speedup']:.2f}x | <= {r['target_seconds']:.0f} s: {verdict} | `{r['_file']}` |")
    lines += ["", f"Machine: {_machine(results[0])}. The wall time covers the whole command: process start, "
              "loading the checkpoint and the 10,000 images, and evaluation. The layout ratio is the median NCHW "
              "loop time over the median channels-last loop time, measured alternately in the same run.",
              "", "Regenerate: `python -m benchmarks.eval_speed` (needs `../shared`).", ""]
    return lines


def _demo_time(results: list[Result]) -> list[str]:
    lines = ["## `make demo` from a fresh clone", "", "| command | wall (median) | runs | target | source |",
             "|---|---|---|---|---|"]
    for r in results:
        s = r["seconds"]
        verdict = "met" if s["median"] <= r["target_seconds"] else "**missed**"
        lines.append(f"| `{r['command']}` | {s['median']:.1f} s | {', '.join(f'{v:.1f}' for v in s['runs'])} s "
                     f"| <= {r['target_seconds']:.0f} s: {verdict} | `{r['_file']}` |")
    lines += ["", f"Machine: {_machine(results[0])}. Each run clones the repository, creates the virtual "
              "environment, installs sigmab with its pinned dependencies (pip's wheel cache warm) and runs "
              "`sigmab demo`.", "", "Regenerate: `python -m benchmarks.demo_time`.", ""]
    return lines


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _sigmab_engine(results: list[Result]) -> list[str]:
    lines = ["## SigmaB engine: conversion and hard-routing inference", ""]
    for r in results:
        c = r["convert_config"]
        b = r["batch_seconds"]
        lat = r["latency_batch1_ms"]
        conv = r["convert_seconds"]["median"]
        lines += [
            f"{r['model']}, depth-{c['depth']} tree (inner widths {c['widths'] or 'default 0.5'}, residual widths "
            f"{c['residual_widths'] or 'default 1.0'}), calibration on {r['calib_size']:,} training images, "
            "converted weights (no fine-tuning: routing and cost do not depend on it).", "",
            "| measure | dense | SigmaB | ratio | target | verdict |", "|---|---|---|---|---|---|",
            f"| conversion wall time | | {conv:.1f} s ({len(r['convert_seconds']['runs'])} runs) | | "
            f"< {r['convert_target_seconds']:.0f} s | {_verdict(conv < r['convert_target_seconds'])} |",
            f"| active MACs / input (mean) | {r['dense_macs']:,} | {r['active_macs_mean']:,.0f} | "
            f"{r['ideal_speedup_from_macs']:.2f}x ideal | | |",
            f"| batch-{r['batch_size']} time | {b['dense']['median'] * 1e3:.0f} ms "
            f"| {b['tree']['median'] * 1e3:.0f} ms "
            f"| {r['throughput_speedup']:.2f}x = {r['fraction_of_ideal']:.2f} of ideal | >= {r['fraction_target']:.1f}"
            f" of ideal | {_verdict(r['fraction_of_ideal'] >= r['fraction_target'])} |",
            f"| batch-{r['batch_size']}: one path on all inputs, no routing (engine bound) | | "
            f"{b['single_path_bound']['median'] * 1e3:.0f} ms | engine at {r['engine_efficiency_vs_single_path']:.2f}"
            " of the bound | | |",
            f"| batch-1 latency (median input) | {lat['dense']['median']:.2f} ms | {lat['tree']['median']:.2f} ms | "
            f"{r['latency_speedup']:.2f}x | reported | |",
            "", f"Machine: {_machine(r)}. Times are medians of alternating repeats in one run "
            f"(`{r['_file']}`).", "",
        ]
    lines += ["Regenerate: `python -m benchmarks.sigmab_engine` (needs `../shared`).", ""]
    return lines


def _sigmab_smoke(results: list[Result]) -> list[str]:
    lines = ["## SigmaB end to end on the shared ResNet-20 (small budget)", ""]
    for r in results:
        c, f = r["converted"], r["finetuned"]
        lines += [
            f"`sigmab convert {' '.join(r['convert_args'])}` then `sigmab finetune {' '.join(r['finetune_args'])}`, "
            f"evaluated with `sigmab eval --json` on the {f['n_samples']:,} CIFAR-10 test images. This is a check "
            "that the commands work on real data at a tiny budget, not a tuned result.", "",
            "| | top-1 | active params (mean) | reduction | stored params | active MACs (mean) | leaf shares |",
            "|---|---|---|---|---|---|---|",
            f"| dense | {f['dense_top1']:.2f}% | {f['dense_params']:,} | | {f['dense_params']:,} "
            f"| {f['dense_macs']:,} | |",
        ]
        for label, d in (("converted (no fine-tuning)", c), ("fine-tuned", f)):
            shares = ", ".join(f"{100 * leaf['share']:.1f}%" for leaf in d["leaves"])
            lines.append(f"| {label} | {d['top1']:.2f}% | {d['active_params_mean']:,.0f} | "
                         f"{100 * d['active_params_reduction']:.1f}% | {d['stored_params']:,} | "
                         f"{d['active_macs_mean']:,.0f} | {shares} |")
        lines += ["", "Per epoch (`metrics.csv`):", "", "```", r["finetune_metrics_csv"].strip(), "```", "",
                  f"Conversion and evaluation {r['convert_seconds']:.0f} s, fine-tuning {r['finetune_seconds']:.0f} s "
                  f"({_machine(r)}; `{r['_file']}`).", ""]
    lines += ["Regenerate: `python -m benchmarks.sigmab_smoke` (needs `../shared`).", ""]
    return lines


def _inference_speed(results: list[Result]) -> list[str]:
    lines = ["## CPU inference: eager PyTorch and exported graphs in onnxruntime", ""]
    for r in results:
        macs = r["macs"]
        lines += [
            f"{r['model']} on CIFAR-10 test images: batch-{r['batch_size']} throughput and batch-1 latency (median "
            f"over {r['latency_inputs']} single images), {r['repeats']} alternating repeats in one run; ratios are "
            f"medians of per-repeat ratios against {r['baseline']}. MACs per input: dense {macs['dense']:,}, "
            f"fpgm-66% {macs['fpgm-66%']:,}, SigmaB mean {macs['sigmab_mean']:,.0f} (busiest leaf "
            f"{r['busiest_leaf']}).", "",
            "| engine | batch time (median) | images/s | throughput vs dense eager | batch-1 latency | "
            "latency vs dense eager |", "|---|---|---|---|---|---|"]
        for name, row in r["rows"].items():
            lines.append(f"| {name} | {1e3 * row['batch_seconds']['median']:.0f} ms | "
                         f"{row['throughput_img_per_s']:,.0f} | {row['throughput_speedup']:.2f}x | "
                         f"{row['latency_ms']['median']:.2f} ms | {row['latency_speedup']:.2f}x |")
        lines += ["", f"Machine: {_machine(r)}; onnxruntime {r['onnxruntime']}. Source: `{r['_file']}`.", "",
                  "Regenerate: `python -m benchmarks.inference_speed` (needs the ResNet-56 run folders and "
                  "`../shared`).", ""]
    return lines


def _resnet50_analytic(results: list[Result]) -> list[str]:
    lines = ["## ResNet-50 (torchvision layout): analytic cost of SigmaB trees", ""]
    for r in results:
        lo, hi = r["published_cut"]
        lines += [
            f"Per-path active parameters and MACs at {r['input_size'][0]}x{r['input_size'][1]} against dense "
            f"({r['dense_params']:,} parameters, {r['dense_macs'] / 1e9:.2f} GMACs), uniform leaf shares; the "
            f"published SigmaB cut is {100 * lo:.0f}-{100 * hi:.0f}% of active parameters. Costs depend only on the "
            "kept channel counts (no training, no data).", "",
            "| depth | split points | inner widths | residual widths | stored params | active params (mean) | "
            "params cut | active GMACs | MACs cut |", "|---|---|---|---|---|---|---|---|---|"]
        for row in r["rows"]:
            c = row["config"]
            mark = " **(default)**" if c == r["chosen"] else ""
            lines.append(f"| {c['depth']} | {', '.join(c['split_points'])} | {c['widths']} | "
                         f"{c.get('residual_widths', '1.0')} | {row['stored_params']:,} | "
                         f"{row['active_params_mean']:,.0f} | {100 * row['active_params_cut']:.1f}%{mark} | "
                         f"{row['active_macs_mean'] / 1e9:.2f} | {100 * row['active_macs_cut']:.1f}% |")
        lines += ["", "Default (what `sigmab convert --depth 2` uses for bottleneck ResNets when no widths or split "
                  "points are given): of the trees reaching the published cut, the one keeping the most active "
                  f"parameters. Source: `{r['_file']}`. Regenerate: `python -m benchmarks.resnet50_analytic`.", ""]
    return lines


def _on_point_sets(r: Result) -> bool:
    """Grid runs on point-set datasets get their own section; image grids (CIFAR...) share the CIFAR one."""
    try:
        return get_dataset_info(r["dataset"]).augment.points
    except ConfigError:
        return False


def _split_grids(runs: list[Result]) -> tuple[list[Result], list[Result], list[Result]]:
    """(CIFAR-10 and other image grids, the CIFAR-100 study, point-set grids): each has its own section."""
    points = [r for r in runs if _on_point_sets(r)]
    c100 = [r for r in runs if is_c100(r)]
    return [r for r in runs if not _on_point_sets(r) and not is_c100(r)], c100, points


def grid_sections(runs: list[Result]) -> list[str]:
    images, c100, points = _split_grids(runs)
    return ((cifar_section(images) if images else []) + (c100_section(c100) if c100 else [])
            + (points_section(points) if points else []))


def _pointnet_speed(results: list[Result]) -> list[str]:
    lines = ["## PointNet++ on 2 cores: forward pass and point kernels", ""]
    for r in results:
        b = r["batch_size"]
        lines += [f"Eval-mode forward of a batch of {b} random point sets, median of {r['repeats']} after a warm-up, "
                  f"{r['threads']} torch threads.", "",
                  "| model | points | centers | params | MMACs per input | batch time | point sets/s |",
                  "|---|---|---|---|---|---|---|"]
        for f in r["forward"]:
            lines.append(f"| {f['model']} | {f['points']} | {f['centers']} | {f['params']:,} | "
                         f"{f['macs_per_input'] / 1e6:.0f} | {f['ms']['median']:.1f} ms | "
                         f"{f['inputs_per_second']:,.0f} |")
        lines += ["", "Kernels on the same batch: farthest-point sampling of S centers from N points, and ball query "
                  "(K neighbours within radius r) at several chunk sizes, the default in bold. A chunk holds at most "
                  "`chunk_elements` distances; the last column is what one unchunked (B, S, N) distance matrix would "
                  "take.", "",
                  "| N | S | K | r | FPS | ball query (centers per chunk: time, distance memory) | full matrix |",
                  "|---|---|---|---|---|---|---|"]
        for k in r["kernels"]:
            chunks = "; ".join(("**{}**" if c["default"] else "{}").format(
                f"{c['centers_per_chunk']}: {c['ms']['median']:.1f} ms, {c['distance_mib']:.1f} MiB")
                for c in k["ball_query"])
            lines.append(f"| {k['points']} | {k['centers']} | {k['neighbors']} | {k['radius']} | "
                         f"{k['fps_ms']['median']:.1f} ms | {chunks} | {k['full_matrix_mib']:.0f} MiB |")
        lines += ["", f"Machine: {_machine(r)}. Source: `{r['_file']}`. Regenerate: `python -m "
                  "benchmarks.pointnet_speed`.", ""]
    return lines


def _specialise_sections(results: list[Result]) -> list[str]:
    """The CIFAR-10 split-from-prune study, and its CIFAR-100 runs in a section of their own."""
    c10, c100 = [r for r in results if not is_c100(r)], [r for r in results if is_c100(r)]
    return (specialise_section(c10) if c10 else []) + (c100_specialise_section(c100) if c100 else [])


def _train_speed(results: list[Result]) -> list[str]:
    lines = ["## Training speed: bf16 autocast and channels-last against fp32 NCHW (`benchmarks.train_speed`)", ""]
    for r in results:
        lines += [f"SGD steps of batch {r['batch_size']} on one fixed batch (median of {r['steps']} steps per round, "
                  f"rounds alternated {r['repeats']} times, the median round), CPU: {r['cpu_model']} "
                  f"(fast bf16: {'yes' if r['bf16_fast'] else 'no'}), {_machine(r)}. `--amp auto` picks bf16 on "
                  "this CPU; the speed-up is over fp32 NCHW of the same model and phase.", "",
                  "| model | phase | amp | memory format | samples/s | speed-up |", "|---|---|---|---|---|---|"]
        for row in r["rows"]:
            lines.append(f"| {row['model']} | {row['phase']} | {row['amp']} | {row['memory_format']} | "
                         f"{row['samples_per_s']:.0f} | {row['speedup_vs_fp32_nchw']:.2f}x |")
        loader = r.get("loader")
        if loader:
            lines += ["", f"Data path: {loader['model']} on {loader['dataset']} (bf16, channels-last) fed by the real "
                      f"loader with augmentation runs at {loader['real_samples_per_s']:.0f} samples/s, "
                      f"{loader['ratio']:.2f} of the same steps on a synthetic batch "
                      f"({loader['synthetic_samples_per_s']:.0f}/s): target >= 0.9, "
                      f"{_verdict(loader['ratio'] >= 0.9)}."]
        lines += ["", f"Source: `{r['_file']}`. Regenerate: `python -m benchmarks.train_speed --loader`.", ""]
    return lines


def _int8_graph(results: list[Result]) -> list[str]:
    lines = ["## int8 graphs as onnxruntime runs them (`benchmarks.int8_graph`)", "",
             "A QDQ convolution is integer only where onnxruntime fuses it into `QLinearConv`; one it leaves alone "
             "runs in float on weights dequantised at every call. Operator counts of the graph onnxruntime runs "
             "(`ORT_ENABLE_ALL`), for a dense model exported and quantised by sigmab:", "",
             "| model | activations | convolutions | fused into QLinearConv | left in float | Transpose nodes | "
             "QLinearAdd |", "|---|---|---|---|---|---|---|"]
    for r in results:
        for row in r["rows"]:
            lines.append(f"| {r['arch']} | {row['activations']} | {row['convs']} | {row['fused_convs']} | "
                         f"{len(row['float_convs'])} | {row['transposes']} | "
                         f"{row['optimised_ops'].get('QLinearAdd', 0)} |")
        lines += ["", f"onnxruntime {r['onnxruntime']}, CPU: {r['cpu_model']}. With int8 (S8S8) activations about "
                  "half the convolutions stay in float and NHWC transposes surround the rest, the likely reason "
                  "the int8 exports of earlier sessions ran slower than fp32 (their speed with uint8 is not measured "
                  "yet); with uint8 (U8S8) activations every convolution and residual add is fused. "
                  "`sigmab export --int8` now picks uint8 on x86 "
                  f"(`--int8-activations`). Source: `{r['_file']}`. Regenerate: `python -m benchmarks.int8_graph`.",
                  ""]
    return lines


def _int8_speed(results: list[Result]) -> list[str]:
    lines = ["## int8 against fp32 in onnxruntime (`benchmarks.int8_speed`)", ""]
    for r in results:
        lines += [f"{r['model']} (random weights: speed does not depend on them), its FPGM prune and one tree path, "
                  f"each exported and quantised by sigmab; onnxruntime {r['onnxruntime']} on {r['cpu_model']} "
                  f"(VNNI: {'yes' if r.get('vnni') else 'no'}), {_machine(r)}. Medians of {r['rounds']} rounds "
                  "that alternate the three graphs. Target: int8 at least as fast as fp32 at batch "
                  f"{r['batch_size']}.", "",
                  f"| model | graph | samples/s (batch {r['batch_size']}) | vs fp32 | batch-1 latency | vs fp32 | "
                  "target |", "|---|---|---|---|---|---|---|"]
        for row in r["rows"]:
            target = "" if row["precision"] == "fp32" else _verdict(row["throughput_vs_fp32"] >= 1.0)
            graph = {"fp32": "fp32", "int8": "int8 activations (S8S8)", "uint8": "uint8 activations (U8S8, "
                     "the default on x86)"}[row["precision"]]
            lines.append(f"| {row['model']} | {graph} | {row['samples_per_s']:.0f} | "
                         f"{row['throughput_vs_fp32']:.3f}x | {row['latency_ms']:.2f} ms | "
                         f"{row['latency_vs_fp32']:.2f}x | {target} |")
        lines += ["", f"Source: `{r['_file']}`. Regenerate: `python -m benchmarks.int8_speed`.", ""]
    return lines


def _dense_pretrained(results: list[Result]) -> list[str]:
    lines = ["## The pretrained dense models (`../shared`)", "",
             "Every study starts from one of these. Each row is `sigmab eval` on the full test split (10,000 images), "
             "with the shortcut layout and input statistics sigmab reads off the file.", "",
             "| data set | model | shortcuts | test Top-1 | published | parameters | MACs / input | input mean / std |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        for row in r["rows"]:
            stats = f"{', '.join(f'{v:g}' for v in row['mean'])} / {', '.join(f'{v:g}' for v in row['std'])}"
            lines.append(f"| {row['dataset']} | {row['arch']} | option {row['shortcut']} | {row['top1']:.2f}% | "
                         f"{row['published_top1']:.2f}% | {row['params']:,} | {row['macs']:,} | {stats} |")
        lines += ["", f"Machine: {_machine(r)}. Source: `{r['_file']}`. Regenerate: `python -m benchmarks.dense_eval` "
                  "(needs `../shared`); each row's command is recorded in the file.", ""]
    return lines


def _epoch_time(results: list[Result]) -> list[str]:
    lines = ["## Dense training time of the grids that train their own model", "",
             "One epoch of the grid's `train:` settings (its evaluation pass included), timed on the device named; "
             "the projection is that epoch times the grid's epoch count.", "",
             "| grid | model | device | batch | one epoch | epochs | projected | budget | source |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['grid']} | {r['model']} | {r['device']} ({_machine(r)}) | {r['batch_size']} | "
                     f"{r['epoch_seconds']:.0f} s | {r['epochs']} | {r['projected_minutes']:.0f} min | "
                     f"{r['budget_minutes']:.0f} min: {_verdict(r['fits_budget'])} | `{r['_file']}` |")
    lines += ["", "Regenerate: `python -m benchmarks.epoch_time --config <grid YAML>`.", ""]
    return lines


def _dispatch_search(results: list[Result]) -> list[str]:
    lines = ["## The dispatcher's search: sigmab's GA against pymoo's NSGA-II", ""]
    for r in results:
        c = r["config"]
        lines += [
            f"Dispatch run `{r['run_id']}` of `{r['grid']}` (learn on {c['learn_on']}): both searches get population "
            f"{c['population']} for {c['generations']} generations (the same number of dispatcher trainings, "
            f"{r['rows'][0]['evaluations']}), on the same split and seeds. A front's hypervolume is in (Top-1 %, "
            "MACs as a share of the dearest model's) on the report half, bounded by the cheapest model's Top-1 less "
            "1 pp and 105% of the dearest model's MACs; larger is better.", "",
            "| seed | search | hypervolume | front points | best held-out Top-1 | wall time |",
            "|---|---|---|---|---|---|"]
        for row in r["rows"]:
            lines.append(f"| {row['seed']} | {row['search']} | {row['hypervolume']:.4f} | {len(row['front'])} | "
                         f"{row['best_val_top1_per_generation'][-1]:.2f}% | {row['seconds']:.0f} s |")
        mean = r["mean_hypervolume"]
        verdict = "at least as good: the nsga2 search is worth offering" if r["adopt_nsga2"] else \
            "worse: the hand-written GA stays the default"
        lines += ["", f"Mean hypervolume: GA {mean['ga']:.4f}, NSGA-II {mean['nsga2']:.4f} ({verdict}). "
                  f"Machine: {_machine(r)}. Source: `{r['_file']}`. Regenerate: `python -m benchmarks.dispatch_search "
                  f"--config benchmarks/configs/{r['grid']} --only {r['run_id']} --seeds "
                  f"{' '.join(str(s) for s in r['seeds'])}`.", ""]
    return lines


SECTIONS: dict[str, Callable[[list[Result]], list[str]]] = {
    "dense_pretrained": _dense_pretrained, "train_speed": _train_speed, "eval_speed": _eval_speed,
    "demo_time": _demo_time, "sigmab_engine": _sigmab_engine,
    "sigmab_smoke": _sigmab_smoke, "inference_speed": _inference_speed, "resnet50_analytic": _resnet50_analytic,
    "pointnet_speed": _pointnet_speed, "epoch_time": _epoch_time, "cifar_run": grid_sections,
    "specialise": _specialise_sections, "edge": edge_section, "int8": int8_section,
    "int8_sensitivity": int8_sensitivity_section, "int8_graph": _int8_graph,
    "int8_speed": _int8_speed,
    "dispatch_search": _dispatch_search}




def write_plots(by_kind: dict[str, list[Result]], folder: Path = PLOTS) -> None:
    images, c100, points = _split_grids(by_kind.get("cifar_run", []))
    if images:
        write_cifar_plots(images, folder)
    if c100:
        write_c100_plot(c100, folder)
    if points:
        write_points_plots(points, folder)
    if by_kind.get("edge"):
        write_edge_plots(by_kind["edge"], folder)
    if any(not is_c100(r) for r in by_kind.get("specialise", [])):
        write_specialise_plot([r for r in by_kind["specialise"] if not is_c100(r)], folder / "specialise.png")


def render(by_kind: dict[str, list[Result]]) -> str:
    lines = ["# Benchmarks", "",
             "Generated by `python -m benchmarks.report` from the JSON files in `benchmarks/results/`; "
             "do not edit by hand.", ""]
    for kind, section in SECTIONS.items():
        if kind in by_kind:
            lines += section(by_kind[kind])
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    by_kind = load_results(args.results)
    write_plots(by_kind)
    atomic_write_text(args.out, render(by_kind))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
