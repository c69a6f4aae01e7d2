import pytest
import torch

from sigmab.dispatch.dispatcher import (
    DispatchSettings,
    balance_weights,
    choose,
    dispatch_targets,
    dispatcher_loss,
    evaluate_dispatch,
    penalty_matrix,
    train_dispatcher,
)
from sigmab.errors import ConfigError


def test_targets_are_the_cheapest_correct_model() -> None:
    correct = torch.tensor([[True, True, True], [False, True, True], [False, False, True], [False, False, False]])
    assert dispatch_targets(correct).tolist() == [0, 1, 2, 2]


def test_the_penalty_is_asymmetric_and_the_weights_balance_targets() -> None:
    p = penalty_matrix(3, under=4.0, over=1.0)
    assert p.tolist() == [[0, 1, 2], [4, 0, 1], [8, 4, 0]]
    w = balance_weights(torch.tensor([0, 0, 0, 1]), 2)
    assert torch.allclose(w, torch.tensor([2 / 3, 2 / 3, 2 / 3, 2.0])) and w.mean() == pytest.approx(1.0)
    logits = torch.tensor([[5.0, -5.0]])  # sure of the cheap model
    hard = dispatcher_loss(logits, torch.tensor([1]), penalty_matrix(2, under=4.0, over=1.0), torch.ones(1), 1.0)
    easy = dispatcher_loss(-logits, torch.tensor([0]), penalty_matrix(2, under=4.0, over=1.0), torch.ones(1), 1.0)
    assert hard > easy  # the same confident mistake costs more towards the cheap model


def test_threshold_picks_the_cheapest_model_with_enough_probability() -> None:
    probs = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])
    assert choose(probs, 0.55).tolist() == [0, 2, 2]
    assert choose(probs, 0.45).tolist() == [0, 1, 2]
    assert choose(probs, 1.0).tolist() == [2, 2, 2]


def test_a_learnable_dispatch_is_learnt_and_the_threshold_trades_accuracy_for_operations() -> None:
    """Bright images are easy (the cheap model is right), dark ones need the big model."""
    g = torch.Generator().manual_seed(0)
    bright = torch.rand(400, generator=g) < 0.6
    inputs = torch.where(bright[:, None, None, None], 1.0, -1.0) + 0.3 * torch.randn(400, 1, 16, 16, generator=g)
    correct = torch.stack([bright, torch.ones(400, dtype=torch.bool)], 1)
    net = train_dispatcher(inputs, correct, DispatchSettings(epochs=20, hidden=8), seed=0)
    cheap_first = evaluate_dispatch(net, inputs, correct, macs=[10.0, 100.0], params=[1.0, 10.0], threshold=0.5)
    assert cheap_first.top1 > 97 and 0.5 < cheap_first.shares[0] < 0.7
    assert cheap_first.mean_macs < net.macs() + 100.0 * 0.5
    always_big = evaluate_dispatch(net, inputs, correct, macs=[10.0, 100.0], params=[1.0, 10.0], threshold=1.0)
    assert always_big.top1 == 100.0 and always_big.mean_macs == net.macs() + 100.0
    with pytest.raises(ConfigError, match="threshold"):
        DispatchSettings(threshold=0.0)
