"""Edge-model plots: off-chip weight bytes per inference against on-chip memory, and per-device latency."""

from __future__ import annotations

import os
import statistics
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


def _families(results: Sequence[EdgeResult]) -> dict[str, dict[str, list[EdgeResult]]]:
    """Model -> its series (one per input order and cache policy): ``sigmab (runs:8, lru)`` is a series of
    ``sigmab``. Series of one model differ little, so they are drawn as one median with a range."""
    families: dict[str, dict[str, list[EdgeResult]]] = defaultdict(dict)
    for label, rows in _series(results).items():
        families[label.split(" (")[0]][label] = rows
    return families


def plot_sram_sweep(results: Sequence[EdgeResult], path: str | os.PathLike[str], *, title: str = "") -> Path:
    """Off-chip KiB per inference (left) and latency (right) against on-chip weight memory, per model; a model
    with several input orders or cache policies is drawn as their median, shaded from best to worst."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    for color, (model, series) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], _families(results).items()):
        curves = []
        for rows in series.values():
            rows = sorted(rows, key=lambda r: r.static_onchip_bytes + r.node_cache_bytes)
            curves.append(([(r.static_onchip_bytes + r.node_cache_bytes) / 1024 for r in rows],
                           [r.offchip_bytes / 1024 for r in rows], [1e3 * r.latency_s for r in rows]))
        sram = curves[0][0]
        label = model if len(series) == 1 else f"{model} (median; shaded: {len(series)} orders/policies)"
        for ax, k in ((left, 1), (right, 2)):
            values = [[c[k][i] for c in curves] for i in range(len(sram))]
            ax.plot(sram, [statistics.median(v) for v in values], "-", marker="o", ms=3, color=color, label=label)
            if len(series) > 1:
                ax.fill_between(sram, [min(v) for v in values], [max(v) for v in values], color=color, alpha=0.2)
    for ax, ylabel in ((left, "off-chip weight KiB per inference"), (right, "latency per inference (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("on-chip weight memory (KiB)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    handles, labels = left.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=len(labels), frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return save_figure(fig, path, dpi=110)


def plot_devices(results: Sequence[EdgeResult], path: str | os.PathLike[str], *, title: str = "") -> Path:
    """Latency per inference on each device as a share of the dense model's there (linear axis, labelled bars);
    a model with several input orders or cache policies is one bar (median) with a whisker from best to worst."""
    plt = pyplot()
    devices = list(dict.fromkeys(r.device for r in results))
    families = _families(results)
    dense = {r.device: r.latency_s for rows in families.get("dense", {}).values() for r in rows}
    fig, ax = plt.subplots(figsize=(max(7.0, 2.6 * len(devices)), 4.2))
    width = 0.8 / max(1, len(families))
    for i, (model, series) in enumerate(families.items()):
        xs, heights, lows, highs = [], [], [], []
        for d, device in enumerate(devices):
            values = [r.latency_s for rows in series.values() for r in rows if r.device == device]
            if not values or device not in dense:
                continue
            share = [100 * v / dense[device] for v in values]
            xs.append(d + i * width)
            heights.append(statistics.median(share))
            lows.append(heights[-1] - min(share))
            highs.append(max(share) - heights[-1])
        label = model if len(series) == 1 else f"{model} (median; whisker: {len(series)} orders/policies)"
        bars = ax.bar(xs, heights, width, label=label, yerr=[lows, highs] if len(series) > 1 else None, capsize=3)
        ax.bar_label(bars, fmt="%.0f%%", fontsize=7, padding=2)
    ax.set_xticks([d + (len(families) - 1) * width / 2 for d in range(len(devices))], devices)
    ax.set_ylabel("latency per inference (% of dense on that device)")
    ax.set_ylim(0, 115)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(title or "roofline latency per inference")
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)
