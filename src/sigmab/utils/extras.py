"""Optional dependencies: a missing extra is one clear error naming the pip command, never an ImportError trace."""

from __future__ import annotations

import importlib
from types import ModuleType

from sigmab.errors import ConfigError


def import_extra(module: str, *, extra: str = "export", purpose: str = "ONNX export and inference") -> ModuleType:
    """``module`` imported, or a :class:`ConfigError` saying which extra (``sigmab[extra]``) provides it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"{purpose} needs the [{extra}] extra ({module.split('.')[0]} is not installed): "
                          f"pip install 'sigmab[{extra}]'") from None
