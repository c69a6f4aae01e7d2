"""CIFAR ResNets (He et al., 2016, section 4.2): depth 6n+2, widths 16/32/64.

Two shortcut layouts, both common in published checkpoints:
- ``shortcut="A"`` (the paper's CIFAR choice): parameter-free, subsample and zero-pad channels. Parameter names
  match akamaster/pytorch_resnet_cifar10 (``conv1``, ``bn1``, ``layerK.i.conv1/bn1/conv2/bn2``, ``linear``).
- ``shortcut="B"``: a 1x1 convolution + BN projection where the shape changes (``layerK.0.shortcut.0/1``).
  Checkpoints in the torchvision-style naming of this layout (``downsample.0/1``, an ``fc`` head, as
  chenyaofo/pytorch-cifar-models publishes them) are recognised and renamed on load
  (:func:`read_checkpoint_layout`); a user never edits keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sigmab.models.registry import LayoutReading, register_model

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SHORTCUTS = ("A", "B")
# The input statistics that published option-B CIFAR ResNets (chenyaofo/pytorch-cifar-models) were trained
# with, by class count; a file in that layout carries none, and option-A files (akamaster) use ImageNet's.
_PROJECTION_LAYOUT_STATS = {
    10: ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    100: ((0.5070, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


def projection(in_planes: int, out_planes: int, stride: int) -> nn.Sequential:
    """The 1x1 convolution + BN shortcut of a block whose stride or width changes (torchvision ``downsample``)."""
    return nn.Sequential(conv1x1(in_planes, out_planes, stride), nn.BatchNorm2d(out_planes))


class ZeroPadShortcut(nn.Module):
    """Option-A shortcut: subsample spatially by ``stride`` and zero-pad channels.

    (N, C_in, H, W) -> (N, C_in + pad_front + pad_back, H/stride, W/stride).
    Parameter-free, so it adds nothing to a checkpoint.
    """

    def __init__(self, stride: int, pad_front: int, pad_back: int) -> None:
        super().__init__()
        self.stride = stride
        self.pad_front = pad_front
        self.pad_back = pad_back

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad_front, self.pad_back))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, pad=({self.pad_front}, {self.pad_back})"


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus shortcut, then ReLU. (N, C_in, H, W) -> (N, planes, H/s, W/s)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: str = "A") -> None:
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride == 1 and in_planes == planes:
            self.shortcut: nn.Module = nn.Identity()
        elif shortcut == "B":
            self.shortcut = projection(in_planes, planes, stride)
        else:
            extra = planes - in_planes
            self.shortcut = ZeroPadShortcut(stride, extra // 2, extra - extra // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """(N, in_channels, H, W) -> logits (N, num_classes). Three stages of ``num_blocks`` BasicBlocks whose
    shape-changing shortcuts are option ``shortcut`` ("A": zero-padding, "B": 1x1 projection)."""

    def __init__(
        self,
        *,
        num_blocks: int,
        num_classes: int = 10,
        in_channels: int = 3,
        widths: Sequence[int] = (16, 32, 64),
        shortcut: str = "A",
    ) -> None:
        super().__init__()
        if num_blocks < 1:
            raise ValueError(f"num_blocks must be >= 1, got {num_blocks}")
        if shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be one of {', '.join(SHORTCUTS)}, got {shortcut!r}")
        widths = tuple(int(w) for w in widths)
        if len(widths) != 3:
            raise ValueError(f"widths needs 3 stage widths, got {widths}")
        self.conv1 = conv3x3(in_channels, widths[0])
        self.bn1 = nn.BatchNorm2d(widths[0])
        in_planes = widths[0]
        stages = []
        for stage, planes in enumerate(widths):
            blocks = []
            for i in range(num_blocks):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(BasicBlock(in_planes, planes, stride, shortcut))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.linear = nn.Linear(in_planes, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


def read_checkpoint_layout(sd: dict[str, torch.Tensor]) -> LayoutReading:
    """Recognise a CIFAR ResNet file's shortcut layout from its keys and rename it into this module's names.

    Projection weights (``*.downsample.0/1.*`` or ``*.shortcut.0/1.*``) mean option B; their absence, option A.
    An ``fc`` head becomes ``linear``; stage widths other than 16/32/64 are read off the stages' last convolutions.
    A file in the option-B layout gets the input statistics that layout's published models were trained with
    (:data:`_PROJECTION_LAYOUT_STATS`).
    """
    renamed = {_rename(k): v for k, v in sd.items()}
    kwargs: dict[str, Any] = {}
    convs = [renamed.get(f"layer{s}.0.conv2.weight") for s in (1, 2, 3)]
    if all(c is not None and c.dim() == 4 for c in convs):
        widths = [int(c.shape[0]) for c in convs]
        if widths != [16, 32, 64]:
            kwargs["widths"] = widths
    if not any(".shortcut.0." in k for k in renamed):
        return LayoutReading(kwargs, renamed, {})  # option A, the builder's default
    head = renamed.get("linear.weight")
    stats = _PROJECTION_LAYOUT_STATS.get(int(head.shape[0])) if head is not None and head.dim() == 2 else None
    meta: dict[str, Any] = {"mean": stats[0], "std": stats[1]} if stats else {}
    return LayoutReading({**kwargs, "shortcut": "B"}, renamed, meta)


def _rename(key: str) -> str:
    if key.startswith("fc."):
        return "linear." + key[3:]
    return key.replace(".downsample.", ".shortcut.")


def _register_depth(depth: int) -> None:
    if (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")

    @register_model(
        f"resnet{depth}", num_classes=10, in_channels=3, input_size=(32, 32), mean=IMAGENET_MEAN, std=IMAGENET_STD,
        layout=read_checkpoint_layout,
    )
    def builder(*, num_classes: int = 10, in_channels: int = 3, widths: Sequence[int] = (16, 32, 64),
                shortcut: str = "A") -> CifarResNet:
        return CifarResNet(num_blocks=(depth - 2) // 6, num_classes=num_classes, in_channels=in_channels, widths=widths,
                           shortcut=shortcut)

    builder.__name__ = f"resnet{depth}"
    builder.__doc__ = f"CIFAR ResNet-{depth} ({(depth - 2) // 6} blocks per stage)."


for _depth in (8, 20, 32, 44, 56, 110):
    _register_depth(_depth)
