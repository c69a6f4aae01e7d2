"""A picture of a tree: backbone, routers and leaves, with each leaf's routing share and accuracy."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sigmab.plots.figure import pyplot, save_figure


def plot_tree(report: dict[str, Any], path: str | os.PathLike[str], *, title: str = "") -> Path:
    """Draw the tree of an ``evaluate_tree_folder`` report to a PNG at ``path``."""
    plt = pyplot()
    depth = int(report["depth"])
    leaves = report["leaves"]
    fig, ax = plt.subplots(figsize=(max(6.0, 2.2 * len(leaves)), 1.6 * (depth + 2)))
    ax.set_axis_off()
    n_leaves = len(leaves)

    def x_of(bits: str) -> float:
        span = n_leaves / 2 ** len(bits)
        return (int(bits, 2) if bits else 0) * span + span / 2 - 0.5

    def box(x: float, y: float, text: str, color: str) -> None:
        ax.text(x, y, text, ha="center", va="center", fontsize=8,
                bbox={"boxstyle": "round,pad=0.4", "facecolor": color, "edgecolor": "0.3"})

    top = depth + 1
    box(x_of(""), top, f"backbone\n+ router r\n(dense top-1 {report['dense_top1'] or 0:.1f}%)", "0.9")
    for d in range(1, depth + 1):
        for i in range(2**d):
            bits = format(i, f"0{d}b")
            parent = bits[:-1]
            ax.plot([x_of(parent), x_of(bits)], [top - d + 1 - 0.25, top - d + 0.25], color="0.5", lw=1)
            if d < depth:
                box(x_of(bits), top - d, f"n{bits}\n+ router r{bits}", "#dde8f5")
    for leaf in leaves:
        bits = leaf["leaf"][1:]
        top1 = "-" if leaf["top1"] is None else f"{leaf['top1']:.1f}%"
        share = leaf["share"]
        box(x_of(bits), 1, f"{leaf['leaf']}\n{100 * share:.1f}% of inputs\ntop-1 {top1}\n{leaf['params']:,} params",
            plt.cm.YlGn(0.15 + 0.45 * min(1.0, share * n_leaves / 2)))
    ax.set_xlim(-0.8, n_leaves - 0.2)
    ax.set_ylim(0.3, top + 0.6)
    ax.set_title(title or (f"SigmaB tree: top-1 {report['top1']:.2f}%, active params "
                           f"{report['active_params_mean']:,.0f} of {report['dense_params']:,} "
                           f"(-{100 * report['active_params_reduction']:.1f}%)"), fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
