"""The dispatcher's search, sigmab's own GA against pymoo's NSGA-II, on one dispatcher problem: the same models,
split, evaluation budget and seeds; the fronts compared by hypervolume on the report half (Top-1 up, mean MACs
down, bounded by the cheapest model's Top-1 less 1 pp and the dearest model's MACs plus 5%).

    python -m benchmarks.dispatch_search --config benchmarks/configs/resnet56_dispatch.yaml \\
        --only r56-disp-r20-r56 --seeds 0 1 2
    # writes benchmarks/results/dispatch_search_<run id>.json
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.cifar import RUNS, _configs, _resolve, load_grid
from benchmarks.cifar_dispatch import model_sources
from benchmarks.common import write_result
from benchmarks.studies import Result, machine_summary, register_study
from sigmab.dispatch.genetic import hypervolume
from sigmab.dispatch.pipeline import SEARCHES, dispatch_models, load_models


def front_hypervolume(report: dict[str, Any]) -> tuple[float, tuple[float, float]]:
    """Hypervolume of a dispatch report's test front in (Top-1 %, -MACs / dearest model's MACs) and its reference."""
    models = report["models"]
    dearest = max(m["mean_macs"] for m in models)
    reference = (min(m["top1"] for m in models) - 1.0, -1.05)
    points = [(row["top1"], -row["mean_macs"] / dearest) for row in report["front"]]
    return hypervolume(points, reference), reference


REQUIRED = ("grid", "run_id", "seeds", "config", "rows", "mean_hypervolume", "adopt_nsga2",
                               "machine", "git_commit")


def dispatch_search_section(results: list[Result]) -> list[str]:
    lines = ["## The dispatcher's search: sigmab's GA against pymoo's NSGA-II", ""]
    for r in results:
        c = r["config"]
        lines += [
            f"Dispatch run `{r['run_id']}` of `{r['grid']}` (learn on {c['learn_on']}): both searches get population "
            f"{c['population']} for {c['generations']} generations (the same number of dispatcher trainings, "
            f"{r['rows'][0]['evaluations']}), on the same split and seeds. A front's hypervolume is in (Top-1 %, "
            "MACs as a share of the dearest model's) on the report half, bounded by the cheapest model's Top-1 less "
            "1 pp and 105% of the dearest model's MACs; larger is better.", "",
            "| seed | search | hypervolume | front points | best held-out Top-1 | wall time |",
            "|---|---|---|---|---|---|"]
        for row in r["rows"]:
            lines.append(f"| {row['seed']} | {row['search']} | {row['hypervolume']:.4f} | {len(row['front'])} | "
                         f"{row['best_val_top1_per_generation'][-1]:.2f}% | {row['seconds']:.0f} s |")
        mean = r["mean_hypervolume"]
        verdict = "at least as good: the nsga2 search is worth offering" if r["adopt_nsga2"] else \
            "worse: the hand-written GA stays the default"
        lines += ["", f"Mean hypervolume: GA {mean['ga']:.4f}, NSGA-II {mean['nsga2']:.4f} ({verdict}). "
                  f"Machine: {machine_summary(r)}. Source: `{r['_file']}`. Regenerate: "
                  "`python -m benchmarks.dispatch_search "
                  f"--config benchmarks/configs/{r['grid']} --only {r['run_id']} --seeds "
                  f"{' '.join(str(s) for s in r['seeds'])}`.", ""]
    return lines


register_study('dispatch_search', REQUIRED, dispatch_search_section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="a dispatch grid (resnet56_dispatch.yaml)")
    parser.add_argument("--only", required=True, help="the dispatch run of the grid to search")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    grid = load_grid(args.config)
    run = next(r for r in grid["runs"] if r["id"] == args.only)
    paths, archs = model_sources(run, runs_dir=RUNS, resolve=_resolve)
    models, meta = load_models(paths, arch=archs)
    rows = []
    for seed in args.seeds:
        base = _configs(grid, run, seed)[0]
        for search in SEARCHES:
            cfg = dataclasses.replace(base, search=search)
            t0 = time.perf_counter()
            report = dispatch_models(models, meta, cfg)
            hv, reference = front_hypervolume(report)
            rows.append({"seed": seed, "search": search, "hypervolume": hv, "reference": reference,
                         "evaluations": len(report["search"]), "front": report["front"], "models": report["models"],
                         "best_val_top1_per_generation": report["best_val_top1_per_generation"],
                         "seconds": time.perf_counter() - t0})
            print(f"seed {seed} {search}: hypervolume {hv:.4f} over {len(report['front'])} front points", flush=True)
    summary = {s: statistics.mean(r["hypervolume"] for r in rows if r["search"] == s) for s in SEARCHES}
    write_result(f"dispatch_search_{args.only}", {
        "benchmark": "dispatch_search", "grid": args.config.name, "run_id": args.only, "seeds": args.seeds,
        "config": {k: v for k, v in base.__dict__.items() if k not in ("seed", "search")},
        "rows": rows, "mean_hypervolume": summary,
        "adopt_nsga2": summary["nsga2"] >= summary["ga"]})


if __name__ == "__main__":
    main()
