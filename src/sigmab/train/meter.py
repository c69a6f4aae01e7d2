"""Running training loss and top-1 over an epoch, shared by the training loops."""

from __future__ import annotations

import torch


class EpochMeter:
    """Accumulates per-batch loss (batch mean) and correct predictions."""

    def __init__(self) -> None:
        self.loss_sum = 0.0
        self.correct = 0
        self.seen = 0

    def update(self, loss: torch.Tensor | float, predictions: torch.Tensor, labels: torch.Tensor) -> None:
        """``loss`` the batch mean (a tensor, or its value already read); ``predictions`` (B, K) logits or
        log-probabilities; ``labels`` (B,)."""
        self.loss_sum += (loss if isinstance(loss, float) else float(loss.detach())) * labels.numel()
        self.correct += int((predictions.argmax(1) == labels).sum())
        self.seen += labels.numel()

    @property
    def loss(self) -> float:
        return self.loss_sum / max(1, self.seen)

    @property
    def top1(self) -> float:
        return 100.0 * self.correct / max(1, self.seen)

    def postfix(self) -> dict[str, str]:
        return {"loss": f"{self.loss:.3f}", "top1": f"{self.top1:.1f}"}
