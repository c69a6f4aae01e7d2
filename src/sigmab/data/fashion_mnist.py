"""Fashion-MNIST (and MNIST) from the official IDX ``.gz`` files."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from sigmab.data.arrays import ImageArrays, make_image_arrays
from sigmab.errors import DataError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle boot")
_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
_UBYTE = 0x08


def read_idx(path: Path) -> np.ndarray:
    """Read an unsigned-byte IDX array (gzip-compressed or raw) into numpy; shape from its header."""
    if not path.is_file():
        raise DataError(f"IDX file not found: {path}")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt gzip archive ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    if raw[2] != _UBYTE:
        raise DataError(f"{path}: IDX element type 0x{raw[2]:02x} is not unsigned byte (0x08)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(raw) - header != int(np.prod(shape)):
        raise DataError(f"{path}: IDX header says shape {shape} but the file holds {len(raw) - header} values")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_fashion_mnist(root: Path, *, split: str) -> ImageArrays:
    """Images (N, 1, 28, 28) uint8 and labels (N,) from ``root``'s four official IDX files."""
    if not root.is_dir():
        raise DataError(
            f"Fashion-MNIST folder not found: {root} (on Debian: apt-get install -y dataset-fashion-mnist)"
        )
    image_file, label_file = (root / name for name in _FILES[split])
    images = read_idx(image_file)
    labels = read_idx(label_file)
    if images.ndim != 3:
        raise DataError(f"{image_file}: images have shape {images.shape}, expected (N, H, W)")
    return make_image_arrays(images, labels, num_classes=10, source=str(image_file), layout="NHW",
                             class_names=FASHION_CLASSES)
