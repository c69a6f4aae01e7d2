import pytest
import torch

from sigmab.errors import InputError
from sigmab.eval import count_params, profile_model
from sigmab.models import build_model
from sigmab.models.pointnet2 import SetAbstraction
from tests.helpers import point_batch, tiny_pointnet


def test_paper_classifier_size_and_output() -> None:
    model = build_model("pointnet2_ssg").eval()
    assert count_params(model) == 1_472_360  # the paper's SSG layout, convolutions without bias (BN follows)
    assert model.meta.input_size == (1024,) and model(torch.rand(2, 3, 1024)).shape == (2, 40)
    assert [level.num_centers for level in model.levels] == [512, 128, None]


def test_point_features_are_read_after_the_coordinates() -> None:
    """Only feature channels move the output when xyz stay put; a feature-free model ignores nothing."""
    model = tiny_pointnet(in_channels=5)
    x = point_batch(3, in_channels=5)
    y = x.clone()
    y[:, 3:] += 1.0
    with torch.no_grad():
        assert not torch.allclose(model(x), model(y))
        assert model.levels[0].convs[0].in_channels == 3 + 2
        assert tiny_pointnet(in_channels=3)(x[:, :3]).shape == (3, 5)


def test_group_all_level_pools_over_every_point() -> None:
    level = SetAbstraction(2, [4], num_centers=None).eval()
    stream = torch.randn(2, 5, 7)
    with torch.no_grad():
        out = level(stream)
        assert out.shape == (2, 4 + 3, 1) and out[:, 4:].abs().max() == 0  # the global center is the origin
        shuffled = level(stream[:, :, torch.randperm(7)])
    torch.testing.assert_close(out, shuffled)  # permutation invariant: no sampling at this level


@pytest.mark.parametrize(("x", "message"), [
    (torch.rand(2, 64, 4), r"must be \(B, 4, N\)"),
    (torch.rand(2, 4, 20), "20 points are too small: the first level samples 32"),
    (torch.full((1, 4, 64), float("nan")), "NaN or infinite"),
])
def test_bad_point_sets_are_clear_errors(x, message) -> None:
    with pytest.raises(InputError, match=message):
        tiny_pointnet()(x)


def test_profile_counts_grouped_macs() -> None:
    model = tiny_pointnet()
    profile = profile_model(model, (4, 64))
    first = model.levels[0]
    # 32 centers x 8 neighbours through the first level's 1x1 convolutions
    assert profile.macs > 32 * 8 * sum(c.in_channels * c.out_channels for c in first.convs)


def test_a_single_point_set_trains_through_the_classifier_mlp() -> None:
    """A tree leaf can be routed one input of a batch: its MLP normalises it with the running statistics."""
    model = tiny_pointnet().train()
    before = model.mlp.bn1.running_mean.clone()
    model(point_batch(1)).sum().backward()
    assert torch.equal(model.mlp.bn1.running_mean, before)
    model(point_batch(2))
    assert not torch.equal(model.mlp.bn1.running_mean, before)
