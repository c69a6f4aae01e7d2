import pytest
import torch
from torch import nn

from sigmab.errors import DataError
from sigmab.eval import evaluate


class PickFirst(nn.Module):
    """Predicts class = the first input feature, so accuracy is known in advance."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(x[:, 0].long(), 3).float() * 10


def test_top1_and_count_match_a_known_answer() -> None:
    batches = [(torch.tensor([[0.0], [1.0]]), torch.tensor([0, 2])), (torch.tensor([[2.0]]), torch.tensor([2]))]
    result = evaluate(PickFirst(), batches)
    assert result.n_samples == 3 and result.top1 == pytest.approx(200 / 3)


def test_channels_last_gives_the_same_logits_and_mode_is_restored() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 4 * 4, 2)).train()
    x, y = torch.randn(5, 3, 6, 6), torch.tensor([0, 1, 0, 1, 1])
    a = evaluate(model, [(x, y)])
    b = evaluate(model, [(x, y)], channels_last=True)
    assert a.top1 == b.top1 and a.loss == pytest.approx(b.loss, abs=1e-5) and model.training


def test_no_samples_is_an_error() -> None:
    with pytest.raises(DataError, match="no samples"):
        evaluate(PickFirst(), [])
