from pathlib import Path

import pytest
import torch

from sigmab.data import load_split, split_holdout
from sigmab.errors import ConfigError, DataError
from tests.data.fixtures import write_cifar_npz


def test_holdout_split_is_disjoint_seeded_and_complete(tmp_path: Path) -> None:
    write_cifar_npz(tmp_path / "c.npz", n_train=50)
    train = load_split("cifar10", "train", root=tmp_path / "c.npz", val_fraction=0.2, seed=3)
    val = load_split("cifar10", "val", root=tmp_path / "c.npz", val_fraction=0.2, seed=3)
    full = load_split("cifar10", "train", root=tmp_path / "c.npz")
    assert len(train) == 40 and len(val) == 10
    rows = lambda d: {tuple(r) for r in d.images.flatten(1).tolist()}  # noqa: E731
    assert rows(train) | rows(val) == rows(full) and not rows(train) & rows(val)
    other = load_split("cifar10", "val", root=tmp_path / "c.npz", val_fraction=0.2, seed=4)
    assert not torch.equal(other.images, val.images)


def test_val_split_needs_a_fraction_and_names_are_checked() -> None:
    with pytest.raises(ConfigError, match="needs a hold-out fraction"):
        load_split("digits", "val")
    with pytest.raises(ConfigError, match="unknown dataset 'imagenet'"):
        load_split("imagenet", "train")
    with pytest.raises(ConfigError, match="unknown split 'dev'"):
        load_split("digits", "dev")
    with pytest.raises(DataError, match="fraction must be in"):
        split_holdout(load_split("digits", "test"), fraction=1.0, seed=0)
