"""Writers of small datasets in the exact on-disk formats the real releases use."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np


def random_images(n: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def write_cifar_npz(path: Path, *, n_train: int = 20, n_test: int = 10, num_classes: int = 10) -> dict:
    rng = np.random.default_rng(1)
    arrays = {
        "x_train": random_images(n_train, (32, 32, 3), 2), "y_train": rng.integers(0, num_classes, n_train, np.uint8),
        "x_test": random_images(n_test, (32, 32, 3), 3), "y_test": rng.integers(0, num_classes, n_test, np.uint8),
    }
    np.savez(path, **arrays)
    return arrays


def _dump(path: Path, obj: dict) -> None:
    # Protocol 2 and bytes keys, as the official Python-2 cPickle files have them.
    path.write_bytes(pickle.dumps(obj, protocol=2))


def write_cifar10_pickles(root: Path, *, per_batch: int = 4) -> tuple[np.ndarray, list[int]]:
    """``root/cifar-10-batches-py/``: data_batch_1..5, test_batch, batches.meta. Returns the train set (NCHW)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    images, labels = [], []
    for i in range(1, 6):
        x = random_images(per_batch, (3072,), seed=i)
        y = [(i + j) % 10 for j in range(per_batch)]
        _dump(folder / f"data_batch_{i}", {b"batch_label": b"training batch", b"labels": y, b"data": x,
                                           b"filenames": [b"f.png"] * per_batch})
        images.append(x)
        labels += y
    _dump(folder / "test_batch", {b"labels": [3] * per_batch, b"data": random_images(per_batch, (3072,), 9)})
    _dump(folder / "batches.meta", {b"label_names": [f"c{i}".encode() for i in range(10)], b"num_vis": 3072})
    return np.concatenate(images).reshape(-1, 3, 32, 32), labels


def write_cifar100_pickles(root: Path, *, n: int = 6) -> None:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for split in ("train", "test"):
        _dump(folder / split, {b"data": random_images(n, (3072,)), b"fine_labels": list(range(95, 95 + n)),
                               b"coarse_labels": [0] * n})
    _dump(folder / "meta", {b"fine_label_names": [f"f{i}".encode() for i in range(100)],
                            b"coarse_label_names": [f"k{i}".encode() for i in range(20)]})


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_fashion_mnist(root: Path, *, n_train: int = 12, n_test: int = 5) -> dict[str, np.ndarray]:
    root.mkdir(parents=True, exist_ok=True)
    arrays = {"train_x": random_images(n_train, (28, 28), 4), "train_y": np.arange(n_train) % 10,
              "test_x": random_images(n_test, (28, 28), 5), "test_y": np.arange(n_test) % 10}
    for prefix, split in (("train", "train"), ("t10k", "test")):
        (root / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(arrays[f"{split}_x"])))
        (root / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(arrays[f"{split}_y"])))
    return arrays


def write_image_folder(root: Path, split: str = "train", *,
                       sizes: tuple[tuple[int, int], ...] = ((300, 200), (180, 260), (256, 256))) -> Path:
    """``root/split/{cat,dog}/<k>.jpg``: 'cat' is red left, blue right; 'dog' is green; one JPEG per size."""
    from PIL import Image

    for name in ("dog", "cat"):
        folder = root / split / name
        folder.mkdir(parents=True)
        for k, (w, h) in enumerate(sizes):
            pixels = np.zeros((h, w, 3), np.uint8)
            if name == "cat":
                pixels[:, : w // 2, 0] = 255
                pixels[:, w // 2 :, 2] = 255
            else:
                pixels[..., 1] = 255
            Image.fromarray(pixels).save(folder / f"{k}.jpg", quality=95)
    return root


def write_modelnet40_h5(root: Path, *, per_file: int = 5, points: int = 2048) -> dict[str, np.ndarray]:
    """The ``modelnet40_ply_hdf5_2048`` layout: two train files and one test file of ``data`` float32
    (n, points, 3), ``label`` uint8 (n, 1) and ``normal``, lists naming them with the release's
    ``data/modelnet40_ply_hdf5_2048/`` prefix, and ``shape_names.txt``."""
    import h5py

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays: dict[str, list[np.ndarray]] = {"train_data": [], "train_label": [], "test_data": [], "test_label": []}
    for split, files in (("train", ["ply_data_train0.h5", "ply_data_train1.h5"]), ("test", ["ply_data_test0.h5"])):
        for name in files:
            data = rng.uniform(-1, 1, (per_file, points, 3)).astype(np.float32)
            label = rng.integers(0, 40, (per_file, 1)).astype(np.uint8)
            with h5py.File(root / name, "w") as f:
                f.create_dataset("data", data=data)
                f.create_dataset("label", data=label)
                f.create_dataset("normal", data=np.zeros_like(data))
            arrays[f"{split}_data"].append(data)
            arrays[f"{split}_label"].append(label)
        (root / f"{split}_files.txt").write_text("".join(f"data/modelnet40_ply_hdf5_2048/{n}\n" for n in files))
    (root / "shape_names.txt").write_text("".join(f"shape{i}\n" for i in range(40)))
    return {k: np.concatenate(v) for k, v in arrays.items()}
