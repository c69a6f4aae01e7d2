import numpy as np
import pytest
import torch
from PIL import Image

from sigmab.data.image_folder import (
    FolderLoader,
    ImageFolderDataset,
    index_image_folder,
    random_resized_box,
)
from sigmab.errors import DataError

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def make_folder(root, split="train", sizes=((300, 200), (180, 260), (256, 256))):
    """Classes 'cat' (red left half, blue right half) and 'dog' (green), JPEGs of several sizes."""
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


def test_index_sorts_classes_and_finds_every_image(tmp_path) -> None:
    index = index_image_folder(make_folder(tmp_path), "train")
    assert index.classes == ["cat", "dog"] and index.labels == [0, 0, 0, 1, 1, 1]


def test_eval_preprocessing_is_resize_then_center_crop(tmp_path) -> None:
    make_folder(tmp_path, "val")
    data = ImageFolderDataset(index_image_folder(tmp_path, "val"), train=False, mean=MEAN, std=STD)
    x, y = data[0]  # cat, 300x200: resized to 384x256, center 224 crop keeps both halves equally
    assert x.shape == (3, 224, 224) and y == 0
    pixels = x * torch.tensor(STD).view(3, 1, 1) + torch.tensor(MEAN).view(3, 1, 1)
    assert pixels[0, :, :100].mean() > 0.95 and pixels[2, :, 124:].mean() > 0.95  # red left, blue right
    assert pixels[0, :, 124:].mean() < 0.05
    dog, label = data[3]
    assert label == 1 and (dog * 0.25 + 0.5)[1].mean() > 0.95


def test_train_crops_are_seeded_per_epoch_and_cover_the_allowed_range(tmp_path) -> None:
    data = ImageFolderDataset(index_image_folder(make_folder(tmp_path), "train"), train=True, mean=MEAN, std=STD)
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
    data = ImageFolderDataset(index_image_folder(make_folder(tmp_path), "train"), train=False, mean=MEAN, std=STD)
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
