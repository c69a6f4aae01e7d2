"""Evaluation speed of the shared ResNet-56 on the full CIFAR-10 test set (10,000 images).

Measures, alternating within one run, ``--repeats`` times each:
- the whole ``sigmab eval --json`` command (process start, loading, evaluation);
- the evaluation loop in NCHW and in channels-last layout, whose median ratio backs the
  channels-last default of ``sigmab eval``.

    python -m benchmarks.eval_speed            # writes benchmarks/results/eval_speed_resnet56.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import SHARED, summarise, write_result
from benchmarks.studies import Result, machine_summary, register_study
from sigmab.data import ArrayLoader, load_split
from sigmab.eval import evaluate
from sigmab.models import load_model

REQUIRED = ("model", "n_samples", "batch_size", "top1", "cli_seconds", "loop_seconds_nchw",
                   "loop_seconds_channels_last", "channels_last_speedup", "target_seconds", "machine", "git_commit")


def eval_speed_section(results: list[Result]) -> list[str]:
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
    lines += ["", f"Machine: {machine_summary(results[0])}. The wall time covers the whole command: process start, "
              "loading the checkpoint and the 10,000 images, and evaluation. The layout ratio is the median NCHW "
              "loop time over the median channels-last loop time, measured alternately in the same run.",
              "", "Regenerate: `python -m benchmarks.eval_speed` (needs `../shared`).", ""]
    return lines


register_study('eval_speed', REQUIRED, eval_speed_section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=SHARED / "weights" / "resnet56-4bfd9763.th")
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "cifar10.npz.xz")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()

    cli = [sys.executable, "-m", "sigmab", "eval", "--checkpoint", str(args.weights), "--arch", "resnet56",
           "--dataset", "cifar10", "--data-root", str(args.data), "--batch-size", str(args.batch_size), "--json"]
    data = load_split("cifar10", "test", root=args.data)
    cli_s, nchw_s, nhwc_s, top1 = [], [], [], set()
    for i in range(args.repeats):
        t0 = time.perf_counter()
        report = json.loads(subprocess.run(cli, capture_output=True, text=True, check=True).stdout)
        cli_s.append(time.perf_counter() - t0)
        top1.add(report["top1"])
        for channels_last, samples in ((False, nchw_s), (True, nhwc_s)):
            model = load_model(args.weights, arch="resnet56")
            loader = ArrayLoader(data, batch_size=args.batch_size, mean=model.meta.mean, std=model.meta.std)
            t0 = time.perf_counter()
            result = evaluate(model, loader, channels_last=channels_last)
            samples.append(time.perf_counter() - t0)
            top1.add(round(result.top1, 4))
        print(f"repeat {i + 1}/{args.repeats}: cli {cli_s[-1]:.1f}s, nchw loop {nchw_s[-1]:.1f}s, "
              f"channels-last loop {nhwc_s[-1]:.1f}s, top-1 {sorted(top1)}", flush=True)
    nchw, nhwc = summarise(nchw_s), summarise(nhwc_s)
    write_result("eval_speed_resnet56", {
        "benchmark": "eval_speed", "model": "resnet56", "dataset": "cifar10", "n_samples": len(data),
        "batch_size": args.batch_size, "top1": sorted(top1), "cli_seconds": summarise(cli_s),
        "loop_seconds_nchw": nchw, "loop_seconds_channels_last": nhwc,
        "channels_last_speedup": nchw["median"] / nhwc["median"], "target_seconds": 25.0,
    })


if __name__ == "__main__":
    main()
