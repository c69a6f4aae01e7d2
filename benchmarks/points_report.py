"""The point-set section of BENCHMARKS.md and its Pareto plot, from ``cifar_run`` results of grids on point-set
datasets (``benchmarks/results/points/``): the same schema and runner as the CIFAR grids."""

from __future__ import annotations

from pathlib import Path

from benchmarks.cifar_report import BASELINE_COLORS, Result, _runs_table, is_sigmab, reduction
from sigmab.utils.io import atomic_path

DATASET_NAMES = {"fashion_mnist_points": "Fashion-MNIST as 2-D point sets", "modelnet40": "ModelNet40"}


def points_section(results: list[Result]) -> list[str]:
    lines = ["## Point sets: SigmaB on PointNet++", ""]
    for dataset in sorted({r["dataset"] for r in results}):
        mine = [r for r in results if r["dataset"] == dataset]
        dense = mine[0]
        lines += [f"### {DATASET_NAMES.get(dataset, dataset)}", "",
                  f"Dense {dense['model']} trained by the grid itself ({dense['dense_params']:,} parameters, "
                  f"{dense['dense_macs'] / 1e6:.1f} MMACs per input, test top-1 {dense['dense_top1']:.2f}%), then "
                  "converted (or pruned) and fine-tuned; each row is one run of `python -m benchmarks.cifar`, its "
                  "test split evaluated once at the end.", ""]
        lines += _runs_table(mine) + [""]
        for r in sorted(mine, key=lambda r: (not is_sigmab(r), r["run_id"])):
            gpu = r["machine"].get("gpu")
            where = f"{gpu}" if gpu else f"{r['machine']['cpu_count']} CPUs"
            lines.append(f"- {r['run_id']}: {r['top1']:.2f}% at {100 * reduction(r):.1f}% fewer active parameters "
                         f"({r['dense_top1'] - r['top1']:.2f} pp below dense); finished on {where}.")
        lines += ["", "A run resumed on another machine names the one that finished it; the per-epoch times in its "
                  "result file (`finetune_metrics_csv`) show where each epoch ran."]
        lines += ["", f"![Top-1 against active parameters](benchmarks/plots/points_pareto_{dataset}.png)", ""]
    lines += ["Regenerate: `python -m benchmarks.cifar --config benchmarks/configs/fashion_points.yaml` (trains the "
              "dense PointNet++ first, then each run; resumable; `--device` is `auto` in every step, so a GPU is used "
              "where there is one), then `python -m benchmarks.report`.", ""]
    return lines


def write_points_plots(results: list[Result], folder: Path) -> None:
    from sigmab.plots.figure import pyplot

    plt = pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    for dataset in sorted({r["dataset"] for r in results}):
        mine = [r for r in results if r["dataset"] == dataset]
        fig, ax = plt.subplots(figsize=(6, 4.5))
        ax.scatter([mine[0]["dense_params"]], [mine[0]["dense_top1"]], marker="*", s=160, color="black",
                   label="dense", zorder=3)
        for r in mine:
            method = r.get("method", "sigmab")
            color = "tab:blue" if is_sigmab(r) else BASELINE_COLORS.get(method, "gray")
            ax.scatter([r["active_params_mean"]], [r["top1"]], color=color, marker="o" if is_sigmab(r) else "s",
                       zorder=3)
            ax.annotate(r["run_id"], (r["active_params_mean"], r["top1"]), fontsize=7, textcoords="offset points",
                        xytext=(6, 4))
        ax.set_xlabel("mean active parameters per input")
        ax.set_ylabel("test top-1 (%)")
        ax.set_title(f"{mine[0]['model']} on {DATASET_NAMES.get(dataset, dataset)}")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        with atomic_path(folder / f"points_pareto_{dataset}.png") as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        plt.close(fig)
