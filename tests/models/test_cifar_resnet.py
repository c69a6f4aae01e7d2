import pytest
import torch

from sigmab.data import ArrayLoader, load_split
from sigmab.eval import count_params, evaluate
from sigmab.models import build_model, load_model
from sigmab.models.cifar_resnet import ZeroPadShortcut
from tests.conftest import require_shared


@pytest.mark.parametrize(("arch", "params"), [("resnet20", 269_722), ("resnet32", 464_154), ("resnet56", 853_018)])
def test_parameter_counts_match_the_paper_family(arch: str, params: int) -> None:
    assert count_params(build_model(arch)) == params


def test_option_a_shortcut_subsamples_and_zero_pads_channels() -> None:
    x = torch.randn(2, 16, 8, 8)
    out = ZeroPadShortcut(stride=2, pad_front=8, pad_back=8)(x)
    assert out.shape == (2, 32, 4, 4)
    torch.testing.assert_close(out[:, 8:24], x[:, :, ::2, ::2])
    assert out[:, :8].abs().sum() == 0 and out[:, 24:].abs().sum() == 0


def test_parameter_names_follow_akamaster() -> None:
    names = set(build_model("resnet20").state_dict())
    assert {"conv1.weight", "bn1.running_mean", "layer3.2.conv2.weight", "layer2.0.bn1.bias", "linear.weight"} <= names
    assert not any("shortcut" in n for n in names)  # option A is parameter-free


def test_output_shape_and_num_classes_override() -> None:
    model = build_model("resnet20", num_classes=100).eval()
    assert model(torch.randn(3, 3, 32, 32)).shape == (3, 100)
    assert model.meta.num_classes == 100


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.parametrize(("arch", "file", "top1"), [
    ("resnet20", "weights/resnet20-12fca82f.th", 91.73),
    ("resnet56", "weights/resnet56-4bfd9763.th", 93.39),
])
def test_shared_pretrained_checkpoints_reproduce_published_top1(arch: str, file: str, top1: float) -> None:
    weights, data_file = require_shared(file, "data/cifar10.npz")
    model = load_model(weights, arch=arch)
    data = load_split("cifar10", "test", root=data_file)
    result = evaluate(model, ArrayLoader(data, batch_size=500, mean=model.meta.mean, std=model.meta.std),
                      channels_last=True)
    assert result.n_samples == 10_000
    assert result.top1 == pytest.approx(top1, abs=0.01)
