"""Run-folder files shared by every training loop: per-epoch CSV and resume checkpoints."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sigmab.errors import CheckpointError, ConfigError
from sigmab.models import load_checkpoint
from sigmab.models.checkpoint import Checkpoint
from sigmab.utils.io import atomic_torch_save, atomic_write_text


def write_metrics(path: Path, history: list[dict[str, Any]], fields: Sequence[str]) -> None:
    """Rewrite ``path`` atomically with one CSV row per epoch of ``history``."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(path, buf.getvalue())


def check_run_folder(run_dir: Path, *, resume: bool) -> Path:
    """The resume checkpoint path, after refusing to resume nothing or to overwrite a run."""
    last = run_dir / "last.pt"
    if resume and not last.is_file():
        raise CheckpointError(f"nothing to resume: {last} does not exist")
    if not resume and last.is_file():
        raise ConfigError(f"{run_dir} already holds a run; pass --resume to continue it, or remove {run_dir} to "
                          "start it over")
    return last


def save_resume_checkpoint(path: Path, *, fmt: str, **fields: Any) -> None:
    atomic_torch_save({"format": fmt, **fields}, path)


def restore_run(path: Path, *, fmt: str, model: Any, optimizer: Any) -> tuple[list[dict[str, Any]], int]:
    """Load weights and optimizer state from a resume checkpoint; returns (history, first epoch to run)."""
    from sigmab.models import load_weights

    ckpt = load_resume_checkpoint(path, fmt=fmt)
    load_weights(model, ckpt.state_dict, source=str(path))
    optimizer.load_state_dict(ckpt.extra["optimizer"])
    return list(ckpt.extra["history"]), int(ckpt.extra["epoch"]) + 1


def load_resume_checkpoint(path: Path, *, fmt: str) -> Checkpoint:
    ckpt = load_checkpoint(path)
    if ckpt.extra.get("format") != fmt:
        raise CheckpointError(f"{path}: not a {fmt} checkpoint")
    return ckpt
