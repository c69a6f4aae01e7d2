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

CONVERT = ["--depth", "2", "--split-points", "[layer2.0, layer3.0]", "--widths", "[0.5, 0.25]",
           "--calib-size", "2000"]
FINETUNE = ["--soft-epochs", "1", "--hard-epochs", "1", "--lr", "0.01", "--distill-weight", "1.0"]


def _sigmab(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "sigmab", *args, "--no-progress"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"sigmab {args[0]} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


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
