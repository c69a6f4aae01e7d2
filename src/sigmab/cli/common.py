"""The one way a subcommand that writes a run folder is declared (its flags, its function, its folder's lock)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def run_command(sub: argparse._SubParsersAction, name: str, *, func: Callable[[argparse.Namespace], int], help: str,
                description: str, folder: str, in_place: bool = False, config: str | None = None,
                resume: str | None = None, preset: bool = False, options: dict[str, type] | None = None
                ) -> argparse.ArgumentParser:
    """Subcommand ``name`` that writes one run folder: ``--out FOLDER`` (``folder`` is its help), or with
    ``in_place`` a positional ``run`` folder changed in place; ``--preset`` (``preset``), ``--config YAML``
    (``config``: what the YAML holds), ``--resume`` (``resume``: what it continues), ``--no-progress``, and one flag
    per field of each ``options`` dataclass (title -> class; help from the fields), listed after the command's own
    arguments, which the caller adds to the returned parser. The CLI takes the folder's lock around ``func``."""
    from sigmab.config import add_config_flags

    p = sub.add_parser(name, help=help, description=description)
    if in_place:
        p.add_argument("run", type=Path, help=folder)
    else:
        p.add_argument("--out", type=Path, required=True, help=folder)
    if preset:
        add_preset_flag(p)
    if config is not None:
        p.add_argument("--config", help=f"YAML file with {config}")
    if resume is not None:
        p.add_argument("--resume", action="store_true", help=resume)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=func, writes="run" if in_place else "out")
    for title, cls in (options or {}).items():
        add_config_flags(p.add_argument_group(f"{title} options (defaults < --config YAML < flags)"), cls)
    return p


def add_preset_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", help="packaged settings for a model and dataset (`sigmab presets` lists them)")
