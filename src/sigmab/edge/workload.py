"""What one inference touches, as the edge model sees it: units of weighted layers, and per leaf the
ordered units of its path.

A dense or pruned model is one unit used by every input. A tree has a backbone and root router used
by every input, and routers and nodes used by the inputs routed through them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from sigmab.errors import ConfigError
from sigmab.eval import profile_model
from sigmab.export.graphs import tree_units
from sigmab.tree.model import SigmaBTree


@dataclass(frozen=True)
class Layer:
    """One module with parameters or MACs: ``params`` (counted as stored weights) and MACs per input;
    ``weight_bytes`` when measured from a deployed file (else the device's bytes per weight apply)."""

    name: str
    params: int
    macs: int
    weight_bytes: int | None = None

    def bytes(self, bytes_per_weight: int) -> int:
        return self.weight_bytes if self.weight_bytes is not None else self.params * bytes_per_weight


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

    def bytes(self, bytes_per_weight: int) -> int:
        return sum(layer.bytes(bytes_per_weight) for layer in self.layers)


@dataclass(frozen=True)
class Workload:
    """``units`` by name; ``paths[leaf]`` the units one input routed to ``leaf`` runs, in order."""

    name: str
    units: dict[str, Unit]
    paths: dict[str, tuple[str, ...]]
    precision: str | None = None  # of measured weight bytes (:func:`with_file_bytes`); None: the device's

    @property
    def stored_params(self) -> int:
        return sum(u.params for u in self.units.values())

    def stored_bytes(self, bytes_per_weight: int) -> int:
        return sum(u.bytes(bytes_per_weight) for u in self.units.values())

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


def with_file_bytes(workload: Workload, unit_bytes: dict[str, int], *, precision: str) -> Workload:
    """``workload`` with each unit's weights counted as the bytes its deployed file stores (``unit_bytes`` by unit
    name, e.g. an int8 export's graphs: weights, scales, zero points, biases), spread over the unit's layers in
    proportion to their parameters."""
    missing = sorted(set(workload.units) - set(unit_bytes))
    if missing:
        raise ConfigError(f"no file bytes for unit(s) {', '.join(missing)} of {workload.name}")
    units = {}
    for name, unit in workload.units.items():
        per_param = unit_bytes[name] / unit.params if unit.params else 0.0
        # cumulative rounding, so that a unit's layers add up to its file's bytes exactly
        ends = [round(per_param * sum(la.params for la in unit.layers[:i + 1])) for i in range(len(unit.layers))]
        layers = tuple(replace(layer, weight_bytes=end - start)
                       for layer, start, end in zip(unit.layers, [0, *ends[:-1]], ends))
        units[name] = replace(unit, layers=layers)
    return replace(workload, units=units, precision=precision)
