"""CPU inference speed of what a user ships: dense, static-pruned and SigmaB ResNet-56, each in PyTorch
eager and as exported ONNX graphs in onnxruntime; batch-1 latency and batch-256 throughput as ratios
against eager dense, measured alternately in one run (median of repeats).

SigmaB rows: the hard single-path engine (``SigmaBTree.forward``), the exported units run router ->
node by :class:`sigmab.export.OnnxTreeRunner`, and the busiest leaf's exported path on every input
with no routing (the bound a perfect router-free engine would reach). Needs the run folders of
``benchmarks.cifar`` (``r56-d2-w50-25-kd-6ep``, ``r56-fpgm-66``, seed 0) and ../shared.

    python -m benchmarks.inference_speed   # writes benchmarks/results/inference_speed_resnet56.json
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from benchmarks.cifar import add_resnet56_run_args
from benchmarks.common import seconds, summarise, write_result
from benchmarks.studies import Result, machine_summary, register_study
from sigmab.data import Normalize, load_split
from sigmab.eval import profile_model
from sigmab.export import OnnxGraphs, OnnxTreeRunner, export_any, path_module
from sigmab.folders import load_model_or_folder
from sigmab.tree import cost_summary

REQUIRED = ("model", "batch_size", "latency_inputs", "repeats", "baseline", "rows", "busiest_leaf",
                               "leaf_share", "macs", "onnxruntime", "machine", "git_commit")


def inference_speed_section(results: list[Result]) -> list[str]:
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
        lines += ["", f"Machine: {machine_summary(r)}; onnxruntime {r['onnxruntime']}. Source: `{r['_file']}`.", "",
                  "Regenerate: `python -m benchmarks.inference_speed` (needs the ResNet-56 run folders and "
                  "`../shared`).", ""]
    return lines


register_study('inference_speed', REQUIRED, inference_speed_section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_resnet56_run_args(parser)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--latency-inputs", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(2)

    _, dense, meta = load_model_or_folder(None, args.checkpoint, arch="resnet56")
    _, pruned, _ = load_model_or_folder(args.pruned)
    _, tree, _ = load_model_or_folder(args.tree)
    test = load_split("cifar10", "test", root=args.data)
    norm = Normalize(meta.mean, meta.std)
    with torch.inference_mode():
        _, leaves = tree.forward_hard(norm(test.images))
    share = torch.bincount(leaves, minlength=len(tree.leaves)).double() / len(leaves)
    busiest = tree.leaves[int(share.argmax())]
    path = path_module(tree, busiest)
    shape = (meta.in_channels, *meta.input_size)
    costs = cost_summary(tree, shape, share)

    work = Path(tempfile.mkdtemp(prefix="sigmab-speed-"))
    for name, kind, model in (("dense", "dense", dense), ("pruned", "pruned", pruned), ("tree", "tree", tree)):
        export_any(kind, model, meta, work / name)
        print(f"exported {name}", flush=True)
    ort_dense, ort_pruned = OnnxGraphs(work / "dense"), OnnxGraphs(work / "pruned")
    ort_tree = OnnxTreeRunner(work / "tree")

    x = norm(test.images[: args.batch_size])
    xn = x.numpy()
    engines: dict[str, Callable[[torch.Tensor, np.ndarray], object]] = {
        "dense (eager)": lambda t, a: dense(t),
        "fpgm-66% (eager)": lambda t, a: pruned(t),
        "sigmab engine (eager)": lambda t, a: tree(t),
        "sigmab busiest path, no routing (eager)": lambda t, a: path(t),
        "dense (onnxruntime)": lambda t, a: ort_dense.run("model", a),
        "fpgm-66% (onnxruntime)": lambda t, a: ort_pruned.run("model", a),
        "sigmab router->node graphs (onnxruntime)": lambda t, a: ort_tree.predict(a),
        "sigmab busiest path graph, no routing (onnxruntime)": lambda t, a: ort_tree.run(f"path-{busiest}", a),
    }
    singles = [(x[i : i + 1], xn[i : i + 1]) for i in range(args.latency_inputs)]
    batch: dict[str, list[float]] = {k: [] for k in engines}
    latency: dict[str, list[float]] = {k: [] for k in engines}
    with torch.inference_mode():
        for fn in engines.values():
            fn(x, xn)  # warm-up (and the ONNX sessions open here)
        for rep in range(args.repeats):
            for name, fn in engines.items():
                batch[name].append(seconds(lambda fn=fn: fn(x, xn)))
                per_input = [seconds(lambda fn=fn, s=s: fn(*s)) for s in singles]
                latency[name].append(statistics.median(per_input))
            print(f"repeat {rep + 1}/{args.repeats}", flush=True)
    base = "dense (eager)"
    rows = {}
    for name in engines:
        rows[name] = {
            "batch_seconds": summarise(batch[name]),
            "throughput_img_per_s": args.batch_size / statistics.median(batch[name]),
            "throughput_speedup": statistics.median(b / t for b, t in zip(batch[base], batch[name])),
            "latency_ms": summarise([1e3 * v for v in latency[name]]),
            "latency_speedup": statistics.median(b / t for b, t in zip(latency[base], latency[name])),
        }
    dense_macs = profile_model(dense, shape).macs
    write_result("inference_speed_resnet56", {
        "benchmark": "inference_speed", "model": "resnet56", "batch_size": args.batch_size,
        "latency_inputs": args.latency_inputs, "repeats": args.repeats, "baseline": base, "rows": rows,
        "busiest_leaf": busiest, "leaf_share": share.tolist(), "tree": str(args.tree), "pruned": str(args.pruned),
        "macs": {"dense": dense_macs, "fpgm-66%": profile_model(pruned, shape).macs,
                 "sigmab_mean": costs["active_macs_mean"]},
        "onnxruntime": __import__("onnxruntime").__version__,
    })


if __name__ == "__main__":
    main()
