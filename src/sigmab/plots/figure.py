"""Matplotlib, imported on demand (it is an optional extra), and atomic PNG saving."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sigmab.errors import ConfigError
from sigmab.utils.io import atomic_path


def pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("plots need matplotlib: pip install 'sigmab[plots]'") from None
    return plt


def save_figure(fig: Any, path: str | os.PathLike[str], *, dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically and close it."""
    target = Path(path)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    pyplot().close(fig)
    return target
