"""A picture of a tree: backbone, routers and leaves, with each leaf's routing share and accuracy."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sigmab.plots.figure import pyplot, save_figure


def plot_tree(report: dict[str, Any], path: str | os.PathLike[str], *, title: str = "",
              class_names: list[str] | None = None) -> Path:
    """Draw the tree of an ``evaluate_tree_folder`` report to a PNG at ``path``: each leaf's inputs (count and
    share), Top-1 on them, main classes and path parameters; routers with their split points."""
    plt = pyplot()
    depth = int(report["depth"])
    leaves = report["leaves"]
    fig, ax = plt.subplots(figsize=(max(7.0, 2.8 * len(leaves)), 1.7 * (depth + 2)))
    ax.set_axis_off()
    n_leaves = len(leaves)

    def x_of(bits: str) -> float:
        span = n_leaves / 2 ** len(bits)
        return (int(bits, 2) if bits else 0) * span + span / 2 - 0.5

    def box(x: float, y: float, text: str, color: str) -> None:
        ax.text(x, y, text, ha="center", va="center", fontsize=8,
                bbox={"boxstyle": "round,pad=0.4", "facecolor": color, "edgecolor": "0.3"})

    top = depth + 1
    n = int(report["n_samples"])
    splits = report.get("split_points") or []
    first = f"\nsplit before {splits[0]}" if splits else ""
    box(x_of(""), top, f"backbone (shared by every path)\n+ router r{first}", "0.9")
    for d in range(1, depth + 1):
        for i in range(2**d):
            bits = format(i, f"0{d}b")
            parent = bits[:-1]
            ax.plot([x_of(parent), x_of(bits)], [top - d + 1 - 0.25, top - d + 0.25], color="0.5", lw=1)
            if d < depth:
                split = f"\nsplit before {splits[d]}" if d < len(splits) else ""
                box(x_of(bits), top - d, f"n{bits}\n+ router r{bits}{split}", "#dde8f5")
    cmap = plt.cm.YlGn
    for leaf in leaves:
        bits = leaf["leaf"][1:]
        top1 = "-" if leaf["top1"] is None else f"{leaf['top1']:.1f}%"
        share = leaf["share"]
        counts = leaf.get("class_counts") or []
        total = sum(counts)
        mix = ""
        if total:
            ranked = sorted(range(len(counts)), key=lambda c: -counts[c])[:2]
            names = class_names or [str(c) for c in range(len(counts))]
            mix = "\nmostly " + ", ".join(f"{names[c]} ({100 * counts[c] / total:.0f}%)" for c in ranked)
        box(x_of(bits), 1, f"{leaf['leaf']}\n{round(share * n):,} of {n:,} inputs ({100 * share:.1f}%)\n"
                           f"top-1 on them {top1}{mix}\npath params {leaf['params']:,}",
            cmap(0.15 + 0.7 * share))
    bar = fig.colorbar(plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(-0.15 / 0.7, 0.85 / 0.7)), ax=ax,
                       fraction=0.025, pad=0.01)
    bar.set_label("leaf colour: share of inputs", fontsize=7)
    bar.ax.set_ylim(0, 1)
    bar.ax.tick_params(labelsize=6)
    ax.set_xlim(-0.8, n_leaves - 0.2)
    ax.set_ylim(0.3, top + 0.6)
    dense = "" if report.get("dense_top1") is None else f" (dense {report['dense_top1']:.2f}%)"
    ax.set_title(title or (f"SigmaB tree: top-1 {report['top1']:.2f}%{dense} on {n:,} {report.get('split', '')} "
                           f"inputs; mean active params {report['active_params_mean']:,.0f} of "
                           f"{report['dense_params']:,} (-{100 * report['active_params_reduction']:.1f}%)"),
                 fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
