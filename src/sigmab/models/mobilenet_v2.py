"""MobileNetV2 (Sandler et al., CVPR 2018) in torchvision's layout and parameter names, so torchvision's
``mobilenet_v2`` state_dicts load as they are.

``features`` holds the stem (conv-BN-ReLU6, stride 2), the inverted residual blocks and a final 1x1 conv-BN-ReLU6
to ``last_channel``; ``classifier`` is dropout and a linear layer. ``cifar_stem=True`` adapts it to 32x32 inputs
the usual way: stride 1 in the stem and (``stage2_stride=1``, the default then) in the second stage, so the last
feature map is 4x4 instead of 1x1. ``stage2_stride=2`` keeps the paper's stride there: a 2x2 last map and about a
quarter of the multiply-adds after the first stage, for CPU budgets.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sigmab.models.cifar_resnet import IMAGENET_MEAN, IMAGENET_STD
from sigmab.models.registry import register_model

# (expansion t, output channels c, repeats n, stride of the first block s), as in the paper's Table 2
INVERTED_RESIDUAL_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                             (6, 160, 3, 2), (6, 320, 1, 1))


def make_divisible(value: float, divisor: int = 8) -> int:
    """Channels rounded to a multiple of ``divisor``, never below 90% of ``value`` (torchvision's rule)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias), BatchNorm2d, ReLU6: torchvision's ``Conv2dNormActivation`` with its indices 0, 1, 2.
    ``groups=channels`` makes it depthwise."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2, groups=groups,
                      bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU6(inplace=True),
        )
        self.out_channels = out_channels


class InvertedResidual(nn.Module):
    """(N, inp, H, W) -> (N, oup, H/stride, W/stride): 1x1 expansion to ``inp * expand_ratio`` channels (none when
    the ratio is 1), 3x3 depthwise, linear 1x1 projection; plus the input when the stride is 1 and the width
    stays (``use_res_connect``). ``conv`` is indexed as torchvision's; ``shortcut`` (no parameters) carries the
    input to the sum, so a sliced block can map its kept input channels onto its kept output channels."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride should be 1 or 2, got {stride}")
        hidden = int(round(inp * expand_ratio))
        self.stride = stride
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = [ConvBNAct(inp, hidden, kernel_size=1)] if expand_ratio != 1 else []
        layers += [ConvBNAct(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup
        self.shortcut: nn.Module | None = nn.Identity() if self.use_res_connect else None

    @property
    def expands(self) -> bool:
        return len(self.conv) == 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y + self.shortcut(x) if self.shortcut is not None else y


class MobileNetV2(nn.Module):
    """(N, in_channels, H, W) -> logits (N, num_classes)."""

    def __init__(self, *, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0,
                 inverted_residual_setting: Sequence[Sequence[int]] = INVERTED_RESIDUAL_SETTING,
                 round_nearest: int = 8, dropout: float = 0.2, cifar_stem: bool = False,
                 stage2_stride: int | None = None) -> None:
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        if stage2_stride is None:
            stage2_stride = 1 if cifar_stem else 2
        if stage2_stride not in (1, 2):
            raise ValueError(f"stage2_stride should be 1 or 2, got {stage2_stride}")
        input_channel = make_divisible(32 * width_mult, round_nearest)
        self.last_channel = make_divisible(1280 * max(1.0, width_mult), round_nearest)
        features: list[nn.Module] = [ConvBNAct(in_channels, input_channel, stride=1 if cifar_stem else 2)]
        for stage, (t, c, n, s) in enumerate(inverted_residual_setting):
            output_channel = make_divisible(c * width_mult, round_nearest)
            stride = stage2_stride if stage == 1 else s
            for i in range(n):
                features.append(InvertedResidual(input_channel, output_channel, stride if i == 0 else 1, t))
                input_channel = output_channel
        features.append(ConvBNAct(input_channel, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes))
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.classifier(x)


@register_model("mobilenet_v2", num_classes=1000, in_channels=3, input_size=(224, 224), mean=IMAGENET_MEAN,
                std=IMAGENET_STD)
def mobilenet_v2(*, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0, dropout: float = 0.2,
                 cifar_stem: bool = False) -> MobileNetV2:
    """MobileNetV2 as torchvision builds it (ImageNet defaults)."""
    return MobileNetV2(num_classes=num_classes, in_channels=in_channels, width_mult=width_mult, dropout=dropout,
                       cifar_stem=cifar_stem)


@register_model("mobilenet_v2_cifar", num_classes=10, in_channels=3, input_size=(32, 32), mean=IMAGENET_MEAN,
                std=IMAGENET_STD)  # the normalisation the CIFAR ResNets here use
def mobilenet_v2_cifar(*, num_classes: int = 10, in_channels: int = 3, width_mult: float = 1.0,
                       dropout: float = 0.2, stage2_stride: int = 1) -> MobileNetV2:
    """MobileNetV2 for 32x32 inputs (``cifar_stem``), CIFAR-10 defaults."""
    return MobileNetV2(num_classes=num_classes, in_channels=in_channels, width_mult=width_mult, dropout=dropout,
                       cifar_stem=True, stage2_stride=stage2_stride)
