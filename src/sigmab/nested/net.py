"""Multi-level nested sparse networks with input-independent rerouting (after Sun et al., arXiv 2112.10930).

One set of weights serves several sparsity levels. Each masked layer ranks its weights by magnitude
once; level ``k`` (levels ordered densest first) keeps the top ``1 - sparsity[k]`` of that ranking,
so a sparser level's non-zero positions are a subset of every denser level's, and so are its values:
all levels read the same tensor. Every weight stores the number of levels it belongs to
(``keep_levels``, 0..L), which is also the whole mask format.

A *route* gives each masked layer its level. A uniform route runs the network at one level; a
rerouted one runs the layers before a switch point at one level and the rest at another. The route
is chosen per call from a resource budget, never from the input.

Choices the abstract leaves open (documented in docs/ARCHITECTURE.md): masks are per layer (every
layer at the level's sparsity), fixed from the pretrained magnitudes; every convolution and linear
weight is masked except the first convolution (a few hundred weights that every pixel passes
through); training minimises the mean cross-entropy over all levels (plus optional distillation).

BatchNorm: the affine parameters are shared, but every level keeps its own running statistics
(``norm_mean_<level>_<j>``/``norm_var_<level>_<j>``). A level's activations have their own mean and
variance; one shared set, updated by every level's training pass, fits none of them (a first CIFAR run
with shared statistics evaluated at 25-31% while training at 87-90%). A normalisation layer reads the
statistics of the level of the nearest masked layer before it in registration order (the convolution it
normalises, in the ResNets here), so a rerouted route reads the early level's statistics before the
switch and the late level's after it. Those late statistics were collected behind the late level's own
early layers, not the early level's; :func:`calibrate_route` gives a rerouting its own statistics
(``route_mean_<k>_<j>``/``route_var_<k>_<j>``, one set per calibrated route, a few KB each).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from sigmab.errors import ConfigError

MASKED_TYPES = (nn.Conv1d, nn.Conv2d, nn.Linear)
NORM_TYPE = nn.modules.batchnorm._BatchNorm


def masked_layers(model: nn.Module, *, skip_first: bool = True) -> list[str]:
    """Names of the convolution and linear layers whose weights are masked, in registration order."""
    names = [name for name, m in model.named_modules() if isinstance(m, MASKED_TYPES)]
    return names[1:] if skip_first else names


def norm_layers(model: nn.Module, layers: Sequence[str]) -> list[tuple[str, int]]:
    """(name, index into ``layers`` of the nearest masked layer registered before it, or 0) of every
    BatchNorm layer that tracks running statistics, in registration order."""
    masked = {name: i for i, name in enumerate(layers)}
    found, source = [], 0
    for name, m in model.named_modules():
        source = masked.get(name, source)
        if isinstance(m, NORM_TYPE) and m.track_running_stats:
            found.append((name, source))
    return found


def check_sparsities(sparsities: Sequence[float]) -> tuple[float, ...]:
    if not isinstance(sparsities, (list, tuple)) or not all(
            isinstance(s, (int, float)) and not isinstance(s, bool) for s in sparsities):
        raise ConfigError(f"sparsities must be a list of numbers, densest level first, e.g. '[0.8, 0.9, 0.95]'; "
                          f"got {sparsities!r}")
    values = tuple(float(s) for s in sparsities)
    if not values or any(not 0.0 <= s < 1.0 for s in values):
        raise ConfigError(f"sparsities must be in [0, 1), got {list(sparsities)}")
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ConfigError(f"sparsities must increase (densest level first), got {list(values)}")
    return values


def magnitude_keep_levels(weight: torch.Tensor, sparsities: Sequence[float]) -> torch.Tensor:
    """int8 tensor of ``weight``'s shape: how many levels keep each weight (ranked by |w|, ties to the lower
    index). Level ``k`` keeps ``max(1, round((1 - sparsities[k]) * numel))`` weights."""
    flat = weight.detach().abs().flatten()
    order = torch.argsort(flat, descending=True, stable=True)
    levels = torch.zeros(flat.numel(), dtype=torch.int8)
    for s in sparsities:
        keep = max(1, round((1.0 - s) * flat.numel()))
        levels[order[:keep]] += 1
    return levels.view_as(weight)


@dataclass(frozen=True)
class Route:
    """The level of every masked layer, in :func:`masked_layers` order (0 = densest)."""

    levels: tuple[int, ...]

    @classmethod
    def uniform(cls, level: int, n_layers: int) -> Route:
        return cls((level,) * n_layers)

    @classmethod
    def rerouted(cls, early: int, late: int, switch: int, n_layers: int) -> Route:
        """Layers ``0 .. switch-1`` at level ``early``, layers ``switch ..`` at level ``late``."""
        if not 0 < switch < n_layers:
            raise ConfigError(f"the switch must lie between two masked layers (1..{n_layers - 1}), got {switch}")
        return cls((early,) * switch + (late,) * (n_layers - switch))

    def label(self) -> str:
        if len(set(self.levels)) == 1:
            return f"L{self.levels[0]}"
        switch = next(i for i, v in enumerate(self.levels) if v != self.levels[0])
        return f"L{self.levels[0]}->L{self.levels[-1]}@{switch}"


class NestedSparseNet(nn.Module):
    """(N, ...) -> logits of ``model`` with each masked layer's weight multiplied by its level's mask.

    ``model`` keeps the shared dense-shaped weights (trained in place); ``keep_levels_<i>`` buffers hold
    each masked layer's level counts, ``norm_mean_<level>_<j>``/``norm_var_<level>_<j>`` each level's
    running statistics of BatchNorm layer ``j`` (starting from the model's; ``model``'s own running
    statistics are never read or updated), ``route_mean_<k>_<j>``/``route_var_<k>_<j>`` the statistics of
    calibrated route ``route_stats[k]``. ``route`` sets the level of every masked layer for the next calls.
    """

    def __init__(self, model: nn.Module, sparsities: Sequence[float], *, layers: Sequence[str] | None = None,
                 keep_levels: Sequence[torch.Tensor] | None = None) -> None:
        super().__init__()
        self.model = model
        self.sparsities = check_sparsities(sparsities)
        self.layers = list(layers) if layers is not None else masked_layers(model)
        modules = dict(model.named_modules())
        missing = [n for n in self.layers if not isinstance(modules.get(n), MASKED_TYPES)]
        if missing:
            raise ConfigError(f"not convolution or linear layers of the model: {missing}")
        # A plain tuple (not registered twice): the masked layers in ``layers`` order, looked up once.
        self.masked_modules = tuple(modules[name] for name in self.layers)
        for i, name in enumerate(self.layers):
            weight = modules[name].weight
            levels = (magnitude_keep_levels(weight, self.sparsities) if keep_levels is None
                      else keep_levels[i].to(torch.int8))
            if levels.shape != weight.shape:
                raise ConfigError(f"{name}: mask of shape {tuple(levels.shape)} for a weight of {tuple(weight.shape)}")
            self.register_buffer(f"keep_levels_{i}", levels)
        self.norms = norm_layers(model, self.layers)
        self.norm_modules = tuple(modules[name] for name, _ in self.norms)  # plain tuple, like masked_modules
        for j, norm in enumerate(self.norm_modules):
            for level in range(self.num_levels):
                self.register_buffer(f"norm_mean_{level}_{j}", norm.running_mean.detach().clone())
                self.register_buffer(f"norm_var_{level}_{j}", norm.running_var.detach().clone())
        self.route_stats: list[Route] = []
        self.route = Route.uniform(0, len(self.layers))

    @property
    def num_levels(self) -> int:
        return len(self.sparsities)

    def keep_levels(self, i: int) -> torch.Tensor:
        return getattr(self, f"keep_levels_{i}")

    def norm_stats(self, j: int, level: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(running mean, running var) of BatchNorm layer ``j`` at ``level``, each (C,)."""
        return getattr(self, f"norm_mean_{level}_{j}"), getattr(self, f"norm_var_{level}_{j}")

    def add_route_stats(self, route: Route) -> int:
        """Give ``route`` its own statistics (a copy of those it reads now); returns their index ``k``."""
        if route in self.route_stats:
            return self.route_stats.index(route)
        k = len(self.route_stats)
        for j, (_, source) in enumerate(self.norms):
            mean, var = self.norm_stats(j, route.levels[source])
            self.register_buffer(f"route_mean_{k}_{j}", mean.clone())
            self.register_buffer(f"route_var_{k}_{j}", var.clone())
        self.route_stats.append(route)
        return k

    def active_norm_stats(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(running mean, running var) of every BatchNorm layer under the current route: the route's own
        where it was calibrated, else each layer's level's."""
        if self.route in self.route_stats:
            k = self.route_stats.index(self.route)
            return [(getattr(self, f"route_mean_{k}_{j}"), getattr(self, f"route_var_{k}_{j}"))
                    for j in range(len(self.norms))]
        return [self.norm_stats(j, self.route.levels[source]) for j, (_, source) in enumerate(self.norms)]

    def mask(self, i: int, level: int) -> torch.Tensor:
        """Bool mask of masked layer ``i`` at ``level``."""
        return self.keep_levels(i) > level

    def set_route(self, route: Route | int) -> NestedSparseNet:
        route = Route.uniform(route, len(self.layers)) if isinstance(route, int) else route
        if len(route.levels) != len(self.layers) or not all(0 <= v < self.num_levels for v in route.levels):
            raise ConfigError(f"a route needs one level in 0..{self.num_levels - 1} per masked layer "
                              f"({len(self.layers)}), got {route.levels}")
        self.route = route
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tensors = {f"{name}.weight": module.weight * self.mask(i, level)
                   for i, (name, module, level) in enumerate(zip(self.layers, self.masked_modules, self.route.levels))}
        # In training mode BatchNorm updates these tensors in place: only this route's statistics move.
        for (name, _), (mean, var) in zip(self.norms, self.active_norm_stats()):
            tensors[f"{name}.running_mean"], tensors[f"{name}.running_var"] = mean, var
        return functional_call(self.model, tensors, (x,), strict=False)

    def forward_at(self, x: torch.Tensor, route: Route | int) -> torch.Tensor:
        previous = self.route
        try:
            return self.set_route(route)(x)
        finally:
            self.route = previous

    def nonzero(self, route: Route | None = None) -> list[int]:
        """Kept weights of every masked layer under ``route`` (default: the current one)."""
        route = route or self.route
        return [int(self.mask(i, level).sum()) for i, level in enumerate(route.levels)]


@torch.no_grad()
def calibrate_route(net: NestedSparseNet, route: Route, batches: Iterable[torch.Tensor]) -> None:
    """Set ``route``'s own BatchNorm statistics to the plain average over ``batches`` (each (N, ...)) of the
    statistics of its training-mode forward pass; weights are untouched."""
    batches = iter(batches)
    first = next(batches, None)
    if first is None:  # before registering anything: an uncalibrated copy must not pass for calibrated
        raise ConfigError(f"no batches to calibrate route {route.label()} with")
    net.add_route_stats(route)
    norms = net.norm_modules
    saved = [(m.momentum, m.num_batches_tracked.clone()) for m in norms]
    mode, previous = net.training, net.route
    try:
        for m in norms:
            m.momentum = None  # cumulative average: batch n gets weight 1/n, so the first replaces the copy
            m.num_batches_tracked.zero_()
        net.train().set_route(route)
        for x in itertools.chain([first], batches):
            net(x)
    finally:
        for m, (momentum, tracked) in zip(norms, saved):
            m.momentum = momentum
            m.num_batches_tracked.copy_(tracked)
        net.train(mode)
        net.route = previous


@dataclass(frozen=True)
class StorageCost:
    """Bytes to store every level at once: the densest level's values, their positions (index list or
    bitmap, whichever is smaller, per layer), each value's level count, the unmasked parameters, and the
    BatchNorm running statistics of every level but one (a dense model stores one set too) and of every
    calibrated route."""

    values: int
    positions: int
    level_tags: int
    unmasked: int
    extra_norm_stats: int

    @property
    def total(self) -> int:
        return self.values + self.positions + self.level_tags + self.unmasked + self.extra_norm_stats


def storage_cost(net: NestedSparseNet, *, bytes_per_value: int = 4) -> StorageCost:
    masked_params = {id(m.weight) for m in net.masked_modules}
    values = positions = tag_bits = 0
    tag_width = max(1, math.ceil(math.log2(net.num_levels + 1)))
    for i in range(len(net.layers)):
        levels = net.keep_levels(i)
        nnz = int((levels > 0).sum())
        values += nnz * bytes_per_value
        index_bytes = max(1, math.ceil(math.log2(max(2, levels.numel())) / 8))
        positions += min(nnz * index_bytes, math.ceil(levels.numel() / 8))
        tag_bits += nnz * tag_width
    unmasked = sum(p.numel() for p in net.model.parameters() if id(p) not in masked_params) * bytes_per_value
    one_set = sum(sum(t.numel() for t in net.norm_stats(j, 0)) for j in range(len(net.norms)))
    extra = (net.num_levels - 1 + len(net.route_stats)) * one_set * bytes_per_value
    return StorageCost(values, positions, math.ceil(tag_bits / 8), unmasked, extra)


@dataclass(frozen=True)
class RouteCost:
    """Per input under one route: non-zero parameters (masked weights kept + every unmasked parameter) and
    MACs (each masked layer's dense MACs times its density)."""

    params: int
    macs: float


def route_cost(net: NestedSparseNet, input_shape: Sequence[int], route: Route) -> RouteCost:
    from sigmab.eval import profile_model

    profile = profile_model(net.model, input_shape)
    layer_macs = {m.name: m.macs for m in profile.modules}
    kept = net.nonzero(route)
    dense_masked = sum(m.weight.numel() for m in net.masked_modules)
    density = {name: k / m.weight.numel() for name, m, k in zip(net.layers, net.masked_modules, kept)}
    macs = sum(macs * density.get(name, 1.0) for name, macs in layer_macs.items())
    return RouteCost(profile.params - dense_masked + sum(kept), macs)


def default_routes(net: NestedSparseNet) -> list[Route]:
    """Every uniform level, then, between the densest and the sparsest level, the two reroutings that switch
    halfway through the masked layers (dense early -> sparse late, and the reverse)."""
    n, last = len(net.layers), net.num_levels - 1
    routes = [Route.uniform(level, n) for level in range(net.num_levels)]
    if last > 0 and n > 1:
        routes += [Route.rerouted(0, last, n // 2, n), Route.rerouted(last, 0, n // 2, n)]
    return routes
