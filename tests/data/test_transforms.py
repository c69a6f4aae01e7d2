import torch
import torch.nn.functional as F

from sigmab.data.transforms import AugmentSpec, Normalize, augment, random_crop, random_hflip


def test_random_crop_equals_a_crop_of_the_padded_image_at_some_offset() -> None:
    images = torch.randint(0, 256, (16, 3, 6, 5), dtype=torch.uint8)
    out = random_crop(images, 2, torch.Generator().manual_seed(0))
    padded = F.pad(images, (2, 2, 2, 2))
    offsets = set()
    for i in range(16):
        matches = [(dy, dx) for dy in range(5) for dx in range(5)
                   if torch.equal(out[i], padded[i, :, dy:dy + 6, dx:dx + 5])]
        assert matches, f"image {i} is not a crop of its padded version"
        offsets.add(matches[0])
    assert len(offsets) > 3  # offsets really vary


def test_zero_padding_crop_is_identity_and_hflip_mirrors_about_half() -> None:
    images = torch.randint(0, 256, (200, 1, 4, 4), dtype=torch.uint8)
    assert torch.equal(random_crop(images, 0, torch.Generator()), images)
    flipped = random_hflip(images, torch.Generator().manual_seed(1))
    mirrored = torch.tensor([torch.equal(f, i.flip(2)) and not torch.equal(f, i) for f, i in zip(flipped, images)])
    kept = torch.tensor([torch.equal(f, i) for f, i in zip(flipped, images)])
    assert bool((mirrored | kept).all()) and 60 < int(mirrored.sum()) < 140


def test_augment_is_seeded() -> None:
    images = torch.randint(0, 256, (8, 3, 8, 8), dtype=torch.uint8)
    spec = AugmentSpec(crop_padding=2, hflip=True)
    a = augment(images, spec, torch.Generator().manual_seed(5))
    b = augment(images, spec, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not AugmentSpec().active


def test_normalize_scales_then_standardises_per_channel() -> None:
    images = torch.tensor([0, 255], dtype=torch.uint8).view(1, 2, 1, 1).expand(1, 2, 2, 2)
    out = Normalize((0.5, 0.0), (0.25, 2.0))(images)
    torch.testing.assert_close(out[0, 0], torch.full((2, 2), -2.0))
    torch.testing.assert_close(out[0, 1], torch.full((2, 2), 0.5))
