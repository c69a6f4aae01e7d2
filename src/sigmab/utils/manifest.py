"""The manifest every sigmab run folder carries: its kind and the format of its spec.

``sigmab.json`` says what a folder is (``tree``, ``pruned``, ``nested``, ``dense``), so a reader need
not guess from which files exist. Folders written before manifests existed are recognised by their
spec file (``tree.json``, ``pruned.json``, ``nested.json``, a dense run's ``summary.json``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sigmab.errors import CheckpointError
from sigmab.utils.io import atomic_write_json

FOLDER_MANIFEST = "sigmab.json"
MANIFEST_FORMAT = "sigmab.folder/1"
# kind -> the spec file that identifies a folder of that kind written before manifests
LEGACY_SPEC_FILES = {"tree": "tree.json", "pruned": "pruned.json", "nested": "nested.json", "dense": "summary.json"}


def write_folder_manifest(folder: str | os.PathLike[str], *, kind: str, spec_format: str) -> None:
    from sigmab import __version__

    if kind not in LEGACY_SPEC_FILES:
        raise ValueError(f"unknown folder kind {kind!r}")
    atomic_write_json(Path(folder) / FOLDER_MANIFEST, {"format": MANIFEST_FORMAT, "kind": kind,
                                                       "spec_format": spec_format, "sigmab_version": __version__})


def folder_kind(folder: str | os.PathLike[str]) -> str:
    """The kind of run folder ``folder`` is, from its manifest, else from its spec file; one clear error if none."""
    folder = Path(folder)
    manifest = folder / FOLDER_MANIFEST
    if manifest.is_file():
        try:
            data = json.loads(manifest.read_text())
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{manifest}: invalid JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT or data.get("kind") not in \
                LEGACY_SPEC_FILES:
            raise CheckpointError(f"{manifest}: not a sigmab folder manifest")
        return str(data["kind"])
    for kind, spec in LEGACY_SPEC_FILES.items():
        if (folder / spec).is_file():
            return kind
    if not folder.is_dir():
        raise CheckpointError(f"not a folder: {folder}")
    raise CheckpointError(f"{folder} is not a sigmab run folder (no {FOLDER_MANIFEST}, "
                          f"{', '.join(LEGACY_SPEC_FILES.values())})")
