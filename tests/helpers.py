"""Tiny models with non-trivial BatchNorm statistics, so equivalence tests can fail."""

from __future__ import annotations

import torch
from torch import nn

from sigmab.models import build_model


def randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
    return model.eval()


def mask_hook(keep: torch.Tensor, width: int):
    """A forward hook that zeroes every channel of a (N, C, H, W) output except ``keep``: the
    zeroed-dense reference that sliced models must equal."""
    mask = torch.zeros(width)
    mask[keep] = 1.0

    def hook(_m: nn.Module, _inp, out: torch.Tensor) -> torch.Tensor:
        return out * mask.view(1, -1, 1, 1)

    return hook


def tiny_resnet(depth: int = 20, widths: tuple[int, int, int] = (8, 16, 32), seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return randomise_bn(build_model(f"resnet{depth}", widths=list(widths)), seed)


def digits_resnet_checkpoint(folder, epochs: int = 3):
    """A ResNet-8 (widths 8/16/32) trained briefly on the bundled digits; returns its model.safetensors path."""
    from sigmab.train import TrainConfig, train

    cfg = TrainConfig(arch="resnet8", arch_kwargs={"widths": [8, 16, 32]}, dataset="digits", epochs=epochs,
                      batch_size=64, lr=0.05)
    train(cfg, folder, progress=False)
    return folder / "model.safetensors"
