"""SigmaB core performance on the shared ResNet-56: conversion time, batched hard-routing throughput
and batch-1 latency against the dense model, measured alternately in one run (median of repeats).

    python -m benchmarks.sigmab_engine        # writes benchmarks/results/sigmab_engine_resnet56.json

Throughput is compared with two bounds: the speed-up that the mean active MACs imply (dense MACs /
mean path MACs), and the time of one path run on the whole batch with no routing (what a perfect
engine would cost), which isolates the engine's own overhead.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from benchmarks.common import SHARED, seconds, summarise, write_result
from benchmarks.studies import Result, machine_summary, register_study, verdict
from sigmab.data import Normalize, load_split
from sigmab.eval import profile_model
from sigmab.models import load_model
from sigmab.tree import ConvertConfig, PathModel, convert, cost_summary

REQUIRED = ("model", "calib_size", "convert_config", "convert_seconds", "convert_target_seconds",
                      "batch_size", "batch_seconds", "throughput_speedup", "ideal_speedup_from_macs",
                      "fraction_of_ideal", "fraction_target", "engine_efficiency_vs_single_path",
                      "latency_batch1_ms", "latency_speedup", "dense_macs", "active_macs_mean",
                      "active_params_mean", "dense_params", "machine", "git_commit")


def sigmab_engine_section(results: list[Result]) -> list[str]:
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
            f"< {r['convert_target_seconds']:.0f} s | {verdict(conv < r['convert_target_seconds'])} |",
            f"| active MACs / input (mean) | {r['dense_macs']:,} | {r['active_macs_mean']:,.0f} | "
            f"{r['ideal_speedup_from_macs']:.2f}x ideal | | |",
            f"| batch-{r['batch_size']} time | {b['dense']['median'] * 1e3:.0f} ms "
            f"| {b['tree']['median'] * 1e3:.0f} ms "
            f"| {r['throughput_speedup']:.2f}x = {r['fraction_of_ideal']:.2f} of ideal | >= {r['fraction_target']:.1f}"
            f" of ideal | {verdict(r['fraction_of_ideal'] >= r['fraction_target'])} |",
            f"| batch-{r['batch_size']}: one path on all inputs, no routing (engine bound) | | "
            f"{b['single_path_bound']['median'] * 1e3:.0f} ms | engine at {r['engine_efficiency_vs_single_path']:.2f}"
            " of the bound | | |",
            f"| batch-1 latency (median input) | {lat['dense']['median']:.2f} ms | {lat['tree']['median']:.2f} ms | "
            f"{r['latency_speedup']:.2f}x | reported | |",
            "", f"Machine: {machine_summary(r)}. Times are medians of alternating repeats in one run "
            f"(`{r['_file']}`).", "",
        ]
    lines += ["Regenerate: `python -m benchmarks.sigmab_engine` (needs `../shared`).", ""]
    return lines


register_study('sigmab_engine', REQUIRED, sigmab_engine_section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=SHARED / "weights" / "resnet56-4bfd9763.th")
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "cifar10.npz.xz")
    parser.add_argument("--calib-size", type=int, default=10_000)
    parser.add_argument("--convert-repeats", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--latency-inputs", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(2)

    model = load_model(args.weights, arch="resnet56")
    norm = Normalize(model.meta.mean, model.meta.std)
    train = load_split("cifar10", "train", root=args.data)
    index = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[: args.calib_size]
    calib = norm(train.images[index.sort().values])
    cfg = ConvertConfig(depth=2, calib_size=args.calib_size)
    convert_s = []
    for i in range(args.convert_repeats):
        t0 = time.perf_counter()
        tree = convert(model, calib, cfg).tree
        convert_s.append(time.perf_counter() - t0)
        print(f"conversion {i + 1}/{args.convert_repeats}: {convert_s[-1]:.1f}s", flush=True)

    test = load_split("cifar10", "test", root=args.data)
    x = norm(test.images[: args.batch_size])
    with torch.inference_mode():
        _, leaves = tree.forward_hard(norm(test.images))
    share = torch.bincount(leaves, minlength=len(tree.leaves)).double() / len(leaves)
    costs = cost_summary(tree, (3, 32, 32), share)
    dense_profile = profile_model(model, (3, 32, 32))
    dense_macs = dense_profile.macs
    busiest = tree.leaves[int(share.argmax())]
    one_path = PathModel(tree, busiest).eval()

    batch = {"dense": [], "tree": [], "single_path_bound": []}
    with torch.inference_mode():
        for fn in (model, tree, one_path):
            fn(x)  # warm-up
        for _ in range(args.repeats):
            batch["dense"].append(seconds(lambda: model(x)))
            batch["tree"].append(seconds(lambda: tree(x)))
            batch["single_path_bound"].append(seconds(lambda: one_path(x)))
        singles = norm(test.images[: args.latency_inputs])
        latency = {"dense": [], "tree": []}
        for _ in range(max(5, args.repeats // 2)):
            for name, fn in (("dense", model), ("tree", tree)):
                per_input = [seconds(lambda one=singles[i : i + 1], fn=fn: fn(one)) for i in range(len(singles))]
                latency[name].append(statistics.median(per_input))
    ratios = [d / t for d, t in zip(batch["dense"], batch["tree"])]
    engine = [b / t for b, t in zip(batch["single_path_bound"], batch["tree"])]
    ideal = dense_macs / costs["active_macs_mean"]
    speedup = statistics.median(ratios)
    write_result("sigmab_engine_resnet56", {
        "benchmark": "sigmab_engine", "model": "resnet56", "dataset": "cifar10", "calib_size": args.calib_size,
        "convert_config": {k: v for k, v in vars(cfg).items()}, "convert_seconds": summarise(convert_s),
        "convert_target_seconds": 60.0, "batch_size": args.batch_size,
        "batch_seconds": {k: summarise(v) for k, v in batch.items()},
        "throughput_speedup": speedup, "ideal_speedup_from_macs": ideal, "fraction_of_ideal": speedup / ideal,
        "fraction_target": 0.8, "engine_efficiency_vs_single_path": statistics.median(engine),
        "latency_batch1_ms": {k: summarise([v * 1e3 for v in vals]) for k, vals in latency.items()},
        "latency_speedup": statistics.median(latency["dense"]) / statistics.median(latency["tree"]),
        "dense_macs": dense_macs, "active_macs_mean": costs["active_macs_mean"],
        "active_params_mean": costs["active_params_mean"], "dense_params": dense_profile.params,
        "leaf_share": share.tolist(),
    })


if __name__ == "__main__":
    main()
