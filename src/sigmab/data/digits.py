"""scikit-learn's bundled 8x8 digits (1,797 images, no download), with a fixed train/test split."""

from __future__ import annotations

import numpy as np
import torch

from sigmab.data.arrays import ImageArrays, make_image_arrays
from sigmab.errors import DataError

_TEST_FRACTION = 0.2
_SPLIT_SEED = 0  # fixed, so every run and every user sees the same test set


def load_digits_arrays(*, split: str) -> ImageArrays:
    """Digits as uint8 (N, 1, 8, 8) scaled from 0..16 to 0..255; 80/20 seeded train/test split."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError("the digits dataset needs scikit-learn: pip install 'sigmab[demo]'") from None
    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(_SPLIT_SEED)).numpy()
    n_test = int(round(len(images) * _TEST_FRACTION))
    index = np.sort(perm[:n_test] if split == "test" else perm[n_test:])
    return make_image_arrays(images[index], bunch.target[index], num_classes=10, source=f"sklearn digits [{split}]",
                             layout="NHW")
