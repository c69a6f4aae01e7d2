"""MobileNetV2 in torchvision's layout: its parameter totals, names and shapes, and the CIFAR stem."""

import pytest
import torch

from sigmab.eval import count_params
from sigmab.models import build_model
from sigmab.models.mobilenet_v2 import InvertedResidual, make_divisible
from tests.helpers import torchvision_models

# torchvision's published total (models/mobilenetv2.py weights table) and, for width 0.5, torchvision 0.28's
# mobilenet_v2(width_mult=0.5) counted the day this model was written
TOTALS = {1.0: 3_504_872, 0.5: 1_968_680}


@pytest.mark.parametrize(("width", "total"), TOTALS.items())
def test_parameter_counts_match_torchvision(width: float, total: int) -> None:
    assert count_params(build_model("mobilenet_v2", width_mult=width)) == total


def test_names_and_shapes_follow_torchvision_layout() -> None:
    state = build_model("mobilenet_v2").state_dict()
    expected = {"features.0.0.weight": (32, 3, 3, 3), "features.1.conv.0.0.weight": (32, 1, 3, 3),
                "features.1.conv.1.weight": (16, 32, 1, 1), "features.1.conv.2.running_var": (16,),
                "features.2.conv.0.0.weight": (96, 16, 1, 1), "features.2.conv.1.0.weight": (96, 1, 3, 3),
                "features.2.conv.2.weight": (24, 96, 1, 1), "features.17.conv.3.bias": (320,),
                "features.18.0.weight": (1280, 320, 1, 1), "classifier.1.weight": (1000, 1280)}
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    assert not any("shortcut" in key for key in state)
    blocks = [m for m in build_model("mobilenet_v2").features if isinstance(m, InvertedResidual)]
    assert len(blocks) == 17 and sum(b.use_res_connect for b in blocks) == 10


def test_cifar_stem_keeps_a_4x4_map_and_the_same_parameters() -> None:
    imagenet, cifar = build_model("mobilenet_v2", num_classes=10), build_model("mobilenet_v2_cifar")
    assert count_params(imagenet) == count_params(cifar)
    with torch.no_grad():
        assert cifar.features(torch.zeros(2, 3, 32, 32)).shape == (2, 1280, 4, 4)
        assert imagenet.features(torch.zeros(2, 3, 32, 32)).shape == (2, 1280, 1, 1)
        assert cifar.eval()(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_stage2_stride_2_keeps_the_parameters_and_halves_the_map() -> None:
    full, strided = build_model("mobilenet_v2_cifar"), build_model("mobilenet_v2_cifar", stage2_stride=2)
    assert count_params(full) == count_params(strided)
    assert strided.meta.arch_kwargs["stage2_stride"] == 2
    with torch.no_grad():
        assert strided.features(torch.zeros(2, 3, 32, 32)).shape == (2, 1280, 2, 2)
    with pytest.raises(Exception, match="stage2_stride should be 1 or 2"):
        build_model("mobilenet_v2_cifar", stage2_stride=3)


def test_width_multiplier_rounds_channels_like_torchvision() -> None:
    assert [make_divisible(c * 0.35) for c in (32, 16, 24, 320)] == [16, 8, 8, 112]
    assert build_model("mobilenet_v2_cifar", width_mult=0.25).features[-1][0].in_channels == 80
    with pytest.raises(Exception, match="width_mult must be positive"):
        build_model("mobilenet_v2_cifar", width_mult=0.0)


def test_outputs_match_torchvision_when_it_is_installed() -> None:
    tv = torchvision_models()
    for width in (1.0, 0.5):
        reference = tv.mobilenet_v2(weights=None, width_mult=width).eval()
        ours = build_model("mobilenet_v2", width_mult=width).eval()
        ours.load_state_dict(reference.state_dict())
        x = torch.randn(2, 3, 64, 64)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), reference(x))
