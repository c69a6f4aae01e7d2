import torch

from sigmab.data import ArrayLoader, AugmentSpec, ImageArrays


def _data(n: int = 10) -> ImageArrays:
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 4, 4).contiguous()
    return ImageArrays(images, torch.arange(n), n, tuple(map(str, range(n))), "test")


def _labels(loader: ArrayLoader) -> list[int]:
    return [int(v) for _, y in loader for v in y]


def test_unshuffled_loader_covers_every_sample_in_order_with_normalised_inputs() -> None:
    loader = ArrayLoader(_data(), batch_size=4, mean=(0.0,), std=(1.0 / 255.0,))
    assert len(loader) == 3 and _labels(loader) == list(range(10))
    x, y = next(iter(loader))
    assert x.dtype == torch.float32 and torch.equal(x[:, 0, 0, 0], y.float())  # input value == its index


def test_shuffle_is_seeded_per_epoch() -> None:
    make = lambda seed: ArrayLoader(_data(), batch_size=3, mean=(0.0,), std=(1.0,), shuffle=True, seed=seed)  # noqa: E731
    a, b = make(0), make(0)
    assert _labels(a) == _labels(b) and sorted(_labels(a)) == list(range(10))
    first = _labels(a)
    a.set_epoch(1)
    assert _labels(a) != first
    b.set_epoch(1)
    assert _labels(a) == _labels(b)  # a resumed run at epoch 1 sees the same order
    assert _labels(make(1)) != first


def test_augmentation_is_reproducible_per_epoch() -> None:
    data = ImageArrays(torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8), torch.zeros(6, dtype=torch.long), 1,
                       ("a",), "test")
    make = lambda: ArrayLoader(data, batch_size=6, mean=(0, 0, 0), std=(1, 1, 1), shuffle=True,  # noqa: E731
                               augment_spec=AugmentSpec(crop_padding=2, hflip=True), seed=7)
    torch.testing.assert_close(next(iter(make()))[0], next(iter(make()))[0], rtol=0, atol=0)


def test_drop_last_and_rank_shards_partition_the_epoch() -> None:
    assert len(ArrayLoader(_data(), batch_size=4, mean=(0,), std=(1,), drop_last=True)) == 2
    shards = [_labels(ArrayLoader(_data(), batch_size=2, mean=(0,), std=(1,), shuffle=True, seed=3, rank=r,
                                  world_size=3)) for r in range(3)]
    assert all(len(s) == 4 for s in shards)  # 10 samples padded to 12, 4 per rank
    assert set().union(*map(set, shards)) == set(range(10))


def _augmented(device: str | None) -> list[torch.Tensor]:
    images = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    data = ImageArrays(images, torch.arange(10), 10, tuple(map(str, range(10))), "test")
    loader = ArrayLoader(data, batch_size=4, mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.2), shuffle=True, seed=5,
                         augment_spec=AugmentSpec(crop_padding=2, hflip=True), device=device)
    loader.set_epoch(2)
    return [t.cpu() for batch in loader for t in batch]


def test_a_loader_kept_on_a_device_yields_the_same_batches_there() -> None:
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    host = _augmented(None)
    for device in devices:  # the random draws come from the CPU generator on every device
        kept = _augmented(device)
        assert len(kept) == len(host)
        for a, b in zip(host, kept):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
