"""The edge weight-traffic section of BENCHMARKS.md and its plots, from ``edge_*.json`` results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.studies import register_study
from sigmab.edge import EdgeResult
from sigmab.edge.study import result_label as _label

Result = dict[str, Any]


def _rows(rows: list[dict[str, Any]]) -> list[EdgeResult]:
    return [EdgeResult(**row) for row in rows]


def _device_table(r: Result) -> list[str]:
    lines = ["| device | model (input order) | stored KiB | placed on chip KiB | off-chip KiB / inference | "
             "latency ms (roofline) | compute-only ms | node-cache hits |", "|---|---|---|---|---|---|---|---|"]
    for e in _rows(r["results"]):
        hit = "-" if e.cache_hit_rate is None else f"{100 * e.cache_hit_rate:.1f}%"
        lines.append(f"| {e.device} | {_label(e)} | {e.stored_bytes / 1024:,.0f} | {e.static_onchip_bytes / 1024:,.0f}"
                     f" | {e.offchip_bytes / 1024:,.1f} | {1e3 * e.latency_s:.3f} | {1e3 * e.compute_s:.3f} | {hit} |")
    return lines


def _profiles(r: Result) -> list[str]:
    lines = ["| profile | weight memory | off-chip bandwidth | MAC rate | precision | sources |",
             "|---|---|---|---|---|---|"]
    for name, d in r["devices"].items():
        lines.append(f"| {name} ({d['description']}) | {d['weight_sram_bytes'] / 1024:,.0f} KiB | "
                     f"{d['offchip_bytes_per_s'] / 1e6:,.0f} MB/s | {d['macs_per_s'] / 1e9:,.1f} GMAC/s | "
                     f"{d['precision']} | {'; '.join(d['sources'])} |")
    return lines


def _sweep_findings(r: Result) -> list[str]:
    """Per swept size, the off-chip KiB of each model/order: the numbers behind the sweep plot."""
    lines = []
    for precision, rows in r["sweep"].items():
        results = _rows(rows)
        labels = list(dict.fromkeys(_label(e) for e in results))
        sizes = sorted({e.static_onchip_bytes + e.node_cache_bytes for e in results})
        lines += [f"Off-chip weight KiB per inference, {r['sweep_device']} at {precision}, by on-chip weight memory:",
                  "", "| model (order) | " + " | ".join(f"{s // 1024:,} KiB" for s in sizes) + " |",
                  "|---|" + "---|" * len(sizes)]
        for label in labels:
            by_size = {e.static_onchip_bytes + e.node_cache_bytes: e for e in results if _label(e) == label}
            lines.append(f"| {label} | " + " | ".join(f"{by_size[s].offchip_bytes / 1024:,.1f}" for s in sizes) + " |")
        lines.append("")
    return lines


def _reading(r: Result) -> list[str]:
    """What the numbers say, generated from them: the swept device at its own size, and where traffic ends."""
    device = r["devices"][r["sweep_device"]]
    at_size = {_label(e): e for e in _rows(r["results"]) if e.device == r["sweep_device"]}
    tree = next(k for k in r["workloads"] if k not in ("dense",) and not k.startswith(("fpgm", "l1", "hrank")))
    pruned = next(k for k in r["workloads"] if k.startswith(("fpgm", "l1", "hrank")))
    kib = lambda label: at_size[label].offchip_bytes / 1024  # noqa: E731
    first_zero = {}
    for e in sorted(_rows(r["sweep"]["int8"]), key=lambda e: e.static_onchip_bytes + e.node_cache_bytes):
        if e.offchip_bytes == 0:
            first_zero.setdefault(_label(e), (e.static_onchip_bytes + e.node_cache_bytes) // 1024)
    dense, best = kib("dense"), min(kib(f"{tree} ({o})") for o in r["orders"])
    return [
        f"Reading (generated): on {r['sweep_device']} ({device['weight_sram_bytes'] // 1024} KiB for weights, "
        f"{device['precision']}) SigmaB streams {kib(f'{tree} (shuffled)'):.1f} KiB per inference with shuffled "
        f"inputs and down to {best:.1f} KiB with class runs, against {dense:.1f} KiB for dense "
        f"({dense / max(best, 1e-9):.1f}x less at best); its latency is "
        f"{1e3 * at_size[f'{tree} (shuffled)'].latency_s:.2f} ms against {1e3 * at_size['dense'].latency_s:.2f} ms. "
        f"The static prune at the same active parameters streams {kib(pruned):.1f} KiB "
        f"({1e3 * at_size[pruned].latency_s:.2f} ms): it stores "
        f"{at_size[pruned].stored_bytes / at_size[f'{tree} (shuffled)'].stored_bytes:.0%} of the tree's weights. "
        "Smallest swept weight memory with no off-chip traffic (int8): "
        + ", ".join(f"{k} {v:,} KiB" for k, v in first_zero.items() if "lru" not in k) + ". "
        f"Only LRU caching gains from temporal correlation (shuffled -> runs:64: "
        f"{kib(f'{tree} (shuffled, lru)'):.1f} -> {kib(f'{tree} (runs:64, lru)'):.1f} KiB). "
        + _policy_comparison(r, tree), ""]


def _policy_comparison(r: Result, tree: str) -> str:
    """Over every swept size and precision: where placing the most used nodes (hybrid) beats LRU, per order."""
    parts = []
    for order in r["orders"]:
        better = worse = total = 0
        for rows in r["sweep"].values():
            by = {(_label(e), e.device): e.offchip_bytes for e in _rows(rows)}
            for device in {e.device for e in _rows(rows)}:
                hybrid, lru = by[(f"{tree} ({order})", device)], by[(f"{tree} ({order}, lru)", device)]
                total += 1
                better += hybrid < lru
                worse += hybrid > lru
        parts.append(f"{order}: hybrid streams less at {better}, more at {worse} of {total} swept points")
    return "Hybrid placement against LRU only, " + "; ".join(parts) + "."


def edge_section(results: list[Result]) -> list[str]:
    lines = ["## Edge weight-traffic model (`sigmab edge-sim`)", ""]
    for r in results:
        work = r["workloads"]
        lines += [
            f"CIFAR-10 {r['model']}: the dense model, the static FPGM prune at -66% and the SigmaB preset tree "
            f"(`{r['tree']}`, test top-1 {r['tree_top1']:.2f}%, leaf shares "
            f"{', '.join(f'{100 * s:.1f}%' for s in r['leaf_share'])}), on the {r['n_inputs']:,} test images "
            f"in three orders: shuffled, and runs of 8 or 64 consecutive images of one class (video-like). "
            f"Stored parameters: " + ", ".join(f"{k} {v['stored_params']:,}" for k, v in work.items()) + ".", "",
            "The model: weights used by every input (a plain model's layers; the tree's backbone and root router) "
            "are placed on chip in forward order while they fit; the rest of the weight memory is an LRU cache of "
            "whole routers/nodes; everything else streams from off-chip memory on each inference. Latency per layer "
            "is max(MACs / MAC rate, streamed bytes / bandwidth), summed over layers; steady state (the stream runs "
            "once to warm the cache, then is measured). BatchNorm parameters are counted as stored weights.", "",
            *_device_table(r), "", *_reading(r),
            "![edge devices](benchmarks/plots/edge_devices_resnet56.png)", "",
            *_sweep_findings(r),
            "![edge sweep int8](benchmarks/plots/edge_sweep_resnet56_int8.png)", "",
            "![edge sweep fp32](benchmarks/plots/edge_sweep_resnet56_fp32.png)", "",
            "Device profiles (vendor figures are peaks; assumptions are marked in "
            "`src/sigmab/configs/devices.yaml`):", "", *_profiles(r), "",
            f"Source: `{r['_file']}`. Regenerate: `python -m benchmarks.edge` (needs the ResNet-56 run folders of "
            "`benchmarks.cifar` and `../shared`).", "",
        ]
    return lines


def write_edge_plots(results: list[Result], folder: Path) -> None:
    from sigmab.plots.edge_plot import plot_devices, plot_sram_sweep

    for r in results:
        plot_devices(_rows(r["results"]), folder / f"edge_devices_{r['model']}.png",
                     title=f"{r['model']}: roofline latency per inference")
        for precision, rows in r["sweep"].items():
            plot_sram_sweep(_rows(rows), folder / f"edge_sweep_{r['model']}_{precision}.png",
                            title=f"{r['model']} on {r['sweep_device']} ({precision}), on-chip weight memory swept")


REQUIRED = ("model", "tree", "pruned", "policies", "tree_top1", "leaf_share", "n_inputs", "orders", "devices",
            "workloads", "results", "sweep_device", "sweep", "machine", "git_commit")
register_study("edge", REQUIRED, edge_section, write_edge_plots)
