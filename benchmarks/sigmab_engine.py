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
from sigmab.data import Normalize, load_split
from sigmab.eval import profile_model
from sigmab.models import load_model
from sigmab.tree import ConvertConfig, PathModel, convert, cost_summary


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
