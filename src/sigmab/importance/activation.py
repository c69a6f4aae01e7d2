"""Activation-based channel importance: one object per statistic, in a registry.

Each object turns an activation (N, C, ...) into a per-sample, per-channel statistic (N, C).
A cluster's channel importance is that statistic averaged over the cluster's samples, so the
same calibration pass serves every branch of the tree.
"""

from __future__ import annotations

import torch

from sigmab.utils.registry import NameRegistry


def positions(activation: torch.Tensor) -> torch.Tensor:
    """(N, C, ...) -> (N, C, P): every position (pixel, point) of a channel; (N, C) -> (N, C, 1)."""
    return activation.reshape(activation.shape[0], activation.shape[1], -1)


class ActivationImportance:
    name: str = ""

    def per_sample(self, activation: torch.Tensor) -> torch.Tensor:
        """(N, C, ...) -> (N, C)."""
        raise NotImplementedError


# A new statistic: an ActivationImportance subclass with a ``name``, decorated with @IMPORTANCES.register.
IMPORTANCES: NameRegistry[type[ActivationImportance]] = NameRegistry("importance statistic")


@IMPORTANCES.register
class MeanAbsActivation(ActivationImportance):
    """Mean |a| over spatial positions (or points)."""

    name = "mean_abs"

    def per_sample(self, activation: torch.Tensor) -> torch.Tensor:
        return positions(activation).abs().mean(2)


@IMPORTANCES.register
class RMSActivation(ActivationImportance):
    """Root-mean-square activation: weighs rare large responses more than ``mean_abs``."""

    name = "rms"

    def per_sample(self, activation: torch.Tensor) -> torch.Tensor:
        return positions(activation).pow(2).mean(2).sqrt()


@IMPORTANCES.register
class FeatureMapRank(ActivationImportance):
    """Rank of each channel's feature map (H, W), as HRank (Lin et al., CVPR 2020) averages it.

    High-rank maps carry more information; low-rank ones are the first to go.
    """

    name = "hrank"

    def per_sample(self, activation: torch.Tensor) -> torch.Tensor:
        if activation.dim() != 4:
            raise ValueError(f"feature-map rank needs (N, C, H, W) activations, got shape {tuple(activation.shape)}")
        return torch.linalg.matrix_rank(activation.float()).to(torch.float32)


def get_importance(name: str) -> ActivationImportance:
    return IMPORTANCES.get(name)()


def top_channels(scores: torch.Tensor, ratio: float, divisions: int = 1) -> torch.Tensor:
    """Sorted ids of the ``ceil(ratio * C)`` highest-scoring channels (at least one); ties keep the lower id.

    ``divisions`` > 1 (a grouped convolution's channels): the same count, ``ceil(ratio * C / divisions)``, is kept
    in each of the ``divisions`` equal runs of consecutive channels, so the convolution stays grouped."""
    if divisions > 1:
        per = scores.numel() // divisions
        return torch.cat([top_channels(part, ratio) + d * per for d, part in enumerate(scores.split(per))])
    keep = max(1, min(scores.numel(), int(torch.ceil(torch.tensor(ratio * scores.numel() - 1e-9)))))
    order = torch.argsort(scores, descending=True, stable=True)
    return order[:keep].sort().values
