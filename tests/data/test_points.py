import numpy as np
import pytest
import torch

from sigmab.data import load_split
from sigmab.data.arrays import make_image_arrays
from sigmab.data.points import PointAugment, image_point_sets, load_modelnet40, make_point_arrays
from sigmab.data.transforms import AugmentSpec
from sigmab.errors import DataError
from tests.data.fixtures import write_modelnet40_h5


def test_modelnet40_reads_the_hdf5_release_layout(tmp_path) -> None:
    arrays = write_modelnet40_h5(tmp_path)
    train = load_modelnet40(tmp_path, "train")
    assert train.points.shape == (10, 3, 1024) and train.input_shape == (3, 1024)
    np.testing.assert_array_equal(train.points.transpose(1, 2).numpy(), arrays["train_data"][:, :1024])
    assert train.labels.tolist() == arrays["train_label"][:, 0].tolist() and train.class_names[39] == "shape39"
    test = load_split("modelnet40", "test", root=tmp_path)
    assert len(test) == 5 and test.num_classes == 40
    assert load_modelnet40(tmp_path, "test", num_points=2048).points.shape == (5, 3, 2048)


@pytest.mark.parametrize(("damage", "message"), [
    (lambda root: (root / "train_files.txt").unlink(), "train_files.txt: missing"),
    (lambda root: (root / "ply_data_train1.h5").unlink(), "ply_data_train1.h5: missing"),
    (lambda root: (root / "ply_data_train0.h5").write_bytes(b"not hdf5"), "not a readable HDF5 file"),
    (lambda root: (root / "shape_names.txt").write_text("a\nb\n"), "2 class names, expected 40"),
])
def test_modelnet40_damage_is_one_clear_error(tmp_path, damage, message) -> None:
    write_modelnet40_h5(tmp_path)
    damage(tmp_path)
    with pytest.raises(DataError, match=message):
        load_modelnet40(tmp_path, "train")


def test_modelnet40_bad_arrays(tmp_path) -> None:
    import h5py

    write_modelnet40_h5(tmp_path)
    with h5py.File(tmp_path / "ply_data_test0.h5", "r+") as f:
        data = f["data"][...]
        data[0, 0, 0] = np.nan
        f["data"][...] = data
    with pytest.raises(DataError, match="NaN or infinite"):
        load_modelnet40(tmp_path, "test")
    with pytest.raises(DataError, match="fewer than the 4096"):
        load_modelnet40(tmp_path, "train", num_points=4096)
    with pytest.raises(DataError, match=r"labels out of range \[0, 40\)"):
        make_point_arrays(np.zeros((2, 8, 3), np.float32), np.array([0, 40]), num_classes=40, source="x")


def test_point_augmentation_moves_xyz_only_and_is_seeded() -> None:
    points = torch.randn(4, 4, 50)
    aug = PointAugment(shuffle=False)
    a = aug(points, torch.Generator().manual_seed(0))
    assert torch.equal(a, aug(points, torch.Generator().manual_seed(0)))
    assert torch.equal(a[:, 3], points[:, 3]) and not torch.allclose(a[:, :3], points[:, :3])
    # a scale in [0.8, 1.25] and a shift within 0.1 plus clipped jitter keep every point near its original
    assert ((a[:, :3] - points[:, :3]).abs() <= 0.25 * points[:, :3].abs() + 0.15 + 1e-6).all()
    shuffled = PointAugment(scale=(1.0, 1.0), shift=0.0, jitter=0.0)(points, torch.Generator().manual_seed(1))
    assert torch.equal(shuffled.sort(dim=2).values, points.sort(dim=2).values)  # a permutation of each set
    assert not torch.equal(shuffled, points)
    planar = PointAugment(planar=True)(points, torch.Generator().manual_seed(0))
    assert torch.equal(planar[:, 2].sort(1).values, points[:, 2].sort(1).values)


def test_fashion_style_images_become_2d_point_sets() -> None:
    images = np.zeros((2, 28, 28), np.uint8)
    images[0, 0, 0] = 200  # top-left corner: x = -0.964, y = 0.964
    images[0, 27, 27] = 100
    images[1, 10:20, 5:25] = 255  # 200 bright pixels
    data = image_point_sets(make_image_arrays(images, [3, 7], num_classes=10, source="t", layout="NHW"),
                            num_points=16)
    assert data.points.shape == (2, 4, 16) and data.labels.tolist() == [3, 7]
    first = data.points[0]
    torch.testing.assert_close(first[0].abs(), torch.full((16,), 13.5 / 14))
    assert torch.equal(first[2], torch.zeros(16))
    corner = first[:, first[0] < 0][:, 0]
    torch.testing.assert_close(corner, torch.tensor([-13.5 / 14, 13.5 / 14, 0.0, 200 / 255]))
    assert (first[0] < 0).sum() == 8  # two pixels, repeated cyclically to fill 16 slots
    second = data.points[1]
    assert len({(x, y) for x, y in zip(second[0].tolist(), second[1].tolist())}) == 16  # no repeats when enough
    assert data.augmentation.planar
    blank = make_image_arrays(np.zeros((1, 28, 28), np.uint8), [0], num_classes=10, source="b", layout="NHW")
    with pytest.raises(DataError, match="image 0 has no pixel above 32"):
        image_point_sets(blank)


def test_point_loader_normalises_augments_and_shards() -> None:
    data = make_point_arrays(np.random.default_rng(0).normal(size=(10, 20, 4)).astype(np.float32), np.arange(10),
                             num_classes=10, source="t")
    plain = torch.cat([x for x, _ in data.loader(batch_size=4, mean=(1.0,) * 4, std=(2.0,) * 4)])
    torch.testing.assert_close(plain, (data.points - 1.0) / 2.0)
    ranks = [data.loader(batch_size=2, mean=(0.0,) * 4, std=(1.0,) * 4, shuffle=True, seed=3, rank=r, world_size=2)
             for r in (0, 1)]
    labels = [torch.cat([y for _, y in loader]).tolist() for loader in ranks]
    assert sorted(labels[0] + labels[1]) == list(range(10))
    train = data.loader(batch_size=10, mean=(0.0,) * 4, std=(1.0,) * 4, augment_spec=AugmentSpec(points=True))
    x, _ = next(iter(train))
    assert not torch.allclose(x, data.points)
    with pytest.raises(ValueError, match="4 channels"):
        data.loader(batch_size=2, mean=(0.0,), std=(1.0,))
