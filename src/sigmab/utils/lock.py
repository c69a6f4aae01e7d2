"""One writer per run folder: an advisory lock held for as long as a command writes the folder.

Two commands writing one folder at once (two ``sigmab finetune DIR``, two ``convert --out DIR``) would leave a mix
of both runs' config, metrics and weights that ``--resume`` then accepts. The lock file sits beside the folder
(``.NAME.lock``), not in it, because most commands create their folder and a lock must exist before it does. The
operating system drops the lock when its holder dies (``kill -9`` included), so no stale lock ever blocks a rerun.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sigmab.errors import ConfigError
from sigmab.utils.io import check_writable

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock; there the lock is a no-op
    fcntl = None  # type: ignore[assignment]


def lock_path(folder: str | os.PathLike[str]) -> Path:
    """The lock file of run folder ``folder``: ``.NAME.lock`` in its parent."""
    folder = Path(folder).absolute()
    return folder.with_name(f".{folder.name}.lock")


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        return ""
    return f" (process {pid})" if pid.isdigit() else ""


def _is_secondary_rank() -> bool:
    # Under torchrun every rank runs the same command on the same folder; rank 0 holds the lock for all of them.
    return int(os.environ.get("RANK", "0")) != 0


@contextmanager
def folder_lock(folder: str | os.PathLike[str], *, what: str = "run folder") -> Iterator[None]:
    """Hold the exclusive lock of ``folder`` for the block; one clear :class:`ConfigError` at once if another
    process holds it. The lock file is removed on release."""
    if fcntl is None or _is_secondary_rank():
        yield
        return
    if Path(folder).exists() and not Path(folder).is_dir():
        raise ConfigError(f"cannot write the {what} {folder}: it is a file, not a folder")
    check_writable(folder, what=what)
    path = lock_path(folder)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot write the {what} {folder}: {exc.strerror or exc}") from None
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(f"cannot write the {what} {folder}: cannot create its lock file {path} "
                              f"({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigError(f"another sigmab command is writing the {what} {folder}{_holder(path)}; wait for it "
                              "to finish or choose another folder") from None
        # The previous holder unlinks the file on release: if ours is no longer the file at `path`, lock anew.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        os.close(fd)
