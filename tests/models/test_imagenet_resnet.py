import pytest
import torch

from sigmab.eval import count_params, profile_model
from sigmab.models import build_model
from sigmab.models.checkpoint import load_weights
from tests.helpers import torchvision_models

# torchvision's published totals (models/resnet.py weights tables)
TOTALS = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032, 101: 44_549_160}


@pytest.mark.parametrize(("depth", "total"), TOTALS.items())
def test_parameter_counts_match_torchvision(depth: int, total: int) -> None:
    assert count_params(build_model(f"resnet{depth}")) == total


def test_names_and_shapes_follow_torchvision_layout() -> None:
    r50 = build_model("resnet50").state_dict()
    expected = {"conv1.weight": (64, 3, 7, 7), "layer1.0.downsample.0.weight": (256, 64, 1, 1),
                "layer1.0.downsample.1.running_var": (256,), "layer2.0.conv2.weight": (128, 128, 3, 3),
                "layer4.2.conv3.weight": (2048, 512, 1, 1), "fc.weight": (1000, 2048), "fc.bias": (1000,)}
    for key, shape in expected.items():
        assert tuple(r50[key].shape) == shape, key
    assert "layer1.1.downsample.0.weight" not in r50
    r18 = build_model("resnet18").state_dict()
    assert "layer1.0.downsample.0.weight" not in r18 and tuple(r18["layer2.0.downsample.0.weight"].shape) == (
        128, 64, 1, 1)
    assert len([k for k in r50 if k.endswith("num_batches_tracked")]) == 53


def test_resnet50_macs_at_224() -> None:
    macs = profile_model(build_model("resnet50"), (3, 224, 224)).macs
    assert 4.08e9 < macs < 4.12e9  # the usual "4.1 GMACs"


def test_reduced_width_cifar_stem_and_state_dict_round_trip() -> None:
    model = build_model("resnet18", num_classes=10, width=0.25, stem="cifar")
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert model.conv1.kernel_size == (3, 3) and model.fc.in_features == 128
    other = build_model("resnet18", num_classes=10, width=0.25, stem="cifar")
    load_weights(other, model.state_dict(), source="test")
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(other.eval()(x), model.eval()(x))
    with pytest.raises(ValueError, match="stem"):
        build_model("resnet18", stem="tiny")


def test_outputs_match_torchvision_when_it_is_installed() -> None:
    tv = torchvision_models()
    for depth in (18, 50):
        reference = getattr(tv, f"resnet{depth}")(weights=None).eval()
        ours = build_model(f"resnet{depth}").eval()
        ours.load_state_dict(reference.state_dict())
        x = torch.randn(2, 3, 64, 64)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), reference(x))
