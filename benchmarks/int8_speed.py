"""onnxruntime throughput of sigmab's int8 graphs against fp32, with int8 (S8S8) and uint8 (U8S8) activations.

For a ResNet-56 (CIFAR, the shared architecture; weights random: speed does not depend on their values), its FPGM
prune to -66% parameters (inner channels) and one path of a depth-2 SigmaB tree converted from it (inner widths
1/2, 1/4), each exported and quantised by sigmab's own functions, this times onnxruntime's CPU session on batches
of 64 (samples/s) and of 1 (latency), alternating fp32, int8 and uint8 graphs in every round; each figure is the
median over rounds. The ratio is int8 (or uint8) throughput over fp32 throughput of the same model.

    python -m benchmarks.int8_speed          # writes benchmarks/results/int8_speed/int8_speed-<cpu>-<isa>.json

One results file per kind of CPU: whether int8 pays depends on the integer instructions it has (VNNI, AMX-INT8).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmarks.common import per_cpu_name, write_result
from benchmarks.studies import Result, machine_summary, register_study, verdict
from sigmab.models import build_model
from sigmab.train.precision import cpu_flags, cpu_isa, cpu_model

REQUIRED = ("model", "rows", "batch_size", "rounds", "cpu_model", "machine", "git_commit")
PRECISIONS = ("fp32", "int8", "uint8")


def _models() -> dict[str, nn.Module]:
    from sigmab.export import path_module
    from sigmab.prune import PruneConfig, prune
    from sigmab.tree import ConvertConfig, convert

    torch.manual_seed(0)
    dense = build_model("resnet56").eval()
    calib = torch.randn(256, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    pruned = prune(dense, PruneConfig(criterion="fpgm", target_reduction=0.66, scope="inner"))[0]
    tree = convert(dense, calib, ConvertConfig(depth=2, widths=[0.5, 0.25], calib_size=256, min_leaf_samples=16)).tree
    return {"dense": dense, "fpgm-66": pruned.eval(), "tree path": path_module(tree, tree.leaves[0])}


def _graphs(model: nn.Module, folder: Path, images: torch.Tensor) -> dict[str, Path]:
    import onnx

    from sigmab.export import export_model
    from sigmab.export.quantize import quantize_graph

    export_model(model, images[:2], folder / "fp32")
    src = next((folder / "fp32").glob("*.onnx"))
    name = onnx.load(str(src)).graph.input[0].name
    files = {"fp32": src}
    for activations in ("int8", "uint8"):
        files[activations] = folder / f"{activations}.onnx"
        quantize_graph(src, files[activations], images.numpy(), input_name=name, batch_size=32,
                       activations=activations)
    return files


def _timed(session: Any, name: str, x: np.ndarray, runs: int) -> float:
    """Median seconds of ``runs`` calls after one warm-up call."""
    session.run(None, {name: x})
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        session.run(None, {name: x})
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def int8_speed_section(results: list[Result]) -> list[str]:
    lines = ["## int8 against fp32 in onnxruntime (`benchmarks.int8_speed`)", ""]
    for r in results:  # one file per kind of CPU
        isa = f"{r['cpu_isa']}, " if r.get("cpu_isa") else ""
        lines += [f"### {r['cpu_model']} ({isa}VNNI: {'yes' if r.get('vnni') else 'no'})", "",
                  f"{r['model']} (random weights: speed does not depend on them), its FPGM prune and one tree path, "
                  f"each exported and quantised by sigmab; onnxruntime {r['onnxruntime']}, {machine_summary(r)}. "
                  f"Medians of {r['rounds']} rounds "
                  "that alternate the three graphs. Target: int8 at least as fast as fp32 at batch "
                  f"{r['batch_size']}.", "",
                  f"| model | graph | samples/s (batch {r['batch_size']}) | vs fp32 | batch-1 latency | vs fp32 | "
                  "target |", "|---|---|---|---|---|---|---|"]
        for row in r["rows"]:
            target = "" if row["precision"] == "fp32" else verdict(row["throughput_vs_fp32"] >= 1.0)
            graph = {"fp32": "fp32", "int8": "int8 activations (S8S8)", "uint8": "uint8 activations (U8S8, "
                     "the default on x86)"}[row["precision"]]
            lines.append(f"| {row['model']} | {graph} | {row['samples_per_s']:.0f} | "
                         f"{row['throughput_vs_fp32']:.3f}x | {row['latency_ms']:.2f} ms | "
                         f"{row['latency_vs_fp32']:.2f}x | {target} |")
        lines += ["", f"Source: `{r['_file']}`. Regenerate: `python -m benchmarks.int8_speed`.", ""]
    return lines


register_study('int8_speed', REQUIRED, int8_speed_section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import onnxruntime as ort

    images = torch.randn(max(64, args.batch_size), 3, 32, 32, generator=torch.Generator().manual_seed(2))
    batch, single = images[: args.batch_size].numpy(), images[:1].numpy()
    rows = []
    with tempfile.TemporaryDirectory(prefix="sigmab-int8-speed-") as tmp:
        for label, model in _models().items():
            files = _graphs(model, Path(tmp) / label.replace(" ", "-"), images)
            options = ort.SessionOptions()
            options.log_severity_level = 3
            sessions = {p: ort.InferenceSession(str(f), options, providers=["CPUExecutionProvider"])
                        for p, f in files.items()}
            name = sessions["fp32"].get_inputs()[0].name
            through: dict[str, list[float]] = {p: [] for p in PRECISIONS}
            latency: dict[str, list[float]] = {p: [] for p in PRECISIONS}
            for _ in range(args.rounds):
                for p in PRECISIONS:
                    through[p].append(args.batch_size / _timed(sessions[p], name, batch, 5))
                    latency[p].append(1000 * _timed(sessions[p], name, single, 20))
            for p in PRECISIONS:
                row = {"model": label, "precision": p, "samples_per_s": round(statistics.median(through[p]), 1),
                       "latency_ms": round(statistics.median(latency[p]), 3),
                       "throughput_vs_fp32": round(statistics.median(through[p]) / statistics.median(through["fp32"]),
                                                   3),
                       "latency_vs_fp32": round(statistics.median(latency["fp32"]) / statistics.median(latency[p]),
                                                3)}
                rows.append(row)
                print(f"{label:10s} {p:5s} {row['samples_per_s']:8.1f} samples/s ({row['throughput_vs_fp32']:.2f}x) "
                      f"batch-1 {row['latency_ms']:.2f} ms ({row['latency_vs_fp32']:.2f}x)", flush=True)
    write_result(f"int8_speed/{per_cpu_name('int8_speed', cpu_model(), cpu_isa())}", {
        "benchmark": "int8_speed", "model": "resnet56", "rows": rows, "batch_size": args.batch_size,
        "rounds": args.rounds, "onnxruntime": ort.__version__, "cpu_model": cpu_model(), "cpu_isa": cpu_isa(),
        "vnni": bool(cpu_flags() & {"avx512_vnni", "avx_vnni"})})


if __name__ == "__main__":
    main()
