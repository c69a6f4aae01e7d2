import math

import pytest
import torch

from sigmab.tree.losses import anchor_loss, balance_loss, routed_leaf_loss
from sigmab.tree.model import SoftOutput


def test_routed_leaf_loss_weights_each_leaf_by_its_detached_path_probability() -> None:
    logits = torch.zeros(2, 1, 3, requires_grad=True)  # 2 leaves, 1 sample, 3 classes: CE = log 3 each
    log_p = torch.log(torch.tensor([[0.25, 0.75]])).requires_grad_()
    soft = SoftOutput(logits, log_p, {}, {})
    loss = routed_leaf_loss(soft, torch.tensor([0]))
    assert float(loss.detach()) == pytest.approx(math.log(3))
    loss.backward()
    assert log_p.grad is None or torch.all(log_p.grad == 0)  # routers get no gradient from this term


def test_balance_loss_is_zero_at_the_target_share() -> None:
    probs = {"r": torch.tensor([[0.9, 0.1], [0.5, 0.5]])}
    assert float(balance_loss(probs, {"r": torch.tensor([0.7, 0.3])})) == pytest.approx(0.0, abs=1e-6)
    assert float(balance_loss(probs, {"r": torch.tensor([0.5, 0.5])})) > 0


def test_anchor_loss_only_counts_inputs_that_reached_the_router_at_conversion() -> None:
    decisions = {"r": torch.tensor([0, 1, 1]), "reach:r": torch.tensor([True, True, True]),
                 "r0": torch.tensor([1, 1, 0]), "reach:r0": torch.tensor([True, False, False])}
    confident = torch.tensor([[-9.0, 9.0], [9.0, -9.0], [9.0, -9.0]])  # r0 says 1, 0, 0
    loss = anchor_loss({"r0": (None, confident)}, decisions)
    assert float(loss) == pytest.approx(0.0, abs=1e-6)  # only input 0 reached r0, and it agrees
    # hard phase: rows say which inputs the logits belong to
    loss = anchor_loss({"r": (torch.tensor([2, 0]), torch.tensor([[0.0, 0.0], [0.0, 0.0]]))}, decisions)
    assert float(loss) == pytest.approx(math.log(2))
