"""Top-1, parameters and MACs of the pretrained dense models in ``../shared``, through ``sigmab eval``.

Each checkpoint is evaluated on its data set's full test split by the command a user would run (``sigmab eval
--checkpoint FILE --arch ARCH --dataset NAME --data-root FILE --json``): the layout (option-A or option-B
shortcuts) and the input statistics are what sigmab reads off the file, nothing is set here.

    python -m benchmarks.dense_eval            # writes benchmarks/results/dense_pretrained.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from benchmarks.common import SHARED, write_result
from benchmarks.studies import Result, machine_summary, register_study
from sigmab.models import load_model

# (dataset, data file, arch, weights file, Top-1 its publisher reports)
CHECKPOINTS = (
    ("cifar10", "cifar10.npz.xz", "resnet20", "resnet20-12fca82f.th", 91.73),
    ("cifar10", "cifar10.npz.xz", "resnet56", "resnet56-4bfd9763.th", 93.39),
    ("cifar100", "cifar100.npz.xz", "resnet20", "cifar100_resnet20.pth", 68.83),
    ("cifar100", "cifar100.npz.xz", "resnet56", "cifar100_resnet56.pth", 72.63),
)
REQUIRED = ("rows", "machine", "git_commit")


def evaluate_row(dataset: str, data: str, arch: str, weights: str, published: float) -> dict:
    checkpoint, data_root = SHARED / "weights" / weights, SHARED / "data" / data
    command = [sys.executable, "-m", "sigmab", "eval", "--checkpoint", str(checkpoint), "--arch", arch,
               "--dataset", dataset, "--data-root", str(data_root), "--json", "--no-progress"]
    proc = subprocess.run(command, capture_output=True, text=True, check=True)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    meta = load_model(checkpoint, arch=arch).meta
    return {"dataset": dataset, "arch": arch, "checkpoint": f"weights/{weights}",
            "shortcut": meta.arch_kwargs.get("shortcut", "A"), "mean": list(meta.mean), "std": list(meta.std),
            "top1": report["top1"], "published_top1": published, "params": report["params"],
            "macs": report["macs"], "n_samples": report["n_samples"],
            "command": " ".join(["sigmab", *command[3:]]).replace(str(SHARED), "../shared")}


def dense_pretrained_section(results: list[Result]) -> list[str]:
    lines = ["## The pretrained dense models (`../shared`)", "",
             "Every study starts from one of these. Each row is `sigmab eval` on the full test split (10,000 images), "
             "with the shortcut layout and input statistics sigmab reads off the file.", "",
             "| data set | model | shortcuts | test Top-1 | published | parameters | MACs / input | input mean / std |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        for row in r["rows"]:
            stats = f"{', '.join(f'{v:g}' for v in row['mean'])} / {', '.join(f'{v:g}' for v in row['std'])}"
            lines.append(f"| {row['dataset']} | {row['arch']} | option {row['shortcut']} | {row['top1']:.2f}% | "
                         f"{row['published_top1']:.2f}% | {row['params']:,} | {row['macs']:,} | {stats} |")
        lines += ["", f"Machine: {machine_summary(r)}. Source: `{r['_file']}`. Regenerate: "
                  "`python -m benchmarks.dense_eval` "
                  "(needs `../shared`); each row's command is recorded in the file.", ""]
    return lines


register_study('dense_pretrained', REQUIRED, dense_pretrained_section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    rows = []
    for entry in CHECKPOINTS:
        rows.append(evaluate_row(*entry))
        print(f"{rows[-1]['dataset']} {rows[-1]['arch']}: {rows[-1]['top1']:.2f}%", flush=True)
    write_result("dense_pretrained", {"benchmark": "dense_pretrained", "rows": rows})


if __name__ == "__main__":
    main()
