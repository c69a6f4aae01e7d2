"""Atomic file writes: a crash or a bad input never leaves a half-written result behind."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; rename it onto ``path`` only on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name ends in the target's extension: writers that check it (torch.export: .pt2) stay quiet.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_with(path: str | os.PathLike[str], writer: Callable[[Path], None]) -> None:
    with atomic_path(path) as tmp:
        writer(tmp)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (temp file + rename)."""
    _write_with(path, lambda tmp: tmp.write_text(text))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to ``path`` atomically; ``obj`` must hold only tensors and plain types."""
    _write_with(path, lambda tmp: torch.save(obj, tmp))


@contextmanager
def building_folder(out: str | os.PathLike[str], *, what: str) -> Iterator[Path]:
    """Build a ``what`` folder complete or not at all: yield a hidden sibling to write into, renamed onto ``out``
    only when the block finishes. A killed run leaves no half-written ``out`` (its sibling is cleared by the next
    run), and an unwritable ``out`` fails here, before any work. ``out`` must be absent or empty."""
    from sigmab.errors import ConfigError

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} already exists and is not an empty folder; choose another --out for the {what}")
    partial = out.with_name(f".{out.name}.partial")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
    except OSError as exc:
        raise ConfigError(f"cannot write the {what} folder {out}: {exc.strerror or exc}") from None
    try:
        yield partial
        if out.exists():
            out.rmdir()
        os.replace(partial, out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def check_writable(path: str | os.PathLike[str], *, what: str) -> None:
    """Fail now, with one clear error, if a file or folder cannot be created at ``path`` - not after the work
    whose result it was meant to hold. Creates nothing: the nearest existing ancestor must be a writable folder."""
    from sigmab.errors import ConfigError

    target = Path(path).absolute()
    ancestor = target if target.exists() else next(p for p in target.parents if p.exists())
    if target.exists() and not target.is_dir():
        ancestor = target.parent
    if not ancestor.is_dir():
        raise ConfigError(f"cannot write the {what} {path}: {ancestor} is not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write the {what} {path}: {ancestor} is not writable")


def check_only_own_files(folder: str | os.PathLike[str], own: Iterable[str], *, what: str) -> None:
    """Refuse to write a ``what`` into ``folder`` when it holds files that no such run writes (``own`` names
    them; hidden files are temporaries and locks): a typo in ``--out`` must not mix results into another folder."""
    from sigmab.errors import ConfigError

    folder = Path(folder)
    if not folder.is_dir():
        return
    foreign = sorted(p.name for p in folder.iterdir() if p.name not in set(own) and not p.name.startswith("."))
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise ConfigError(f"{folder} holds files that are not a {what}'s ({shown}); choose a new or empty folder")


def check_output_file(path: str | os.PathLike[str], *, what: str, force: bool, flag: str = "--force") -> None:
    """Before the work whose result goes to ``path``: one clear error if it is a folder, cannot be written, or
    already exists (unless ``force``) - never a traceback or a silent overwrite after the work is done."""
    from sigmab.errors import ConfigError

    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"the {what} {path} is a folder; give a file name")
    if target.exists() and not force:
        raise ConfigError(f"the {what} {path} already exists; pass {flag} to overwrite it")
    check_writable(target, what=what)
