"""The grid runs' study (result kind ``cifar_run``, written by ``python -m benchmarks.cifar``): CIFAR-10 and other
image grids, the CIFAR-100 routing-vs-static study and point-set grids, each in a section and plots of its own."""

from __future__ import annotations

from pathlib import Path

from benchmarks.c100_report import (
    c100_section,
    has_shape_control,
    is_c100,
    lead_section,
    write_c100_plot,
    write_decomposition_plot,
)
from benchmarks.cifar_report import cifar_section, write_cifar_plots
from benchmarks.points_report import points_section, write_points_plots
from benchmarks.studies import Result, register_study
from sigmab.data import get_dataset_info
from sigmab.errors import ConfigError
from sigmab.eval import RESULT_FIELDS

REQUIRED = ("model", "dataset", "method", "config", *RESULT_FIELDS, "finetune_epochs", "wall_seconds", "seed",
            "git_commit", "run_id")


def _on_point_sets(r: Result) -> bool:
    """Grid runs on point-set datasets get their own section; image grids (CIFAR...) share the CIFAR one."""
    try:
        return get_dataset_info(r["dataset"]).augment.points
    except ConfigError:
        return False


def split_grids(runs: list[Result]) -> tuple[list[Result], list[Result], list[Result]]:
    """(CIFAR-10 and other image grids, the CIFAR-100 study, point-set grids): each has its own section."""
    points = [r for r in runs if _on_point_sets(r)]
    c100 = [r for r in runs if is_c100(r)]
    return [r for r in runs if not _on_point_sets(r) and not is_c100(r)], c100, points


def lead_runs(images: list[Result]) -> list[Result]:
    """The image-grid runs of every model with a shape control: they stay in the CIFAR-10 tables and are also
    judged like the CIFAR-100 study (issue 30's MobileNetV2 lead)."""
    models = has_shape_control(images)
    return [r for r in images if r["model"] in models]


def grid_sections(runs: list[Result]) -> list[str]:
    images, c100, points = split_grids(runs)
    lead = lead_runs(images)
    return ((cifar_section(images) if images else []) + (c100_section(c100) if c100 else [])
            + (lead_section(lead) if lead else []) + (points_section(points) if points else []))


def write_grid_plots(runs: list[Result], folder: Path) -> None:
    images, c100, points = split_grids(runs)
    if images:
        write_cifar_plots(images, folder)
    if c100:
        write_c100_plot(c100, folder)
        write_decomposition_plot(c100, folder)
    if points:
        write_points_plots(points, folder)


register_study("cifar_run", REQUIRED, grid_sections, write_grid_plots)
