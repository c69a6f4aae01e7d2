import pytest
import torch

from sigmab.train.losses import distill_loss


def test_distillation_is_zero_for_identical_logits_and_positive_otherwise() -> None:
    z = torch.randn(4, 5)
    assert float(distill_loss(z, z, 4.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(distill_loss(z, z.flip(1), 4.0)) > 0
    weights = torch.tensor([1.0, 0.0, 0.0, 0.0])
    assert float(distill_loss(z, z.flip(1), 2.0, weights)) == pytest.approx(
        float(distill_loss(z[:1], z[:1].flip(1), 2.0)) / 4)
