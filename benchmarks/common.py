"""Helpers shared by the benchmark scripts: provenance fields and result files."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from sigmab import __version__
from sigmab.train.precision import cpu_model
from sigmab.utils.io import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
RUNS = ROOT / "benchmarks" / "runs"  # the grids' run folders (git-ignored)
SHARED = ROOT.parent / "shared"


def git_commit() -> str:
    """HEAD of this checkout; ``SIGMAB_GIT_COMMIT`` where the tree was copied without its repository."""
    if os.environ.get("SIGMAB_GIT_COMMIT"):
        return os.environ["SIGMAB_GIT_COMMIT"]
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> dict[str, Any]:
    return {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "processor": platform.processor() or platform.machine(),
            "cpu_model": cpu_model(),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def seconds(fn: Callable[[], object]) -> float:
    """Wall time of one call of ``fn``."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def summarise(samples: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples),
            "runs": [round(s, 3) for s in samples]}


def per_cpu_name(stem: str, cpu: str, isa: str) -> str:
    """A results file name per kind of CPU, since speed depends on it: ``train_speed-intel-xeon-processor-amx``."""
    slug = re.sub(r"[^a-z0-9]+", "-", re.sub(r"\(r\)|\(tm\)", "", cpu.lower())).strip("-")
    return f"{stem}-{slug}-{isa}"


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """``RESULTS/name.json``, atomically, with provenance; ``name`` may name a subfolder (``int8_speed/...``)."""
    path = RESULTS / f"{name}.json"
    atomic_write_json(path, {**payload, "git_commit": git_commit(), "sigmab_version": __version__,
                             "machine": machine()})
    print(f"wrote {path}")
    return path
