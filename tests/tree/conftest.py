import pytest
import torch

from tests.helpers import calibration_batch, tiny_resnet, tiny_tree


@pytest.fixture(scope="module")
def model():
    return tiny_resnet()


@pytest.fixture(scope="module")
def calib() -> torch.Tensor:
    return calibration_batch()


@pytest.fixture(scope="module")
def sliced(model, calib):
    return tiny_tree(model, calib)
