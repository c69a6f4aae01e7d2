"""Learning-rate schedule: linear warm-up, then cosine decay to zero, evaluated per optimizer step."""

from __future__ import annotations

import math


def cosine_lr(step: int, *, total_steps: int, warmup_steps: int, peak_lr: float) -> float:
    """Learning rate at ``step`` (0-based) of ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * peak_lr * (1.0 + math.cos(math.pi * min(1.0, progress)))
