"""A small CNN for the embedded demo and for tests (8x8 digits, 28x28 Fashion-MNIST)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sigmab.models.registry import register_model


class ConvBNReLU(nn.Sequential):
    def __init__(self, in_planes: int, out_planes: int) -> None:
        super().__init__(
            nn.Conv2d(in_planes, out_planes, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_planes),
            nn.ReLU(inplace=True),
        )


class SmallCNN(nn.Module):
    """(N, in_channels, H, W) -> logits (N, num_classes).

    One conv-BN-ReLU per width, a 2x2 max-pool between widths, global average pooling, linear head.
    """

    def __init__(self, *, num_classes: int = 10, in_channels: int = 1, widths: Sequence[int] = (16, 32, 64)) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if not widths:
            raise ValueError("widths needs at least one entry")
        layers: list[nn.Module] = []
        in_planes = in_channels
        for i, planes in enumerate(widths):
            if i > 0:
                layers.append(nn.MaxPool2d(2))
            layers.append(ConvBNReLU(in_planes, planes))
            in_planes = planes
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(in_planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.classifier(x)


@register_model("small_cnn", num_classes=10, in_channels=1, input_size=(8, 8), mean=(0.5,), std=(0.5,))
def small_cnn(*, num_classes: int = 10, in_channels: int = 1, widths: Sequence[int] = (16, 32, 64)) -> SmallCNN:
    """Small CNN; defaults fit scikit-learn's 8x8 digits."""
    return SmallCNN(num_classes=num_classes, in_channels=in_channels, widths=widths)
