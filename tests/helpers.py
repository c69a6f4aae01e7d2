"""Tiny models with non-trivial BatchNorm statistics, so equivalence tests can fail."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Iterator

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
    """A forward hook that zeroes every channel of a (N, C, ...) output except ``keep``: the
    zeroed-dense reference that sliced models must equal."""
    mask = torch.zeros(width)
    mask[keep] = 1.0

    def hook(_m: nn.Module, _inp, out: torch.Tensor) -> torch.Tensor:
        return out * mask.view(1, -1, *([1] * (out.dim() - 2)))

    return hook


def assert_same_function(actual: torch.Tensor, expected: torch.Tensor, *, ulps: float = 1024.0) -> None:
    """``actual`` equals ``expected`` up to rounding: an absolute tolerance of ``ulps`` units of the dtype's
    epsilon at the scale of the largest output. A deep random network's logits reach the hundreds, and a
    float reduction's rounding error scales with the magnitudes summed, not with each small element, so
    a fixed 1e-5 flips with the thread count (summation order) of the machine."""
    scale = max(1.0, float(expected.abs().max()))
    torch.testing.assert_close(actual, expected, atol=ulps * torch.finfo(expected.dtype).eps * scale, rtol=0)


def tiny_resnet(depth: int = 20, widths: tuple[int, int, int] = (8, 16, 32), seed: int = 0, shortcut: str = "A"
                ) -> nn.Module:
    """A CIFAR ResNet at reduced widths with option-A (zero-padding) or option-B (projection) shortcuts."""
    torch.manual_seed(seed)
    kwargs = {"shortcut": shortcut} if shortcut != "A" else {}
    return randomise_bn(build_model(f"resnet{depth}", widths=list(widths), **kwargs), seed)


def tiny_imagenet_resnet(depth: int = 18, width: float = 0.125, seed: int = 0, **kwargs) -> nn.Module:
    """A torchvision-layout ResNet at reduced width (ResNet-18: 8/16/32/64 channels), 10 classes."""
    torch.manual_seed(seed)
    return randomise_bn(build_model(f"resnet{depth}", num_classes=10, width=width, **kwargs), seed)


def tiny_mobilenet_v2(width_mult: float = 0.25, seed: int = 0) -> nn.Module:
    """A CIFAR-stem MobileNetV2 at width 0.25 (8 .. 80 channels, then the 1280-channel last conv), 10 classes, with
    random BatchNorm statistics (so a zeroed channel's BN shift shows)."""
    torch.manual_seed(seed)
    return randomise_bn(build_model("mobilenet_v2_cifar", width_mult=width_mult), seed)


TINY_POINTNET = dict(centers=[32, 8], radii=[0.5, 1.0], neighbors=[8, 6], mlps=[[8, 8, 16], [16, 12, 24], [24, 32, 40]],
                     hidden=[24, 16])


def tiny_pointnet(in_channels: int = 4, seed: int = 0) -> nn.Module:
    """A PointNet++ SSG with two sampling levels (32 and 8 centers), 5 classes, xyz + 1 feature by default."""
    torch.manual_seed(seed)
    return randomise_bn(build_model("pointnet2_ssg", num_classes=5, in_channels=in_channels,
                                    mean=(0.0,) * in_channels, std=(1.0,) * in_channels, input_size=(64,),
                                    **TINY_POINTNET), seed)


def point_batch(n: int, points: int = 64, in_channels: int = 4, seed: int = 0) -> torch.Tensor:
    """(n, in_channels, points): coordinates in the unit cube around 0, then features."""
    g = torch.Generator().manual_seed(seed)
    return torch.cat([torch.rand(n, 3, points, generator=g) * 2 - 1,
                      torch.rand(n, in_channels - 3, points, generator=g)], dim=1)


def calibration_batch(n: int = 160, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def tiny_tree(model: nn.Module | None = None, calib: torch.Tensor | None = None):
    """A depth-2 tree sliced from a tiny ResNet-20 (inner widths 0.5/0.25, residual 0.75/0.5): a Conversion."""
    from sigmab.tree import ConvertConfig, convert

    cfg = ConvertConfig(depth=2, widths=[0.5, 0.25], residual_widths=[0.75, 0.5], calib_size=160, min_leaf_samples=8)
    return convert(model if model is not None else tiny_resnet(), calib if calib is not None else calibration_batch(),
                   cfg)


def digits_resnet_checkpoint(folder, epochs: int = 3):
    """A ResNet-8 (widths 8/16/32) trained briefly on the bundled digits; returns its model.safetensors path."""
    from sigmab.train import TrainConfig, train

    cfg = TrainConfig(arch="resnet8", arch_kwargs={"widths": [8, 16, 32]}, dataset="digits", epochs=epochs,
                      batch_size=64, lr=0.05)
    train(cfg, folder, progress=False)
    return folder / "model.safetensors"


def digits_tree_folder(root, epochs: int = 1):
    """(the dense checkpoint, a depth-2 tree folder converted from it at widths 1/2): a ResNet-8 trained on the
    bundled digits under ``root``, converted with ``sigmab convert``."""
    from sigmab.cli import main

    checkpoint = digits_resnet_checkpoint(root / "dense", epochs=epochs)
    tree = root / "tree"
    assert main(["convert", "--checkpoint", str(checkpoint), "--dataset", "digits", "--out", str(tree), "--widths",
                 "[0.5, 0.5]", "--calib-size", "400", "--min-leaf-samples", "16", "--no-progress"]) == 0
    return checkpoint, tree


def torchvision_models():
    """``torchvision.models`` (imported as sigmab imports it, also where its compiled ops do not load), or a skip
    of the calling test when torchvision is not installed."""
    import pytest

    from sigmab.errors import ConfigError
    from sigmab.models.zoo import import_torchvision

    try:
        return import_torchvision().models
    except ConfigError as exc:
        pytest.skip(str(exc))


def copy_tree_folder(src, dst):
    """A fresh tree folder at ``dst`` (created) holding ``src``'s spec and converted weights, for a run that must
    start from the same tree as another."""
    dst.mkdir(parents=True)
    for name in ("tree.json", "tree.safetensors"):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


def inner_zeroed_output(dec, spec, x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The dense decomposition ``dec`` on ``x`` with every inner channel a prune ``spec`` dropped zeroed where its
    block handler says dropping acts (its inner activation): what an inner prune must compute. Returns the logits
    and the number of groups masked."""
    from sigmab.graph import block_handler

    handles = [module.register_forward_hook(mask_hook(ch.inner[group], block_handler(block).inner_groups(block)[group]))
               for block, ch in zip(dec.blocks, spec.blocks)
               for group, module in block_handler(block).inner_activations(block).items()]
    try:
        with torch.no_grad():
            h = dec.stem(x)
            for block in dec.blocks:
                h = block(h)
            return dec.head(h), len(handles)
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def captured_fds() -> Iterator[list[str]]:
    """What the process writes to file descriptors 1 and 2 inside the block (C++ and logging included), as one
    string appended to the yielded list on exit; for module-scoped fixtures, where ``capfd`` is not available."""
    said: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    python = io.StringIO()  # under pytest, sys.stdout/err are its own objects, not fds 1 and 2
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            with contextlib.redirect_stdout(python), contextlib.redirect_stderr(python):
                yield said
        finally:
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            said.append(sink.read().decode(errors="replace") + python.getvalue())
