import pytest
import torch

from sigmab.data import get_dataset_info, load_split, sample_images
from sigmab.data.image_folder import (
    FolderLoader,
    ImageFolderDataset,
    index_image_folder,
    random_resized_box,
    read_image_folder,
)
from sigmab.data.transforms import AugmentSpec
from sigmab.errors import ConfigError, DataError
from tests.data.fixtures import write_image_folder

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def test_index_sorts_classes_and_finds_every_image(tmp_path) -> None:
    index = index_image_folder(write_image_folder(tmp_path), "train")
    assert index.classes == ["cat", "dog"] and index.labels == [0, 0, 0, 1, 1, 1]


def test_eval_preprocessing_is_resize_then_center_crop(tmp_path) -> None:
    write_image_folder(tmp_path, "val")
    data = ImageFolderDataset(index_image_folder(tmp_path, "val"), train=False, mean=MEAN, std=STD)
    x, y = data[0]  # cat, 300x200: resized to 384x256, center 224 crop keeps both halves equally
    assert x.shape == (3, 224, 224) and y == 0
    pixels = x * torch.tensor(STD).view(3, 1, 1) + torch.tensor(MEAN).view(3, 1, 1)
    assert pixels[0, :, :100].mean() > 0.95 and pixels[2, :, 124:].mean() > 0.95  # red left, blue right
    assert pixels[0, :, 124:].mean() < 0.05
    dog, label = data[3]
    assert label == 1 and (dog * 0.25 + 0.5)[1].mean() > 0.95


def test_train_crops_are_seeded_per_epoch_and_cover_the_allowed_range(tmp_path) -> None:
    data = ImageFolderDataset(index_image_folder(write_image_folder(tmp_path), "train"), train=True, mean=MEAN, std=STD)
    a = data[1][0]
    assert a.shape == (3, 224, 224) and torch.equal(a, data[1][0])
    data.set_epoch(1)
    assert not torch.equal(a, data[1][0])
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        left, top, w, h = random_resized_box(300, 200, g)
        assert 0 <= left and left + w <= 300 and 0 <= top and top + h <= 200
        assert w * h >= 0.08 * 300 * 200 * 0.9  # rounding aside, at least 8% of the area


def test_loader_shards_ranks_disjointly_and_reshuffles(tmp_path) -> None:
    index = index_image_folder(write_image_folder(tmp_path), "train")
    data = ImageFolderDataset(index, train=False, mean=MEAN, std=STD)
    ranks = [FolderLoader(data, batch_size=2, shuffle=True, seed=3, rank=r, world_size=2) for r in (0, 1)]
    seen = [list(iter(loader.sampler)) for loader in ranks]
    assert sorted(seen[0] + seen[1]) == list(range(6)) and not set(seen[0]) & set(seen[1])
    x, y = next(iter(ranks[0]))
    assert x.shape == (2, 3, 224, 224) and y.dtype == torch.int64
    ranks[0].set_epoch(5)
    assert list(iter(ranks[0].sampler)) != seen[0] or list(iter(ranks[1].sampler)) != seen[1]


def test_bad_folders_and_corrupt_images_are_clear_errors(tmp_path) -> None:
    with pytest.raises(DataError, match="no such split folder"):
        index_image_folder(tmp_path, "train")
    (tmp_path / "train").mkdir()
    with pytest.raises(DataError, match="no class folders"):
        index_image_folder(tmp_path, "train")
    (tmp_path / "train" / "empty").mkdir()
    with pytest.raises(DataError, match="empty: class folder holds no images"):
        index_image_folder(tmp_path, "train")
    (tmp_path / "train" / "empty" / "bad.jpg").write_bytes(b"not a jpeg at all")
    data = ImageFolderDataset(index_image_folder(tmp_path, "train"), train=False, mean=MEAN, std=STD)
    with pytest.raises(DataError, match="bad.jpg: cannot decode image"):
        data[0]


def test_test_split_is_the_val_folder_with_the_training_class_ids(tmp_path) -> None:
    write_image_folder(tmp_path, "train")
    write_image_folder(tmp_path, "val", sizes=((64, 64),))
    test = read_image_folder(tmp_path, "test", size=32)
    assert test.class_names == ("cat", "dog") and test.labels.tolist() == [0, 1] and len(test) == 2
    assert test.input_shape == (3, 32, 32) and test.resize == 37
    (tmp_path / "val" / "dog").rename(tmp_path / "val" / "wolf")
    with pytest.raises(DataError, match="missing: dog; unknown: wolf"):
        read_image_folder(tmp_path, "test")
    with pytest.raises(DataError, match="no such image folder"):
        read_image_folder(tmp_path / "nowhere", "train")


def test_folder_split_loads_batches_subsets_and_samples_like_in_memory_data(tmp_path) -> None:
    split = read_image_folder(write_image_folder(tmp_path), "train", size=32)
    batches = list(split.loader(batch_size=4, mean=MEAN, std=STD))
    assert [x.shape for x, _ in batches] == [(4, 3, 32, 32), (2, 3, 32, 32)]
    assert torch.cat([y for _, y in batches]).tolist() == split.labels.tolist() == [0, 0, 0, 1, 1, 1]
    everything = torch.cat([x for x, _ in batches])
    picked = sample_images(split, 3, seed=1, mean=MEAN, std=STD)
    index = torch.randperm(6, generator=torch.Generator().manual_seed(1))[:3].sort().values
    assert torch.equal(picked, everything[index])  # evaluation preprocessing, in split order
    sub = split.subset(torch.tensor([4, 0]), tag="x")
    assert sub.labels.tolist() == [1, 0] and "[x]" in sub.source
    train = split.loader(batch_size=6, mean=MEAN, std=STD, shuffle=True, augment_spec=AugmentSpec(hflip=True))
    assert not torch.equal(next(iter(train))[0].sort(0).values, everything.sort(0).values)  # random crops


def test_sized_image_folders_in_the_registry(tmp_path) -> None:
    write_image_folder(tmp_path)
    info = get_dataset_info("imagefolder-48")
    assert info.input_size == (48, 48) and info.num_classes is None and info.in_channels == 3
    rest = load_split("imagefolder-48", "train", root=tmp_path, val_fraction=0.5, seed=0)
    held = load_split("imagefolder-48", "val", root=tmp_path, val_fraction=0.5, seed=0)
    assert len(rest) == len(held) == 3 and rest.input_shape == (3, 48, 48)
    assert not set(rest.index.files) & set(held.index.files)
    with pytest.raises(ConfigError, match="imagefolder-<size>"):
        get_dataset_info("imagefolder-4")
    with pytest.raises(DataError, match="needs a data location"):
        load_split("imagefolder", "train")
