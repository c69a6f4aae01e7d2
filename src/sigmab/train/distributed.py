"""Where a training process runs: its device, and multi-process data parallelism through
``torch.distributed`` (launched with ``torchrun``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from sigmab.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")  # or cuda:N


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto``: this process's GPU (``LOCAL_RANK`` under torchrun) where CUDA is available, else the CPU;
    ``cpu``; ``cuda`` (this process's GPU) or ``cuda:N``."""
    if spec == "cpu" or (spec == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if spec not in DEVICES and not spec.startswith("cuda:"):
        raise ConfigError(f"unknown device {spec!r}; choose auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise ConfigError(f"device {spec!r} asked for, but CUDA is not available here")
    index = int(spec.split(":")[1]) if ":" in spec else int(os.environ.get("LOCAL_RANK", "0"))
    if not 0 <= index < torch.cuda.device_count():
        raise ConfigError(f"no CUDA device {index} (this machine has {torch.cuda.device_count()})")
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def init_distributed(device: torch.device | None = None) -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment: NCCL for processes on GPUs,
    gloo on CPUs. A plain single-process run (no ``WORLD_SIZE`` > 1) returns rank 0 of 1 and starts nothing.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device is not None and device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size())


def data_parallel(module: nn.Module, device: torch.device, info: DistInfo, **kwargs: bool) -> nn.Module:
    """``module`` wrapped in DDP under torchrun (on its GPU where it has one), else unchanged."""
    if not info.enabled:
        return module
    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None, **kwargs)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_reduce_sum(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum a tensor of counts across ranks (in place on a copy)."""
    values = values.clone()
    if info.enabled:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def broadcast_buffers(module: torch.nn.Module, info: DistInfo) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

    DDP broadcasts buffers at the start of each forward, so after the last step of an epoch the
    ranks' statistics differ by one local update; this makes saved and evaluated models agree.
    """
    if info.enabled:
        for buf in module.buffers():
            dist.broadcast(buf, src=0)
