"""The registry of benchmark studies: a study is one module that registers its result kind (the ``benchmark`` field
of its JSON files in ``benchmarks/results/``), the fields every such file must hold, its BENCHMARKS.md section and
its plots. ``benchmarks.report`` reads the files, checks them against their study and renders the sections in
``REPORT_ORDER``; a new study is one module and one line there."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Result = dict[str, Any]
Section = Callable[[list[Result]], list[str]]
Plots = Callable[[list[Result], Path], None]


@dataclass(frozen=True)
class Study:
    kind: str
    required: tuple[str, ...]
    section: Section
    plots: Plots | None = None


STUDIES: dict[str, Study] = {}


def register_study(kind: str, required: tuple[str, ...], section: Section, plots: Plots | None = None) -> Study:
    """Register the study of result kind ``kind``: files must hold ``required``; ``section(results)`` renders its
    BENCHMARKS.md lines and ``plots(results, folder)`` writes its plots."""
    if kind in STUDIES:
        raise ValueError(f"benchmark study {kind!r} is registered twice")
    STUDIES[kind] = Study(kind, tuple(required), section, plots)
    return STUDIES[kind]


def machine_summary(r: Result) -> str:
    m = r["machine"]
    return f"{m['cpu_count']} CPUs, {m['torch_threads']} torch threads, torch {m['torch']}"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"
