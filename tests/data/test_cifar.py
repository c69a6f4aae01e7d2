import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from sigmab.data import load_split
from sigmab.errors import DataError
from tests.data.fixtures import write_cifar10_pickles, write_cifar100_pickles, write_cifar_npz


def test_npz_is_read_as_nchw_with_labels(tmp_path: Path) -> None:
    arrays = write_cifar_npz(tmp_path / "c.npz")
    data = load_split("cifar10", "train", root=tmp_path / "c.npz")
    assert data.images.shape == (20, 3, 32, 32) and data.images.dtype == torch.uint8
    np.testing.assert_array_equal(data.images.permute(0, 2, 3, 1).numpy(), arrays["x_train"])
    np.testing.assert_array_equal(data.labels.numpy(), arrays["y_train"])
    assert data.class_names[0] == "airplane"
    assert len(load_split("cifar10", "test", root=tmp_path / "c.npz")) == 10


def test_cifar10_pickle_folder_matches_written_batches(tmp_path: Path) -> None:
    images, labels = write_cifar10_pickles(tmp_path)
    for root in (tmp_path, tmp_path / "cifar-10-batches-py"):  # the parent or the folder itself
        data = load_split("cifar10", "train", root=root)
        np.testing.assert_array_equal(data.images.numpy(), images)
        assert data.labels.tolist() == labels
        assert data.class_names == tuple(f"c{i}" for i in range(10))
    assert load_split("cifar10", "test", root=tmp_path).labels.tolist() == [3, 3, 3, 3]


def test_cifar100_labels_out_of_range_name_the_folder(tmp_path: Path) -> None:
    write_cifar100_pickles(tmp_path, n=6)  # fine labels 95..100: 100 is out of range
    with pytest.raises(DataError, match=r"cifar-100-python: labels out of range \[0, 100\): found min 95, max 100"):
        load_split("cifar100", "train", root=tmp_path)


def test_cifar100_in_range_labels_load(tmp_path: Path) -> None:
    write_cifar100_pickles(tmp_path, n=5)
    data = load_split("cifar100", "train", root=tmp_path)
    assert data.labels.tolist() == [95, 96, 97, 98, 99] and data.class_names[99] == "f99"


def test_missing_locations_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="npz file not found"):
        load_split("cifar10", "test", root=tmp_path / "absent.npz")
    with pytest.raises(DataError, match="no cifar-10-batches-py/ folder"):
        load_split("cifar10", "test", root=tmp_path)
    with pytest.raises(DataError, match="needs a data location"):
        load_split("cifar10", "test")


def test_missing_batch_file_is_named(tmp_path: Path) -> None:
    write_cifar10_pickles(tmp_path)
    os.remove(tmp_path / "cifar-10-batches-py" / "data_batch_3")
    with pytest.raises(DataError, match="CIFAR file not found: .*data_batch_3"):
        load_split("cifar10", "train", root=tmp_path)


def test_wrong_shape_and_bad_labels_in_npz(tmp_path: Path) -> None:
    np.savez(tmp_path / "shape.npz", x_test=np.zeros((4, 28, 28, 3), np.uint8), y_test=np.zeros(4, np.uint8))
    with pytest.raises(DataError, match=r"shape.npz: images are \(3, 28, 28\).*expected \(3, 32, 32\)"):
        load_split("cifar10", "test", root=tmp_path / "shape.npz")
    np.savez(tmp_path / "labels.npz", x_test=np.zeros((4, 32, 32, 3), np.uint8), y_test=np.array([0, 1, 2, 10]))
    with pytest.raises(DataError, match=r"labels.npz: labels out of range \[0, 10\)"):
        load_split("cifar10", "test", root=tmp_path / "labels.npz")
    np.savez(tmp_path / "count.npz", x_test=np.zeros((4, 32, 32, 3), np.uint8), y_test=np.zeros(3, np.uint8))
    with pytest.raises(DataError, match="4 images but 3 labels"):
        load_split("cifar10", "test", root=tmp_path / "count.npz")
    np.savez(tmp_path / "keys.npz", x_train=np.zeros((4, 32, 32, 3), np.uint8))
    with pytest.raises(DataError, match=r"keys.npz: missing arrays \['x_test', 'y_test'\]"):
        load_split("cifar10", "test", root=tmp_path / "keys.npz")


def test_corrupt_archives_are_reported(tmp_path: Path) -> None:
    write_cifar_npz(tmp_path / "c.npz")
    raw = (tmp_path / "c.npz").read_bytes()
    (tmp_path / "c.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="c.npz: not a readable npz archive"):
        load_split("cifar10", "test", root=tmp_path / "c.npz")
    write_cifar10_pickles(tmp_path / "p")
    batch = tmp_path / "p" / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(batch.read_bytes()[:100])
    with pytest.raises(DataError, match="test_batch: corrupt or not a CIFAR pickle"):
        load_split("cifar10", "test", root=tmp_path / "p")


def test_pickle_reader_runs_no_code(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch pwned",))

    write_cifar10_pickles(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(DataError, match="refusing to load"):
        load_split("cifar10", "test", root=tmp_path)


def test_a_file_that_would_need_unpickling_is_refused_without_advice_to_unpickle(tmp_path) -> None:
    from sigmab.data.cifar import load_cifar_npz
    from sigmab.errors import DataError

    path = tmp_path / "text.npz"
    path.write_text("not an archive at all\n")
    with pytest.raises(DataError) as error:
        load_cifar_npz(path, split="train", num_classes=10)
    assert "unsafely" not in str(error.value) and "allow_pickle" not in str(error.value)
