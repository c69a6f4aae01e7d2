"""What onnxruntime makes of sigmab's int8 graphs: operator counts before and after its graph optimisation.

A QDQ graph is fast only where onnxruntime fuses each DequantizeLinear -> Conv -> QuantizeLinear group into one
integer ``QLinearConv``; a group it leaves alone runs as a float convolution on weights dequantised at every run,
and NHWC kernels add ``Transpose`` nodes around the fused ones. For a dense CIFAR ResNet exported and quantised
by sigmab (``sigmab export --int8``'s path, with int8 and with uint8 activations; the calibration images are
random, as operator fusion does not depend on the values), this counts the operators of the quantised graph
and of the graph onnxruntime runs (``ORT_ENABLE_ALL``, written with ``optimized_model_filepath``), and lists
the convolutions left in float with what feeds and consumes them.

    python -m benchmarks.int8_graph [--arch resnet56]     # writes benchmarks/results/int8_graph_<arch>.json
"""

from __future__ import annotations

import argparse
import collections
import tempfile
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import write_result
from benchmarks.studies import Result, register_study
from sigmab.models import build_model
from sigmab.train.precision import cpu_model

REQUIRED = ("arch", "onnxruntime", "rows", "cpu_model", "machine", "git_commit")


def op_counts(path: Path) -> dict[str, int]:
    import onnx

    return dict(sorted(collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node).items()))


def float_convs(path: Path) -> list[dict[str, Any]]:
    """Each ``Conv`` left in the optimised graph: the operators that feed it and those that read its output."""
    import onnx

    graph = onnx.load(str(path)).graph
    producer = {out: n.op_type for n in graph.node for out in n.output}
    consumers: dict[str, list[str]] = collections.defaultdict(list)
    for n in graph.node:
        for name in n.input:
            consumers[name].append(n.op_type)
    return [{"node": n.name, "inputs_from": [producer.get(i, "initializer") for i in n.input if i],
             "output_to": consumers[n.output[0]]} for n in graph.node if n.op_type == "Conv"]


def int8_graph_section(results: list[Result]) -> list[str]:
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


register_study('int8_graph', REQUIRED, int8_graph_section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet56")
    args = parser.parse_args()
    import onnx
    import onnxruntime as ort

    from sigmab.export import export_model
    from sigmab.export.quantize import quantize_graph

    torch.manual_seed(0)
    model = build_model(args.arch).eval()
    images = torch.randn(64, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    rows = []
    with tempfile.TemporaryDirectory(prefix="sigmab-int8-graph-") as tmp:
        folder = Path(tmp)
        export_model(model, images[:2], folder / "fp32")
        src = next((folder / "fp32").glob("*.onnx"))
        for activations in ("int8", "uint8"):
            quantised, optimised = folder / f"{activations}.onnx", folder / f"{activations}-optimised.onnx"
            quantize_graph(src, quantised, images.numpy(), input_name=onnx.load(str(src)).graph.input[0].name,
                           batch_size=32, activations=activations)
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.optimized_model_filepath = str(optimised)
            ort.InferenceSession(str(quantised), options, providers=["CPUExecutionProvider"])
            before, after, left = op_counts(quantised), op_counts(optimised), float_convs(optimised)
            rows.append({"activations": activations, "quantised_ops": before, "optimised_ops": after,
                         "convs": before.get("Conv", 0), "fused_convs": after.get("QLinearConv", 0),
                         "float_convs": left, "transposes": after.get("Transpose", 0)})
            print(f"{args.arch}, {activations} activations: {rows[-1]['fused_convs']} of {rows[-1]['convs']} "
                  f"convolutions fused into QLinearConv, {len(left)} left in float; {rows[-1]['transposes']} "
                  "Transpose nodes")
    write_result(f"int8_graph_{args.arch}", {"benchmark": "int8_graph", "arch": args.arch,
                                             "onnxruntime": ort.__version__, "rows": rows, "cpu_model": cpu_model()})

if __name__ == "__main__":
    main()
