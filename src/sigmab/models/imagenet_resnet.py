"""ImageNet ResNets (He et al., 2016) with torchvision's parameter names and shapes, so torchvision
``resnet18/34/50/101`` state_dicts load directly; torchvision is not needed at run time.

``width`` scales every stage width (64/128/256/512 at 1.0) for reduced-width runs; ``stem="cifar"``
swaps the 7x7/stride-2 convolution and max-pool for one 3x3/stride-1 convolution, the usual change
for 32x32 inputs (the parameter names stay, so the rest of a checkpoint still fits).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sigmab.models.cifar_resnet import IMAGENET_MEAN, IMAGENET_STD, conv1x1, conv3x3, projection
from sigmab.models.registry import register_model


class ResNetBasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus identity or projection, then ReLU: (N, C_in, H, W) -> (N, planes, H/s, W/s)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = projection(in_planes, planes, stride) \
            if stride != 1 or in_planes != planes else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    """1x1 reduce - 3x3 (stride here, as torchvision's v1.5) - 1x1 expand, each with BN, plus identity or
    projection: (N, C_in, H, W) -> (N, 4 * planes, H/s, W/s)."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = conv1x1(in_planes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, out)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = projection(in_planes, out, stride) \
            if stride != 1 or in_planes != out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNet(nn.Module):
    """(N, in_channels, H, W) -> logits (N, num_classes): stem, four stages, global pooling, ``fc``."""

    def __init__(self, block: type[ResNetBasicBlock] | type[Bottleneck], layers: Sequence[int], *,
                 num_classes: int = 1000, in_channels: int = 3, width: float = 1.0, stem: str = "imagenet") -> None:
        super().__init__()
        if len(layers) != 4 or min(layers) < 1:
            raise ValueError(f"layers needs 4 positive block counts, got {list(layers)}")
        if stem not in ("imagenet", "cifar"):
            raise ValueError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        planes = [max(1, round(64 * width * 2**i)) for i in range(4)]
        self.in_planes = planes[0]
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, planes[0], kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        else:
            self.conv1 = conv3x3(in_channels, planes[0])
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(planes[0])
        self.relu = nn.ReLU(inplace=True)
        stages = []
        in_planes = planes[0]
        for i, (p, n) in enumerate(zip(planes, layers)):
            blocks = []
            for j in range(n):
                blocks.append(block(in_planes, p, 2 if i > 0 and j == 0 else 1))
                in_planes = p * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


_DEPTHS: dict[int, tuple[type[ResNetBasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    18: (ResNetBasicBlock, (2, 2, 2, 2)),
    34: (ResNetBasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
}


def _register(depth: int) -> None:
    block, layers = _DEPTHS[depth]

    @register_model(f"resnet{depth}", num_classes=1000, in_channels=3, input_size=(224, 224), mean=IMAGENET_MEAN,
                    std=IMAGENET_STD)
    def builder(*, num_classes: int = 1000, in_channels: int = 3, width: float = 1.0, stem: str = "imagenet"
                ) -> ResNet:
        return ResNet(block, layers, num_classes=num_classes, in_channels=in_channels, width=width, stem=stem)

    builder.__name__ = f"resnet{depth}"
    builder.__doc__ = f"ImageNet ResNet-{depth} ({block.__name__}, blocks {layers}), torchvision parameter names."


for _depth in _DEPTHS:
    _register(_depth)
