"""CIFAR-10/100 from an ``.npz`` (``x_train``/``y_train``/``x_test``/``y_test``, NHWC uint8), the same
xz-compressed (``.npz.xz``, decompressed once into the user's cache), or the official Python-pickle folders
(``cifar-10-batches-py/``, ``cifar-100-python/``)."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from sigmab.data.arrays import ImageArrays, make_image_arrays
from sigmab.data.compressed import decompressed_path, is_xz
from sigmab.errors import DataError

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_PICKLE_DIRS = {10: "cifar-10-batches-py", 100: "cifar-100-python"}


def load_cifar_npz(path: Path, *, split: str, num_classes: int, shown: Path | None = None) -> ImageArrays:
    """Read ``x_{split}`` (N, 32, 32, 3) uint8 and ``y_{split}`` (N,) from an npz file; errors and the data's
    ``source`` name ``shown`` (the file the user gave, e.g. the ``.npz.xz`` this one was decompressed from)."""
    name = shown if shown is not None else path
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            need = {f"x_{split}", f"y_{split}"}
            if not need <= keys:
                raise DataError(f"{name}: missing arrays {sorted(need - keys)} (has {sorted(keys)})")
            images, labels = npz[f"x_{split}"], npz[f"y_{split}"]
            names = [str(n) for n in npz["class_names"]] if "class_names" in keys else None
            if names is not None and len(names) != num_classes:
                raise DataError(f"{name}: holds a {len(names)}-class data set, not CIFAR-{num_classes} "
                                f"({num_classes} classes); check --dataset")
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        if "pickle" in str(exc):  # numpy's message offers allow_pickle=True; sigmab never unpickles data
            raise DataError(f"{name}: not an npz archive of plain arrays (it would need unpickling, which sigmab "
                            "never does)") from None
        raise DataError(f"{name}: not a readable npz archive ({exc})") from None
    if names is None and num_classes == 10:
        names = list(CIFAR10_CLASSES)
    data = make_image_arrays(images, labels, num_classes=num_classes, source=str(name), layout="NHWC",
                             class_names=names)
    _check_size(data, name)
    return data


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles only the numpy arrays, lists and dicts that the CIFAR pickles hold: no code runs."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _read_pickle(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"CIFAR file not found: {path}")
    try:
        obj = _ArrayOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise DataError(f"{path}: corrupt or not a CIFAR pickle ({exc})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _batch_arrays(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    d = _read_pickle(path)
    if "data" not in d or label_key not in d:
        raise DataError(f"{path}: missing '{'data' if 'data' not in d else label_key}' entry")
    data = np.asarray(d["data"])
    if data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path}: 'data' has shape {data.shape}, expected (N, 3072)")
    return data.reshape(-1, 3, 32, 32), np.asarray(d[label_key])


def find_pickle_dir(root: Path, num_classes: int) -> Path | None:
    """``root`` itself or ``root/<official folder name>``, whichever is the pickle folder."""
    name = _PICKLE_DIRS[num_classes]
    marker = "test_batch" if num_classes == 10 else "test"
    for candidate in (root, root / name):
        if candidate.is_dir() and (candidate.name == name or (candidate / marker).is_file()):
            return candidate
    return None


def load_cifar_pickle(folder: Path, *, split: str, num_classes: int) -> ImageArrays:
    """Read the torchvision-layout pickle folder of CIFAR-10 (5 train batches) or CIFAR-100 (fine labels)."""
    if num_classes == 10:
        files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        parts = [_batch_arrays(folder / f, "labels") for f in files]
        meta_file, names_key = folder / "batches.meta", "label_names"
    else:
        parts = [_batch_arrays(folder / split, "fine_labels")]
        meta_file, names_key = folder / "meta", "fine_label_names"
    names = None
    if meta_file.is_file():
        raw = _read_pickle(meta_file).get(names_key)
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in raw] if raw is not None else None
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    data = make_image_arrays(images, labels, num_classes=num_classes, source=str(folder), layout="NCHW",
                             class_names=names)
    _check_size(data, folder)
    return data


def load_cifar(root: Path, *, split: str, num_classes: int) -> ImageArrays:
    """CIFAR from ``root``: an ``.npz`` or ``.npz.xz`` file, a pickle folder, or a folder holding the pickle
    folder."""
    if root.suffix in (".npz", ".xz") or root.is_file():
        if not root.is_file():
            raise DataError(f"CIFAR-{num_classes} npz file not found: {root}")
        npz = decompressed_path(root) if is_xz(root) else root
        return load_cifar_npz(npz, split=split, num_classes=num_classes, shown=root)
    if not root.is_dir():
        raise DataError(f"CIFAR-{num_classes} data not found: {root}")
    folder = find_pickle_dir(root, num_classes)
    if folder is None:
        raise DataError(f"{root}: no {_PICKLE_DIRS[num_classes]}/ folder and no .npz file given")
    return load_cifar_pickle(folder, split=split, num_classes=num_classes)


def _check_size(data: ImageArrays, path: Path) -> None:
    if tuple(data.images.shape[1:]) != (3, 32, 32):
        raise DataError(f"{path}: images are {tuple(data.images.shape[1:])} (C, H, W), expected (3, 32, 32)")
