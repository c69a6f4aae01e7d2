"""Losses shared by the training loops: distillation from a dense teacher."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def distill_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float,
                 weights: torch.Tensor | None = None) -> torch.Tensor:
    """Hinton KD, KL(teacher || student) at ``temperature``, scaled by T^2; per-sample ``weights`` (N,)."""
    t = temperature
    kl = F.kl_div(F.log_softmax(student_logits / t, 1), F.log_softmax(teacher_logits / t, 1), log_target=True,
                  reduction="none").sum(1) * (t * t)
    return (kl * weights).sum() / student_logits.shape[0] if weights is not None else kl.mean()
