"""Edge-model plots: off-chip weight bytes per inference against on-chip memory, and per-device latency."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from sigmab.edge.simulate import EdgeResult
from sigmab.edge.study import result_label
from sigmab.plots.figure import pyplot, save_figure


def _series(results: Sequence[EdgeResult]) -> dict[str, list[EdgeResult]]:
    series: dict[str, list[EdgeResult]] = defaultdict(list)
    for r in results:
        series[result_label(r)].append(r)
    return series


def plot_sram_sweep(results: Sequence[EdgeResult], path: str | os.PathLike[str], *, title: str = "") -> Path:
    """Off-chip KiB per inference (left) and latency (right) against on-chip weight memory, per model/order."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for label, rows in _series(results).items():
        rows = sorted(rows, key=lambda r: r.static_onchip_bytes + r.node_cache_bytes)
        sram = [(r.static_onchip_bytes + r.node_cache_bytes) / 1024 for r in rows]
        style = "--" if "(" not in label else ":" if "lru" in label else "-"  # plain, LRU-only, hybrid
        left.plot(sram, [r.offchip_bytes / 1024 for r in rows], style, marker="o", ms=3, label=label)
        right.plot(sram, [1e3 * r.latency_s for r in rows], style, marker="o", ms=3, label=label)
    for ax, ylabel in ((left, "off-chip weight KiB per inference"), (right, "latency per inference (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("on-chip weight memory (KiB)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    left.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def plot_devices(results: Sequence[EdgeResult], path: str | os.PathLike[str], *, title: str = "") -> Path:
    """Grouped bars: latency per inference on each device, one bar per model/order."""
    plt = pyplot()
    devices = list(dict.fromkeys(r.device for r in results))
    series = _series(results)
    fig, ax = plt.subplots(figsize=(max(7.0, 2.5 * len(devices)), 4.2))
    width = 0.8 / max(1, len(series))
    for i, (label, rows) in enumerate(series.items()):
        by_device = {r.device: r for r in rows}
        xs = [d + i * width for d in range(len(devices))]
        ax.bar(xs, [1e3 * by_device[d].latency_s if d in by_device else 0 for d in devices], width, label=label)
    ax.set_xticks([d + 0.4 - width / 2 for d in range(len(devices))], devices)
    ax.set_ylabel("latency per inference (ms, roofline)")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)
