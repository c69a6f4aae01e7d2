"""Wall time of the README's first command, ``make demo``, in a fresh clone of this repository.

The virtual environment is created and populated from scratch each time; pip's wheel cache is
warm after the first repeat (the issue's condition: "once the wheels are cached").

    python -m benchmarks.demo_time             # writes benchmarks/results/demo_time.json
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, summarise, write_result
from benchmarks.studies import Result, machine_summary, register_study

REQUIRED = ("command", "seconds", "target_seconds", "machine", "git_commit")


def demo_time_section(results: list[Result]) -> list[str]:
    lines = ["## `make demo` from a fresh clone", "", "| command | wall (median) | runs | target | source |",
             "|---|---|---|---|---|"]
    for r in results:
        s = r["seconds"]
        verdict = "met" if s["median"] <= r["target_seconds"] else "**missed**"
        lines.append(f"| `{r['command']}` | {s['median']:.1f} s | {', '.join(f'{v:.1f}' for v in s['runs'])} s "
                     f"| <= {r['target_seconds']:.0f} s: {verdict} | `{r['_file']}` |")
    lines += ["", f"Machine: {machine_summary(results[0])}. Each run clones the repository, creates the virtual "
              "environment, installs sigmab with its pinned dependencies (pip's wheel cache warm) and runs "
              "`sigmab demo`.", "", "Regenerate: `python -m benchmarks.demo_time`.", ""]
    return lines


register_study('demo_time', REQUIRED, demo_time_section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    samples = []
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            clone = Path(tmp) / "sigmab"
            subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
            t0 = time.perf_counter()
            proc = subprocess.run(["make", "demo"], cwd=clone, capture_output=True, text=True)
            samples.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                raise SystemExit(f"make demo failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        print(f"repeat {i + 1}/{args.repeats}: {samples[-1]:.1f}s", flush=True)
    write_result("demo_time", {"benchmark": "demo_time", "command": "make demo", "seconds": summarise(samples),
                               "target_seconds": 120.0})


if __name__ == "__main__":
    main()
