"""End-to-end smoke run of the CLI on the shared ResNet-20 at a small budget:
``sigmab convert`` -> ``sigmab finetune`` -> ``sigmab eval --json``.

    python -m benchmarks.sigmab_smoke          # writes benchmarks/results/sigmab_smoke_resnet20.json

It shows the commands working on real data and what one soft plus one hard epoch buys; the
headline accuracy/active-parameter trade-off is the CIFAR benchmark's job.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import SHARED, write_result
from benchmarks.studies import Result, machine_summary, register_study

CONVERT = ["--depth", "2", "--split-points", "[layer2.0, layer3.0]", "--widths", "[0.5, 0.25]",
           "--calib-size", "2000"]
FINETUNE = ["--soft-epochs", "1", "--hard-epochs", "1", "--lr", "0.01", "--distill-weight", "1.0"]


def _sigmab(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "sigmab", *args, "--no-progress"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"sigmab {args[0]} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


REQUIRED = ("model", "convert_args", "finetune_args", "converted", "finetuned",
                             "finetune_metrics_csv", "convert_seconds", "finetune_seconds", "machine", "git_commit")


def sigmab_smoke_section(results: list[Result]) -> list[str]:
    lines = ["## SigmaB end to end on the shared ResNet-20 (small budget)", ""]
    for r in results:
        c, f = r["converted"], r["finetuned"]
        lines += [
            f"`sigmab convert {' '.join(r['convert_args'])}` then `sigmab finetune {' '.join(r['finetune_args'])}`, "
            f"evaluated with `sigmab eval --json` on the {f['n_samples']:,} CIFAR-10 test images. This is a check "
            "that the commands work on real data at a tiny budget, not a tuned result.", "",
            "| | top-1 | active params (mean) | reduction | stored params | active MACs (mean) | leaf shares |",
            "|---|---|---|---|---|---|---|",
            f"| dense | {f['dense_top1']:.2f}% | {f['dense_params']:,} | | {f['dense_params']:,} "
            f"| {f['dense_macs']:,} | |",
        ]
        for label, d in (("converted (no fine-tuning)", c), ("fine-tuned", f)):
            shares = ", ".join(f"{100 * leaf['share']:.1f}%" for leaf in d["leaves"])
            lines.append(f"| {label} | {d['top1']:.2f}% | {d['active_params_mean']:,.0f} | "
                         f"{100 * d['active_params_reduction']:.1f}% | {d['stored_params']:,} | "
                         f"{d['active_macs_mean']:,.0f} | {shares} |")
        lines += ["", "Per epoch (`metrics.csv`):", "", "```", r["finetune_metrics_csv"].strip(), "```", "",
                  f"Conversion and evaluation {r['convert_seconds']:.0f} s, fine-tuning {r['finetune_seconds']:.0f} s "
                  f"({machine_summary(r)}; `{r['_file']}`).", ""]
    lines += ["Regenerate: `python -m benchmarks.sigmab_smoke` (needs `../shared`).", ""]
    return lines


register_study('sigmab_smoke', REQUIRED, sigmab_smoke_section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=SHARED / "weights" / "resnet20-12fca82f.th")
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "cifar10.npz.xz")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sigmab-smoke-"))
    run = work / "tree"
    try:
        t0 = time.perf_counter()
        _sigmab("convert", "--checkpoint", str(args.weights), "--arch", "resnet20", "--dataset", "cifar10",
                "--data-root", str(args.data), "--out", str(run), *CONVERT)
        converted = json.loads(_sigmab("eval", str(run), "--json").strip().splitlines()[-1])
        t1 = time.perf_counter()
        _sigmab("finetune", str(run), *FINETUNE)
        t2 = time.perf_counter()
        tuned = json.loads(_sigmab("eval", str(run), "--json").strip().splitlines()[-1])
        metrics = (run / "finetune" / "metrics.csv").read_text()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_result("sigmab_smoke_resnet20", {
        "benchmark": "sigmab_smoke", "model": "resnet20", "dataset": "cifar10", "convert_args": CONVERT,
        "finetune_args": FINETUNE, "converted": converted, "finetuned": tuned, "finetune_metrics_csv": metrics,
        "convert_seconds": t1 - t0, "finetune_seconds": t2 - t1,
    })


if __name__ == "__main__":
    main()
