"""Which mixed precision a training run uses: ``--amp auto`` picks bf16 where the device runs it fast.

bf16 autocast pays on a CPU with AMX or AVX512-BF16 (oneDNN then runs convolutions and matmuls in bf16) and on
a CUDA device with bf16; elsewhere it emulates bf16 and is slower than fp32, so ``auto`` means fp32 there. On a
CPU it also means fp32 for a model with depthwise convolutions: measured on a Sapphire Rapids Xeon, bf16 ran
MobileNetV2-0.5 at 0.75x the fp32 step rate (``python -m benchmarks.train_speed``), oneDNN having no fast bf16
depthwise kernel there. What ``auto`` resolved to is stored in the run's config, so a report never hides which
precision trained a model.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from torch import nn

AMP_CHOICES = ("auto", "off", "bf16", "fp16")
_CPU_BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (empty where there is none, e.g. macOS)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), for speed results; the platform's name where unknown."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def cpu_isa() -> str:
    """The widest vector extension this CPU offers a convolution: ``amx``, ``avx512-bf16``, ``avx512``, ``avx2``,
    or ``other``. Two CPUs sold under one model name can differ here (EPYCs with and without AVX512-BF16 were
    seen), so speed results name it beside the model."""
    flags = cpu_flags()
    for isa, flag in (("amx", "amx_bf16"), ("avx512-bf16", "avx512_bf16"), ("avx512", "avx512f"), ("avx2", "avx2")):
        if flag in flags:
            return isa
    return "other"


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with AMX-BF16 or AVX512-BF16 (Sapphire Rapids and later Xeons, Zen 4 and later EPYCs)."""
    checks = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    if all(callable(c) for c in checks):
        return any(c() for c in checks)  # type: ignore[misc]
    return bool(cpu_flags() & _CPU_BF16_FLAGS)


def auto_amp(device: str) -> str:
    """What ``--amp auto`` means for a ``--device`` setting (auto, cpu, cuda, cuda:N): ``"bf16"`` or ``"off"``."""
    on_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if on_cuda:
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "off"
    return "bf16" if cpu_has_fast_bf16() else "off"


def has_depthwise_conv(model: nn.Module) -> bool:
    """True when ``model`` holds a depthwise convolution (groups == input channels > 1)."""
    return any(isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels for m in model.modules())


def auto_amp_for_model(amp: str, device: torch.device, model: nn.Module) -> str:
    """``amp`` as :func:`auto_amp` resolved it, revised once the model is known: fp32 for a model with depthwise
    convolutions on the CPU (bf16 is slower there)."""
    return "off" if amp == "bf16" and device.type == "cpu" and has_depthwise_conv(model) else amp
