"""A PERTINENCE-style input dispatcher over several models (after Shende et al., arXiv 2507.01695).

Models are ordered by cost (MACs per input), cheapest first. For each training input the *target*
is the cheapest model that classifies it correctly (the most expensive one when none does). A light
dispatcher - the input average-pooled to 8x8, one hidden layer, one logit per model - learns the
targets with a cross-entropy plus an asymmetric expected penalty: sending an input to a model
``d`` places cheaper than its target costs ``under * d``, ``d`` places dearer costs ``over * d``
(``under > over``: a hard input on a small model loses accuracy, the reverse only operations).
Samples are weighted by the inverse frequency of their target. At inference an input goes to the
cheapest model whose cumulative dispatch probability reaches ``threshold``.

Choices the abstract leaves open (docs/ARCHITECTURE.md): the feature extractor (pooled pixels), the
penalty's form (linear in the distance between models), the threshold rule, and the search space
of the genetic algorithm (:mod:`sigmab.dispatch.genetic`): under, over, penalty weight, threshold
and hidden width, for the Pareto front of accuracy against mean MACs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sigmab.errors import ConfigError

POOLED = 8  # the dispatcher sees the input average-pooled to POOLED x POOLED


class Dispatcher(nn.Module):
    """(N, C, H, W) -> (N, M) logits: pooled pixels, a hidden layer with ReLU, one logit per model."""

    def __init__(self, in_channels: int, num_models: int, hidden: int = 32) -> None:
        super().__init__()
        self.hidden = nn.Linear(in_channels * POOLED * POOLED, hidden)
        self.out = nn.Linear(hidden, num_models)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.hidden(F.adaptive_avg_pool2d(x, POOLED).flatten(1))))

    def macs(self) -> int:
        return self.hidden.in_features * self.hidden.out_features + self.out.in_features * self.out.out_features


def dispatch_targets(correct: torch.Tensor) -> torch.Tensor:
    """(N, M) bool, models cheapest first -> (N,) the cheapest correct model, or M-1 where none is correct."""
    m = correct.shape[1]
    first = torch.where(correct, torch.arange(m), torch.full_like(correct, m, dtype=torch.long)).min(1).values
    return first.clamp(max=m - 1)


def penalty_matrix(num_models: int, *, under: float, over: float) -> torch.Tensor:
    """(M, M): row = target, column = chosen model; ``under`` per place too cheap, ``over`` per place too dear."""
    t = torch.arange(num_models).view(-1, 1).float()
    j = torch.arange(num_models).view(1, -1).float()
    return torch.where(j < t, under * (t - j), over * (j - t))


def balance_weights(targets: torch.Tensor, num_models: int) -> torch.Tensor:
    """(N,) inverse frequency of each sample's target, with mean 1 over the samples."""
    counts = torch.bincount(targets, minlength=num_models).float()
    weights = (1.0 / counts.clamp(min=1))[targets]
    return weights * (len(targets) / weights.sum())


def dispatcher_loss(logits: torch.Tensor, targets: torch.Tensor, penalty: torch.Tensor, weights: torch.Tensor,
                    penalty_weight: float) -> torch.Tensor:
    """Weighted mean of CE + ``penalty_weight`` x the expected penalty of the dispatch distribution."""
    ce = F.cross_entropy(logits, targets, reduction="none")
    expected = (logits.softmax(1) * penalty[targets]).sum(1)
    return ((ce + penalty_weight * expected) * weights).sum() / weights.sum()


def choose(probs: torch.Tensor, threshold: float) -> torch.Tensor:
    """(N, M) dispatch probabilities -> (N,) the cheapest model whose cumulative probability reaches ``threshold``."""
    reached = probs.cumsum(1) >= threshold - 1e-9
    reached[:, -1] = True
    return reached.float().argmax(1)


@dataclass(frozen=True)
class DispatchSettings:
    under: float = 4.0
    over: float = 1.0
    penalty_weight: float = 1.0
    threshold: float = 0.5
    hidden: int = 32
    epochs: int = 30
    lr: float = 0.01
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.under < 0 or self.over < 0 or self.penalty_weight < 0:
            raise ConfigError("penalties must be >= 0")
        if not 0.0 < self.threshold <= 1.0 or self.hidden < 1 or self.epochs < 1:
            raise ConfigError("threshold must be in (0, 1], hidden and epochs >= 1")


def train_dispatcher(inputs: torch.Tensor, correct: torch.Tensor, settings: DispatchSettings, *, seed: int = 0
                     ) -> Dispatcher:
    """Fit a dispatcher on ``inputs`` (N, C, H, W) whose models' correctness is ``correct`` (N, M)."""
    if inputs.shape[0] != correct.shape[0]:
        raise ConfigError(f"{inputs.shape[0]} inputs but correctness for {correct.shape[0]}")
    m = correct.shape[1]
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = Dispatcher(inputs.shape[1], m, settings.hidden)
    targets = dispatch_targets(correct)
    weights = balance_weights(targets, m)
    penalty = penalty_matrix(m, under=settings.under, over=settings.over)
    optimizer = torch.optim.Adam(net.parameters(), lr=settings.lr)
    for _ in range(settings.epochs):
        for index in torch.randperm(len(targets), generator=g).split(settings.batch_size):
            loss = dispatcher_loss(net(inputs[index]), targets[index], penalty, weights[index],
                                   settings.penalty_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return net.eval()


@dataclass(frozen=True)
class DispatchResult:
    top1: float  # % of inputs whose chosen model is correct
    mean_macs: float  # per input, the dispatcher's own MACs included
    mean_params: float  # active parameters per input, the dispatcher's included
    shares: list[float]  # fraction of inputs sent to each model


def _per_input(cost: Sequence[float] | torch.Tensor, n: int) -> torch.Tensor:
    """A cost per model (M,) or per input and model (N, M), as float64 (N, M)."""
    cost = torch.as_tensor(cost, dtype=torch.float64)
    return cost.expand(n, -1) if cost.dim() == 1 else cost


@torch.no_grad()
def evaluate_dispatch(net: Dispatcher, inputs: torch.Tensor, correct: torch.Tensor,
                      macs: Sequence[float] | torch.Tensor, params: Sequence[float] | torch.Tensor,
                      threshold: float) -> DispatchResult:
    """``macs``/``params``: each model's cost (M,), or per input (N, M) where it depends on the input (a tree's
    path)."""
    chosen = choose(net(inputs).softmax(1), threshold)
    n, m = correct.shape
    rows = torch.arange(n)
    own = sum(p.numel() for p in net.parameters())
    shares = torch.bincount(chosen, minlength=m).double() / n
    return DispatchResult(100.0 * float(correct[rows, chosen].double().mean()),
                          net.macs() + float(_per_input(macs, n)[rows, chosen].mean()),
                          own + float(_per_input(params, n)[rows, chosen].mean()), shares.tolist())
