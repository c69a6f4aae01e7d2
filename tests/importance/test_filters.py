"""Each criterion on small constructed cases whose answer is known."""

import os

import pytest
import torch
from torch import nn

from sigmab.errors import ConfigError
from sigmab.graph.groups import ChannelGroup
from sigmab.importance import get_importance
from sigmab.importance.filters import FPGMCriterion, L1Criterion, get_criterion


def _group(producers: list[nn.Module], consumers: list[nn.Module] = ()) -> ChannelGroup:
    return ChannelGroup("g", "inner", producers[0].weight.shape[0], tuple(producers), tuple(consumers), (0,), "conv1")


def _conv(weight: torch.Tensor) -> nn.Conv2d:
    conv = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2], bias=False)
    with torch.no_grad():
        conv.weight.copy_(weight)
    return conv


def test_l1_is_the_summed_absolute_filter_weights_over_producers() -> None:
    a = _conv(torch.tensor([1.0, -2.0, 0.5]).view(3, 1, 1, 1) * torch.ones(3, 2, 1, 1))
    b = _conv(torch.tensor([0.0, 1.0, -4.0]).view(3, 1, 1, 1) * torch.ones(3, 1, 1, 1))
    scores = L1Criterion().scores(_group([a, b]))
    torch.testing.assert_close(scores, torch.tensor([2.0 + 0.0, 4.0 + 1.0, 1.0 + 4.0]))


def test_fpgm_scores_are_summed_distances_so_filters_near_the_median_go_first() -> None:
    # 1-D filters at 0, 1, 2 and 10: the geometric median lies in [1, 2]; 10 is the outlier.
    conv = _conv(torch.tensor([0.0, 1.0, 2.0, 10.0]).view(4, 1, 1, 1))
    scores = FPGMCriterion().scores(_group([conv]))
    torch.testing.assert_close(scores, torch.tensor([13.0, 11.0, 11.0, 27.0]))
    # raw weights, not magnitudes: -5 and 5 are far apart
    signed = _conv(torch.tensor([-5.0, 5.0, 0.0]).view(3, 1, 1, 1))
    torch.testing.assert_close(FPGMCriterion().scores(_group([signed])), torch.tensor([15.0, 15.0, 10.0]))


def test_feature_map_rank_counts_independent_rows() -> None:
    h = 6
    rank_one = torch.outer(torch.arange(1.0, h + 1), torch.ones(h))
    maps = torch.stack([rank_one, torch.eye(h), torch.zeros(h, h), torch.diag(torch.tensor([1.0, 2, 3, 0, 0, 0]))])
    ranks = get_importance("hrank").per_sample(maps[None].repeat(2, 1, 1, 1))
    assert ranks.tolist() == [[1.0, 6.0, 0.0, 3.0]] * 2
    with pytest.raises(ValueError, match="needs \\(N, C, H, W\\)"):
        get_importance("hrank").per_sample(torch.zeros(2, 3, 4))


def test_unknown_criterion_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown pruning criterion 'l2'; known: activation, fpgm, hrank, l1"):
        get_criterion("l2")


def test_fpgm_ranking_matches_torch_pruning_fpgm_importance() -> None:
    """Cross-check with Torch-Pruning's FPGMImportance on a small CNN.

    Torch-Pruning scores |W|^p of the producing conv and of the consuming conv's input slices and
    averages the two; ours uses raw weights. With non-negative weights and p=1 the two definitions
    coincide up to scale, so the rankings must be identical.
    """
    try:
        import torch_pruning as tp
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("torch-pruning is part of the dev extra and must be installed in CI")
        pytest.skip("torch-pruning is not installed (pip install -e '.[dev]' installs it)")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU(), nn.Conv2d(12, 8, 3),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.abs_()
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=torch.randn(1, 3, 16, 16))
    group = graph.get_pruning_group(model[0], tp.prune_conv_out_channels, idxs=list(range(12)))
    theirs = tp.importance.FPGMImportance(p=1)(group)
    ours = FPGMCriterion(use_consumers=True).scores(_group([model[0]], [model[3]]))
    assert torch.equal(torch.argsort(theirs, stable=True), torch.argsort(ours, stable=True))
