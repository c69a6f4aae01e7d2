import pytest
import torch

from sigmab.errors import ConfigError
from sigmab.importance import get_importance, top_channels


def test_statistics_on_known_activations() -> None:
    a = torch.tensor([[[[1.0, -3.0]], [[2.0, 2.0]]]])  # (1, 2, 1, 2)
    torch.testing.assert_close(get_importance("mean_abs").per_sample(a), torch.tensor([[2.0, 2.0]]))
    torch.testing.assert_close(get_importance("rms").per_sample(a), torch.tensor([[5.0**0.5, 2.0]]))
    with pytest.raises(ConfigError, match="unknown importance statistic 'l0'"):
        get_importance("l0")


def test_top_channels_keeps_the_ceiling_of_the_ratio_sorted() -> None:
    scores = torch.tensor([0.1, 0.9, 0.5, 0.7, 0.2])
    assert top_channels(scores, 0.5).tolist() == [1, 2, 3]  # ceil(2.5) = 3
    assert top_channels(scores, 1.0).tolist() == [0, 1, 2, 3, 4]
    assert top_channels(scores, 0.01).tolist() == [1]
    assert top_channels(torch.ones(4), 0.5).tolist() == [0, 1]  # ties keep the lower ids


def test_top_channels_keep_the_same_count_in_each_division() -> None:
    scores = torch.tensor([9.0, 1.0, 2.0, 8.0, 0.1, 0.2, 0.3, 0.4])  # division 0 holds the four best overall
    assert top_channels(scores, 0.5, divisions=2).tolist() == [0, 3, 6, 7]
    assert top_channels(scores, 0.1, divisions=4).tolist() == [0, 3, 5, 7]  # at least one per division
