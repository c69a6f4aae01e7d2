"""xz-compressed ``.npz`` archives, decompressed once into the user's cache and read from there after.

The source may lie on a read-only share, so nothing is written beside it. The cache entry's name carries a key
of the source's resolved path, size and modification time: a replaced or edited source gets a new entry (and
the stale one is removed). Each writer decompresses into a private temporary file and renames it into place
(:func:`~sigmab.utils.io.atomic_path`) only when the stream ended cleanly and the result is a zip archive, so
concurrent first uses (e.g. the ranks of a DDP run) and killed or corrupt decompressions never leave a
half-written entry that a later read would take.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import sys
import zipfile
from pathlib import Path

from sigmab.errors import DataError
from sigmab.utils.io import atomic_path
from sigmab.utils.progress import progress_bar

XZ_SUFFIX = ".xz"
CACHE_ENV = "SIGMAB_CACHE_DIR"
_CHUNK = 1 << 20


def cache_dir() -> Path:
    """``$SIGMAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/sigmab``, else ``~/.cache/sigmab``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "sigmab"


def is_xz(path: Path) -> bool:
    return path.name.endswith(XZ_SUFFIX)


def _entry_names(source: Path) -> tuple[str, str]:
    """(prefix shared by every entry of this source path, the entry name for its current content)."""
    resolved = source.resolve()
    stat = resolved.stat()
    where = hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    state = hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    stem = source.name[: -len(XZ_SUFFIX)]
    prefix = f"{Path(stem).stem}-{where}-"
    return prefix, f"{prefix}{state}{Path(stem).suffix}"


def decompressed_path(source: Path, *, progress: bool = True) -> Path:
    """A local decompressed copy of the xz file ``source`` (decompressed on first use, then reused).

    Raises ``DataError`` for a missing, truncated or corrupt source, or one that does not hold a zip
    archive (an ``.npz``); the cache is then left as it was.
    """
    if not source.is_file():
        raise DataError(f"data file not found: {source}")
    prefix, name = _entry_names(source)
    folder = cache_dir() / "data"
    target = folder / name
    if target.is_file():
        return target
    print(f"sigmab: decompressing {source} into {folder} (first use only)", file=sys.stderr, flush=True)
    try:
        with atomic_path(target) as tmp:
            _decompress(source, tmp, progress=progress)
            if not zipfile.is_zipfile(tmp):
                raise DataError(f"{source}: decompresses to something that is not an .npz (zip) archive")
    except OSError as exc:
        raise DataError(f"cannot write the data cache {folder} ({exc.strerror or exc}); set {CACHE_ENV} to a "
                        "writable folder") from None
    for stale in folder.glob(f"{prefix}*"):
        if stale != target and not stale.name.startswith("."):
            stale.unlink(missing_ok=True)
    return target


def _decompress(source: Path, out_path: Path, *, progress: bool) -> None:
    total = source.stat().st_size
    with open(out_path, "wb") as out, open(source, "rb") as raw:
        decoder = lzma.LZMADecompressor(format=lzma.FORMAT_AUTO)
        bar = progress_bar(iter(lambda: raw.read(_CHUNK), b""), enabled=progress, total=-(-total // _CHUNK),
                           unit="MB", desc=f"decompress {source.name}")
        try:
            for chunk in bar:
                if decoder.eof:
                    break
                out.write(decoder.decompress(chunk))
        except lzma.LZMAError as exc:
            raise DataError(f"{source}: corrupt xz data ({exc})") from None
        finally:
            bar.close()
        if not decoder.eof:
            raise DataError(f"{source}: truncated xz file (the compressed stream ends early)")
