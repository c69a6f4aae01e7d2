"""What one inference touches, as the edge model sees it: units of weighted layers, and per leaf the
ordered units of its path.

A dense or pruned model is one unit used by every input. A tree has a backbone and root router used
by every input, and routers and nodes used by the inputs routed through them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sigmab.eval import profile_model
from sigmab.export.graphs import tree_units
from sigmab.tree.model import SigmaBTree


@dataclass(frozen=True)
class Layer:
    """One module with parameters or MACs: ``params`` (counted as stored weights) and MACs per input."""

    name: str
    params: int
    macs: int


@dataclass(frozen=True)
class Unit:
    name: str
    layers: tuple[Layer, ...]
    every_input: bool  # used by every inference (a candidate for static on-chip placement)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)


@dataclass(frozen=True)
class Workload:
    """``units`` by name; ``paths[leaf]`` the units one input routed to ``leaf`` runs, in order."""

    name: str
    units: dict[str, Unit]
    paths: dict[str, tuple[str, ...]]

    @property
    def stored_params(self) -> int:
        return sum(u.params for u in self.units.values())

    def path_params(self, leaf: str) -> int:
        return sum(self.units[u].params for u in self.paths[leaf])

    def path_macs(self, leaf: str) -> int:
        return sum(self.units[u].macs for u in self.paths[leaf])


def _layers(module: nn.Module, input_shape: tuple[int, ...]) -> tuple[Layer, ...]:
    profile = profile_model(module, input_shape)
    return tuple(Layer(m.name, m.params, m.macs) for m in profile.modules if m.params or m.macs)


def model_workload(model: nn.Module, input_shape: tuple[int, ...], *, name: str = "model") -> Workload:
    """A plain model on one (C, H, W) input: one unit, one path (``model``)."""
    return Workload(name, {"model": Unit("model", _layers(model, input_shape), True)}, {"model": ("model",)})


def tree_workload(tree: SigmaBTree, input_shape: tuple[int, ...], *, name: str = "sigmab") -> Workload:
    """A tree on one (C, H, W) input: backbone, routers and nodes as units, one path per leaf."""
    units = {}
    for unit, (module, x) in tree_units(tree.eval(), torch.zeros(1, *input_shape)).items():
        units[unit] = Unit(unit, _layers(module, tuple(x.shape[1:])), unit in ("backbone", "r"))
    paths = {}
    for leaf in tree.leaves:
        nodes, routers = tree.path_keys(leaf)
        paths[leaf] = ("backbone", *(u for pair in zip(routers, nodes) for u in pair))
    return Workload(name, units, paths)
