import gzip
from pathlib import Path

import numpy as np
import pytest

from sigmab.data import load_split
from sigmab.data.fashion_mnist import read_idx
from sigmab.errors import DataError
from tests.data.fixtures import idx_bytes, write_fashion_mnist


def test_idx_gz_files_are_read_exactly(tmp_path: Path) -> None:
    arrays = write_fashion_mnist(tmp_path)
    train = load_split("fashion_mnist", "train", root=tmp_path)
    assert train.images.shape == (12, 1, 28, 28)
    np.testing.assert_array_equal(train.images[:, 0].numpy(), arrays["train_x"])
    np.testing.assert_array_equal(train.labels.numpy(), arrays["train_y"])
    assert train.class_names[9] == "ankle boot"
    assert len(load_split("fashion_mnist", "test", root=tmp_path)) == 5


def test_missing_folder_suggests_the_debian_package(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="apt-get install -y dataset-fashion-mnist"):
        load_split("fashion_mnist", "train", root=tmp_path / "nowhere")


def test_truncated_gzip_is_a_corrupt_archive(tmp_path: Path) -> None:
    write_fashion_mnist(tmp_path)
    f = tmp_path / "t10k-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:50])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: corrupt gzip archive"):
        load_split("fashion_mnist", "test", root=tmp_path)


def test_idx_header_errors(tmp_path: Path) -> None:
    f = tmp_path / "x.gz"
    f.write_bytes(gzip.compress(b"\x01\x02\x08\x01" + b"\x00" * 8))
    with pytest.raises(DataError, match="bad magic number"):
        read_idx(f)
    raw = bytearray(idx_bytes(np.zeros((2, 3), np.uint8)))
    raw[2] = 0x0D  # float32 elements
    f.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match="element type 0x0d"):
        read_idx(f)
    f.write_bytes(gzip.compress(idx_bytes(np.zeros((2, 3), np.uint8))[:-1]))
    with pytest.raises(DataError, match=r"header says shape \(2, 3\) but the file holds 5 values"):
        read_idx(f)


def test_image_and_label_count_mismatch(tmp_path: Path) -> None:
    write_fashion_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(4, np.uint8))))
    with pytest.raises(DataError, match="5 images but 4 labels"):
        load_split("fashion_mnist", "test", root=tmp_path)


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").is_file(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_debian_location_is_the_default() -> None:
    data = load_split("fashion_mnist", "test")
    assert data.images.shape == (10_000, 1, 28, 28) and sorted(set(data.labels.tolist())) == list(range(10))
