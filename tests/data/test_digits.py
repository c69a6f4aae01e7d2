import torch

from sigmab.data import load_split


def test_digits_split_is_fixed_disjoint_and_complete() -> None:
    train, test = load_split("digits", "train"), load_split("digits", "test")
    assert len(train) + len(test) == 1797 and len(test) == 359
    assert train.images.shape[1:] == (1, 8, 8) and train.images.dtype == torch.uint8
    assert int(train.images.max()) == 255  # 0..16 scaled to 0..255
    as_rows = lambda d: {tuple(r) for r in d.images.flatten(1).tolist()}  # noqa: E731
    assert len(as_rows(train) & as_rows(test)) < 5  # a few digits are exact duplicates in the source set
    again = load_split("digits", "test")
    assert torch.equal(again.images, test.images) and torch.equal(again.labels, test.labels)
