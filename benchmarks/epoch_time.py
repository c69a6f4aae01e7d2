"""How long a grid's dense training takes here: one timed epoch of its ``train:`` settings, projected.

    python -m benchmarks.epoch_time --config benchmarks/configs/fashion_points.yaml
    # writes benchmarks/results/<results>/<grid>-epoch-time.json

The epoch runs the grid's exact settings (model, data, batch size, threads) with ``epochs: 1`` in a
temporary folder on ``--device`` (default: cpu, the 2-core target), including its evaluation pass.
The projection is that epoch's wall time times the grid's epoch count; the grid's own metrics.csv
keeps the real per-epoch times of the run that produced its checkpoint.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import tempfile
from pathlib import Path

from benchmarks.cifar import dense_train_config, load_grid
from benchmarks.common import write_result
from benchmarks.studies import Result, machine_summary, register_study, verdict
from sigmab.train.trainer import train

REQUIRED = ("grid", "config", "model", "dataset", "device", "batch_size", "epochs", "epoch_seconds",
                          "projected_minutes", "budget_minutes", "fits_budget", "machine", "git_commit")


def epoch_time_section(results: list[Result]) -> list[str]:
    lines = ["## Dense training time of the grids that train their own model", "",
             "One epoch of the grid's `train:` settings (its evaluation pass included), timed on the device named; "
             "the projection is that epoch times the grid's epoch count.", "",
             "| grid | model | device | batch | one epoch | epochs | projected | budget | source |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['grid']} | {r['model']} | {r['device']} ({machine_summary(r)}) | {r['batch_size']} | "
                     f"{r['epoch_seconds']:.0f} s | {r['epochs']} | {r['projected_minutes']:.0f} min | "
                     f"{r['budget_minutes']:.0f} min: {verdict(r['fits_budget'])} | `{r['_file']}` |")
    lines += ["", "Regenerate: `python -m benchmarks.epoch_time --config <grid YAML>`.", ""]
    return lines


register_study('epoch_time', REQUIRED, epoch_time_section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="a grid YAML with a 'train:' section")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--budget-minutes", type=float, default=150.0, help="the background-run budget to check")
    args = parser.parse_args()
    grid = load_grid(args.config)
    if "train" not in grid:
        raise SystemExit(f"{args.config}: no 'train:' section (its dense model comes from 'weights')")
    full = dense_train_config(grid)
    one = dataclasses.replace(full, epochs=1, warmup_epochs=min(full.warmup_epochs, 1.0), device=args.device)
    with tempfile.TemporaryDirectory() as tmp:
        train(one, Path(tmp) / "run", progress=False)
        with open(Path(tmp) / "run" / "metrics.csv", newline="") as f:
            epoch_seconds = float(next(csv.DictReader(f))["epoch_seconds"])
    projected_minutes = epoch_seconds * full.epochs / 60
    print(f"{grid['name']}: one epoch {epoch_seconds:.0f} s on {args.device}; {full.epochs} epochs "
          f"~{projected_minutes:.0f} min (budget {args.budget_minutes:.0f})")
    write_result(f"{grid.get('results', 'cifar')}/{grid['name']}-epoch-time", {
        "benchmark": "epoch_time", "grid": grid["name"], "config": str(args.config),
        "model": grid["model"], "dataset": grid["dataset"], "device": args.device,
        "batch_size": full.batch_size, "epochs": full.epochs, "epoch_seconds": epoch_seconds,
        "projected_minutes": projected_minutes, "budget_minutes": args.budget_minutes,
        "fits_budget": projected_minutes <= args.budget_minutes})


if __name__ == "__main__":
    main()
