"""Physical channel slicing: one handler per layer type, in a registry.

A handler takes a layer and the dense channel indices to keep on its input and/or output side
(``None`` keeps all) and returns a new, smaller layer holding copies of the kept weights. New
layer types join with :func:`register_slicer`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from sigmab.utils.registry import TypeRegistry

Index = torch.Tensor | None  # sorted dense channel ids (LongTensor), or None for "all"
LayerSlicer = Callable[[nn.Module, Index, Index], nn.Module]
LAYER_SLICERS: TypeRegistry[LayerSlicer] = TypeRegistry("channel slicer")
register_slicer = LAYER_SLICERS.register


def _take(t: torch.Tensor, dim: int, idx: Index) -> torch.Tensor:
    return t.detach().clone() if idx is None else t.detach().index_select(dim, idx).clone()


def _count(idx: Index, full: int) -> int:
    return full if idx is None else int(idx.numel())


def _depthwise_channels(conv: nn.Module, in_idx: Index, out_idx: Index) -> Index:
    """The one channel set of a depthwise convolution (input channel c makes output channel c)."""
    if not conv.groups == conv.in_channels == conv.out_channels:
        raise NotImplementedError("slicing grouped convolutions other than depthwise ones is not supported")
    if in_idx is not None and out_idx is not None and not torch.equal(in_idx, out_idx):
        raise ValueError("a depthwise convolution keeps the same channels on its input and output sides")
    return out_idx if out_idx is not None else in_idx


def _per_group(idx: Index, full: int, groups: int, what: str) -> list[torch.Tensor]:
    """``idx`` (sorted dense ids of ``full`` channels) split by convolution group, as ids within the group."""
    per = full // groups
    ids = torch.arange(full) if idx is None else idx
    parts = [ids[(ids >= g * per) & (ids < (g + 1) * per)] - g * per for g in range(groups)]
    if len({p.numel() for p in parts}) != 1 or parts[0].numel() == 0:
        raise ValueError(f"a grouped convolution ({groups} groups) keeps the same number of {what} channels, at "
                         f"least one, in each group; got {[p.numel() for p in parts]}")
    return parts


def _slice_grouped(conv: nn.Module, in_idx: Index, out_idx: Index) -> nn.Module:
    """A grouped (not depthwise) convolution keeping ``in_idx`` x ``out_idx``: each group keeps its own inputs and
    outputs, the same counts in every group, so the copy has the same ``groups``."""
    g = conv.groups
    ins, outs = _per_group(in_idx, conv.in_channels, g, "input"), _per_group(out_idx, conv.out_channels, g, "output")
    new = type(conv)(g * ins[0].numel(), g * outs[0].numel(), conv.kernel_size, stride=conv.stride,
                     padding=conv.padding, dilation=conv.dilation, groups=g, bias=conv.bias is not None,
                     padding_mode=conv.padding_mode)
    per_out = conv.out_channels // g
    rows = [conv.weight.detach()[o + j * per_out].index_select(0, ins[j]) for j in range(g) for o in outs[j]]
    with torch.no_grad():
        new.weight.copy_(torch.stack(rows))
        if conv.bias is not None:
            new.bias.copy_(_take(conv.bias, 0, out_idx))
    return new


@register_slicer(nn.Conv1d, nn.Conv2d)
def slice_conv(conv: nn.Module, in_idx: Index, out_idx: Index) -> nn.Module:
    """Dense convolutions keep ``in_idx`` x ``out_idx``; a depthwise one (``groups`` = channels) keeps one set of
    channels, whose count becomes its ``groups``; another grouped one keeps its groups (:func:`_slice_grouped`)."""
    assert isinstance(conv, (nn.Conv1d, nn.Conv2d))
    if 1 < conv.groups < conv.in_channels:
        return _slice_grouped(conv, in_idx, out_idx)
    groups = 1
    if conv.groups != 1:
        in_idx = out_idx = _depthwise_channels(conv, in_idx, out_idx)
        groups = _count(out_idx, conv.out_channels)
    new = type(conv)(_count(in_idx, conv.in_channels), _count(out_idx, conv.out_channels), conv.kernel_size,
                     stride=conv.stride, padding=conv.padding, dilation=conv.dilation, groups=groups,
                     bias=conv.bias is not None, padding_mode=conv.padding_mode)
    with torch.no_grad():
        if conv.groups != 1:  # weight (C, 1, k...): only dim 0 indexes channels (also when one channel is left)
            in_idx = None
        new.weight.copy_(_take(_take(conv.weight, 0, out_idx), 1, in_idx))
        if conv.bias is not None:
            new.bias.copy_(_take(conv.bias, 0, out_idx))
    return new


@register_slicer(nn.BatchNorm1d, nn.BatchNorm2d)
def slice_bn(bn: nn.Module, in_idx: Index, out_idx: Index) -> nn.Module:
    assert isinstance(bn, (nn.BatchNorm1d, nn.BatchNorm2d))
    idx = out_idx if out_idx is not None else in_idx
    new = type(bn)(_count(idx, bn.num_features), eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
                   track_running_stats=bn.track_running_stats)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            src = getattr(bn, name)
            if src is not None:
                getattr(new, name).copy_(_take(src, 0, idx))
        if bn.num_batches_tracked is not None:
            new.num_batches_tracked.copy_(bn.num_batches_tracked)
    return new


@register_slicer(nn.Linear)
def slice_linear(linear: nn.Module, in_idx: Index, out_idx: Index) -> nn.Module:
    assert isinstance(linear, nn.Linear)
    new = nn.Linear(_count(in_idx, linear.in_features), _count(out_idx, linear.out_features),
                    bias=linear.bias is not None)
    with torch.no_grad():
        new.weight.copy_(_take(_take(linear.weight, 0, out_idx), 1, in_idx))
        if linear.bias is not None:
            new.bias.copy_(_take(linear.bias, 0, out_idx))
    return new


def slice_layer(module: nn.Module, *, in_idx: Index = None, out_idx: Index = None) -> nn.Module:
    """A sliced copy of ``module``; raises ``NotImplementedError`` for a type with no handler."""
    # A fresh layer starts in training mode; a BatchNorm must keep using its running statistics.
    return LAYER_SLICERS.get(module)(module, in_idx, out_idx).train(module.training)


class IndexShortcut(nn.Module):
    """A parameter-free shortcut as a channel map: (N, C_in, H, W) -> (N, C_out, H/stride, W/stride).

    ``gather[j]`` is the input position feeding output channel ``j``, or -1 for a zero channel.
    It replaces both the identity and the option-A zero-padding shortcut once the input and
    output channel sets of a block differ.
    """

    def __init__(self, gather: torch.Tensor, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride
        gather = gather.long().clone()
        self.register_buffer("gather", gather, persistent=True)
        # The map is fixed by the spec, so the branch is decided here: a data-dependent branch in
        # forward would stop torch.export. The derived index buffers are not saved.
        mapped = gather >= 0
        self.all_mapped = bool(mapped.all())
        self.register_buffer("_dst", mapped.nonzero().flatten(), persistent=False)
        self.register_buffer("_src", gather[mapped], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.all_mapped:
            return x.index_select(1, self.gather)
        # One zero-filled output and one copy of the mapped channels (no concatenated zero channel).
        out = x.new_zeros(x.shape[0], self.gather.numel(), *x.shape[2:])
        return out.index_copy(1, self._dst, x.index_select(1, self._src))

    def extra_repr(self) -> str:
        return f"{int((self.gather >= 0).sum())}/{self.gather.numel()} mapped, stride={self.stride}"


def channel_map(in_idx: torch.Tensor, out_idx: torch.Tensor, *, offset: int = 0) -> torch.Tensor:
    """For each dense output id in ``out_idx``, the position in ``in_idx`` of dense id ``out - offset``, or -1."""
    lookup = {int(d): p for p, d in enumerate(in_idx.tolist())}
    return torch.tensor([lookup.get(int(d) - offset, -1) for d in out_idx.tolist()], dtype=torch.long)


def slice_stem(stem: nn.Module, out_idx: torch.Tensor) -> nn.Module:
    """A conv-BN-activation stem (a Sequential) with only the ``out_idx`` output channels."""
    if not isinstance(stem, nn.Sequential):
        raise NotImplementedError(f"slicing a {type(stem).__name__} stem is not supported")
    layers, sliced_conv = [], False
    for layer in stem:
        if isinstance(layer, (nn.Conv1d, nn.Conv2d)):
            if sliced_conv:
                raise NotImplementedError("slicing a stem with more than one convolution is not supported")
            layers.append(slice_layer(layer, out_idx=out_idx))
            sliced_conv = True
        elif isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layers.append(slice_layer(layer, out_idx=out_idx))
        else:
            layers.append(copy.deepcopy(layer))
    return nn.Sequential(*layers)


def sliced_stem(dec: Any, stem_out: list[int]) -> nn.Module:
    """A copy of decomposition ``dec``'s stem keeping the ``stem_out`` output channels (the whole stem if all)."""
    if len(stem_out) == dec.stem_width:
        return copy.deepcopy(dec.stem)
    return slice_stem(dec.stem, torch.tensor(stem_out, dtype=torch.long))
