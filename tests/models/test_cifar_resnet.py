import pytest
import torch

from sigmab.data import ArrayLoader, load_split
from sigmab.errors import ArchitectureError, CheckpointError
from sigmab.eval import count_params, evaluate
from sigmab.models import build_model, load_model, save_model
from sigmab.models.cifar_resnet import ZeroPadShortcut
from tests.conftest import require_shared
from tests.helpers import randomise_bn


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


@pytest.mark.parametrize(("arch", "params"), [("resnet20", 278_324), ("resnet56", 861_620)])
def test_option_b_has_projection_shortcuts_where_the_shape_changes(arch: str, params: int) -> None:
    """The published CIFAR-100 option-B counts (chenyaofo/pytorch-cifar-models): 1x1 conv + BN at layer2.0, layer3.0."""
    model = build_model(arch, num_classes=100, shortcut="B")
    assert count_params(model) == params
    projections = sorted({n.rsplit(".", 2)[0] for n in model.state_dict() if ".shortcut." in n})
    assert projections == ["layer2.0.shortcut", "layer3.0.shortcut"]
    assert model.layer2[0].shortcut[0].kernel_size == (1, 1) and model.layer2[0].shortcut[0].stride == (2, 2)


def test_an_unknown_shortcut_option_is_a_clear_error() -> None:
    with pytest.raises(ArchitectureError, match="shortcut must be one of A, B"):
        build_model("resnet20", shortcut="C")


def _published_b(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    renamed = {k.replace(".shortcut.", ".downsample."): v for k, v in model.state_dict().items()}
    return {("fc." + k[7:] if k.startswith("linear.") else k): v for k, v in renamed.items()}


def test_layouts_are_read_off_the_file_and_can_be_named(tmp_path) -> None:
    model_b = randomise_bn(build_model("resnet20", num_classes=100, shortcut="B"))
    torch.save(_published_b(model_b), tmp_path / "b.pth")  # bare, torchvision-style names
    loaded = load_model(tmp_path / "b.pth", arch="resnet20")
    assert loaded.meta.arch_kwargs == {"shortcut": "B"} and loaded.meta.num_classes == 100
    assert loaded.meta.mean == (0.5070, 0.4865, 0.4409)  # the statistics this layout's 100-class models use
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(loaded(x), model_b(x), rtol=0, atol=0)
    model_a = build_model("resnet20").eval()
    torch.save({"state_dict": {f"module.{k}": v for k, v in model_a.state_dict().items()}}, tmp_path / "a.th")
    loaded_a = load_model(tmp_path / "a.th", arch="resnet20")
    assert loaded_a.meta.arch_kwargs == {} and loaded_a.meta.mean == model_a.meta.mean  # akamaster: option A
    with pytest.raises(CheckpointError, match="does not fit resnet20: .*unexpected \\(e.g. layer2.0.shortcut.0"):
        load_model(tmp_path / "b.pth", arch="resnet20", arch_kwargs={"shortcut": "A"})  # named explicitly: wins
    save_model(loaded, tmp_path / "b.safetensors")  # sigmab's own file: the metadata says B
    torch.testing.assert_close(load_model(tmp_path / "b.safetensors")(x), model_b(x), rtol=0, atol=0)


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
    weights, data_file = require_shared(file, "data/cifar10.npz.xz")
    model = load_model(weights, arch=arch)
    data = load_split("cifar10", "test", root=data_file)
    result = evaluate(model, ArrayLoader(data, batch_size=500, mean=model.meta.mean, std=model.meta.std),
                      channels_last=True)
    assert result.n_samples == 10_000
    assert result.top1 == pytest.approx(top1, abs=0.01)
