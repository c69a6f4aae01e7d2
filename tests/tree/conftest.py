import pytest
import torch

from sigmab.tree import ConvertConfig, convert
from tests.helpers import tiny_resnet


@pytest.fixture(scope="module")
def model():
    return tiny_resnet()


@pytest.fixture(scope="module")
def calib() -> torch.Tensor:
    return torch.randn(160, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def sliced(model, calib):
    cfg = ConvertConfig(depth=2, widths=[0.5, 0.25], residual_widths=[0.75, 0.5], calib_size=160, min_leaf_samples=8)
    return convert(model, calib, cfg)
