"""The BENCHMARKS.md section of ``benchmarks.int8``: int8 against fp32 per model, in onnxruntime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.studies import register_study

REQUIRED = ("model", "dataset", "rows", "onnxruntime", "machine", "git_commit")
TARGET_PP, TARGET_ROUTES = 0.5, 0.99  # issue 20: int8 within 0.5 pp of fp32, >= 99% of inputs on the fp32 leaf


def _agreement(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def int8_section(results: list[dict[str, Any]]) -> list[str]:
    lines = ["## int8 exports (`sigmab export --int8`) against fp32", ""]
    for r in results:
        rows = list(r["rows"].values())
        q = rows[0]["quantization"] if rows else {}
        lines += [
            f"{r['model']} on the {r['dataset']} test split, each model exported to ONNX in fp32 and in int8 "
            f"({q.get('format')}; weights {q.get('weights')}; activations {q.get('activations')} on "
            f"{q.get('calib_size')} training images, each unit on the inputs routed to it) and run in onnxruntime "
            f"{r['onnxruntime']}. Agreement is with the fp32 PyTorch model on the same inputs: same prediction, and "
            "for a tree the same leaf. Bytes are the weights (with scales, zero points and biases) as the ONNX files "
            "store them; a tree's per-input bytes are those of the units on each input's path, averaged. Speed: "
            "int8 over fp32 of the same model, batch-256 throughput and batch-1 latency, median of per-repeat "
            "ratios in one run (each model's row is its own run: compare the ratios, not the times across rows, "
            "which moved with the machine's load). onnxruntime's CPU kernels are no edge NPU: the int8 speed here "
            f"says nothing about an int8 accelerator. Targets: int8 within {TARGET_PP} pp of fp32, routes >= "
            f"{100 * TARGET_ROUTES:.0f}%.",
            "", "| model | fp32 Top-1 | int8 Top-1 | int8 - fp32 | same prediction | same leaf | weight bytes fp32 "
            "-> int8 (per input) | throughput int8/fp32 | batch-1 latency fp32 -> int8 | targets |",
            "|---|---|---|---|---|---|---|---|---|---|"]
        for row in rows:
            fp32, int8, t = row["fp32"], row["int8"], row["timing"]
            met = abs(row["int8_minus_fp32_pp"]) <= TARGET_PP and (int8["route_agreement"] is None or
                                                                   int8["route_agreement"] >= TARGET_ROUTES)
            lines.append(
                f"| {row['label']} | {fp32['top1']:.2f}% | {int8['top1']:.2f}% | {row['int8_minus_fp32_pp']:+.2f} pp "
                f"| {_agreement(int8['prediction_agreement'])} | {_agreement(int8['route_agreement'])} | "
                f"{fp32['stored_bytes']:,} -> {int8['stored_bytes']:,} ({fp32['active_bytes_mean']:,.0f} -> "
                f"{int8['active_bytes_mean']:,.0f}) | {t['int8_throughput_speedup']:.2f}x | "
                f"{t['fp32_latency_ms']['median']:.2f} -> {t['int8_latency_ms']['median']:.2f} ms | "
                f"{'met' if met else 'not met'} |")
        for row in rows:
            if row["int8"].get("leaves"):
                shares = ", ".join(f"{leaf['leaf']} {100 * leaf['share']:.1f}% ({leaf['top1']:.2f}%)"
                                   for leaf in row["int8"]["leaves"] if leaf["top1"] is not None)
                lines += ["", f"{row['label']}, int8 leaves (share of inputs, Top-1 on them): {shares}."]
        cpu = r["machine"].get("cpu_model") or r["machine"].get("processor")
        lines += ["", f"Machine: {cpu}, {r['machine'].get('cpu_count')} CPUs. Source: "
                  f"`{r['_file']}`. Regenerate: `python -m benchmarks.int8 --config "
                  f"benchmarks/configs/{Path(r['_file']).stem}.yaml` (needs the run folders named in that file and "
                  "`../shared`).",
                  ""]
    return lines


SENSITIVITY_REQUIRED = ("run", "model", "dataset", "images", "fp32_top1", "calib_size", "rows", "onnxruntime",
                        "machine", "git_commit")


def int8_sensitivity_section(results: list[dict[str, Any]]) -> list[str]:
    lines = ["## Where int8 loses Top-1 (`benchmarks.int8_sensitivity`)", ""]
    for r in results:
        lines += [f"{r['model']} (`{r['run']}`), fp32 ONNX graph {r['fp32_top1']:.2f}% on the first {r['images']} "
                  f"{r['dataset']} test images; each row quantises that graph with one choice changed from `sigmab "
                  f"export --int8`'s default (activations calibrated on {r['calib_size']} training images).", "",
                  "| variant | what changes | int8 Top-1 | int8 - fp32 | same prediction as fp32 |",
                  "|---|---|---|---|---|"]
        for name, row in r["rows"].items():
            lines.append(f"| {name} | {row['change']} | {row['top1']:.2f}% | {row['minus_fp32_pp']:+.2f} pp | "
                         f"{100 * row['prediction_agreement']:.2f}% |")
        lines += ["", f"Source: `{r['_file']}`. Regenerate: `python -m benchmarks.int8_sensitivity --run {r['run']}`.",
                  ""]
    return lines


register_study("int8", REQUIRED, int8_section)
register_study("int8_sensitivity", SENSITIVITY_REQUIRED, int8_sensitivity_section)
