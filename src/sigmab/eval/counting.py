"""Parameter and MAC counting with forward hooks, per module and in total.

MACs count multiply-accumulates of the weighted layers (convolutions and linear maps) for one
input; normalisation, activation and pooling are not counted, as in the ResNet and pruning
literature. A new layer type joins by registering a counter in ``MAC_COUNTERS``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from sigmab.utils.registry import TypeRegistry

MacCounter = Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], int]
MAC_COUNTERS: TypeRegistry[MacCounter] = TypeRegistry("MAC counter")
register_mac_counter = MAC_COUNTERS.register


@register_mac_counter(nn.Conv1d, nn.Conv2d, nn.Conv3d)
def _conv_macs(m: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> int:
    assert isinstance(m, nn.modules.conv._ConvNd)
    per_output = (m.in_channels // m.groups) * int(torch.tensor(m.kernel_size).prod())
    return out[0].numel() * per_output


@register_mac_counter(nn.Linear)
def _linear_macs(m: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> int:
    assert isinstance(m, nn.Linear)
    return out[0].numel() * m.in_features


def count_params(model: nn.Module) -> int:
    """Number of parameters (not buffers), counting shared parameters once."""
    return sum(p.numel() for p in model.parameters())


@dataclass(frozen=True)
class ModuleCost:
    name: str
    kind: str
    params: int
    macs: int


@dataclass(frozen=True)
class Profile:
    """Per-module costs of one input, in forward order, and totals."""

    modules: tuple[ModuleCost, ...]
    params: int
    macs: int

    def table(self) -> str:
        """One row per leaf module; the name and type columns are as wide as their longest entry."""
        name_w = max([len("module"), len("total"), *(len(m.name) for m in self.modules)])
        kind_w = max([len("type"), *(len(m.kind) for m in self.modules)])
        lines = [f"{'module':<{name_w}}  {'type':<{kind_w}}  {'params':>10}  {'MACs':>14}"]
        for m in self.modules:
            lines.append(f"{m.name:<{name_w}}  {m.kind:<{kind_w}}  {m.params:>10,}  {m.macs:>14,}")
        lines.append(f"{'total':<{name_w}}  {'':<{kind_w}}  {self.params:>10,}  {self.macs:>14,}")
        return "\n".join(lines)


@torch.no_grad()
def profile_model(model: nn.Module, input_shape: Sequence[int]) -> Profile:
    """Run one zero input of shape (C, H, W) (batch of 1) and record each leaf module's params and MACs.

    ``params`` in the totals is :func:`count_params` of the whole model, so parameters outside
    leaf modules are not lost.
    """
    records: list[ModuleCost] = []
    handles = []
    for name, module in model.named_modules():
        if any(True for _ in module.children()):
            continue
        counter = MAC_COUNTERS.find(module)

        def hook(m: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor, name: str = name,
                 counter: MacCounter | None = counter) -> None:
            macs = counter(m, inputs, out) if counter is not None else 0
            params = sum(p.numel() for p in m.parameters(recurse=False))
            records.append(ModuleCost(name, type(m).__name__, params, macs))

        handles.append(module.register_forward_hook(hook))
    # Restore every module's own mode, not the root's: a wrapper (e.g. a tree's PathModel) may share
    # submodules with a model in another mode, and model.train(flag) would overwrite all of them.
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        param = next(model.parameters(), None)
        x = torch.zeros(1, *input_shape, dtype=param.dtype if param is not None else torch.float32)
        model(x)
    finally:
        for h in handles:
            h.remove()
        for m, training in modes.items():
            m.training = training
    return Profile(tuple(records), count_params(model), sum(r.macs for r in records))
