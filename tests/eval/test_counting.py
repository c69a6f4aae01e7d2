import torch
from torch import nn

from sigmab.eval import count_params, profile_model, register_mac_counter
from sigmab.eval.counting import MAC_COUNTERS
from sigmab.models import build_model


def test_resnet56_has_853018_params_and_125m_macs_at_32x32() -> None:
    profile = profile_model(build_model("resnet56"), (3, 32, 32))
    assert profile.params == 853_018
    assert profile.macs == 125_485_696  # "about 125M"
    assert profile.modules[-1].name == "linear" and profile.modules[-1].macs == 640


def test_hand_computed_conv_linear_model() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1, groups=1), nn.ReLU(),
                          nn.Conv2d(4, 4, 3, padding=1, groups=2, bias=False), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))
    profile = profile_model(model, (3, 8, 8))
    macs = [m.macs for m in profile.modules]
    # conv1: 4x4x4 outputs * 3*9; conv2 (groups=2): 64 outputs * 2*9; linear: 5 * 64
    assert macs == [64 * 27, 0, 64 * 18, 0, 5 * 64]
    assert profile.params == count_params(model) == (4 * 27 + 4) + 4 * 2 * 9 + (64 * 5 + 5)
    assert "total" in profile.table()


def test_new_layer_types_register_a_counter() -> None:
    class Scale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.w

    try:
        register_mac_counter(Scale)(lambda m, inputs, out: out[0].numel())
        profile = profile_model(nn.Sequential(Scale()), (2, 3))
        assert profile.macs == 6 and profile.params == 1
    finally:
        MAC_COUNTERS.unregister(Scale)


def test_profiling_leaves_training_mode_and_bn_statistics_alone() -> None:
    model = build_model("small_cnn").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    profile_model(model, (1, 8, 8))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_profiling_restores_each_modules_own_mode() -> None:
    # a wrapper built around shared submodules starts in training mode; profiling it must not flip them
    inner = build_model("small_cnn").eval()
    wrapper = torch.nn.Sequential(inner)
    assert wrapper.training and not inner.training
    profile_model(wrapper, (1, 8, 8))
    assert wrapper.training and not any(m.training for m in inner.modules())


def test_the_per_module_table_keeps_its_columns_aligned_for_long_names_and_types() -> None:
    profile = profile_model(build_model("resnet20"), (3, 32, 32))  # ZeroPadShortcut: a 15-letter type
    lines = profile.table().splitlines()
    assert len({len(line) for line in lines}) == 1  # padded and right-aligned columns: every row as long
    assert any("ZeroPadShortcut" in line for line in lines)
