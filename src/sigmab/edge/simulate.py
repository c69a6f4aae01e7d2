"""The weight-traffic model: off-chip weight bytes and a roofline latency per inference on an edge part.

Placement, decided once before the stream:
1. *Static*: layers of the units every input uses (a plain model's layers; a tree's backbone and root
   router) are placed on chip in forward order while they fit, as edge compilers do with parameter
   caching; a layer that does not fit is streamed on every inference.
2. With the ``hybrid`` policy (default), whole routers/nodes are then placed by how many inputs of
   the stream use them, most used first, while they fit (the shares a deployment would estimate
   from a calibration stream; here the stream's own).
3. *Node cache*: the rest of the weight memory is an LRU cache of the units not placed, filled on
   misses. A unit larger than the cache is streamed each time. The ``lru`` policy skips step 2.

Per inference and per layer, latency = max(MACs / MAC rate, streamed bytes / bandwidth); the
inference's latency is the sum over its layers (no overlap between layers: a lower bound per layer,
an upper bound on the overlap). Numbers are for the steady state: the stream runs once to warm the
node cache, then again to be measured; one-time loading of the static part is not counted either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from sigmab.edge.device import DeviceProfile
from sigmab.edge.workload import Layer, Workload
from sigmab.errors import ConfigError
from sigmab.runtime.cache import ByteLRU


@dataclass(frozen=True)
class EdgeResult:
    """Means over the stream, per inference; ``cache_hit_rate`` over node-cache lookups (None if none)."""

    workload: str
    device: str
    precision: str
    order: str
    policy: str
    n_inferences: int
    stored_bytes: int
    static_onchip_bytes: int
    node_cache_bytes: int
    fits_on_chip: bool
    offchip_bytes: float
    latency_s: float
    compute_s: float
    cache_hit_rate: float | None
    mean_active_params: float

    def to_json(self) -> dict:
        return asdict(self)


def _layer_time(layer: Layer, streamed_bytes: int, device: DeviceProfile) -> float:
    return max(layer.macs / device.macs_per_s, streamed_bytes / device.offchip_bytes_per_s)


POLICIES = ("hybrid", "lru")


def simulate(workload: Workload, stream: Sequence[str], device: DeviceProfile, *, order: str = "",
             policy: str = "hybrid") -> EdgeResult:
    """Run ``stream`` (the leaf of each input, in order; ``model`` for a plain model) through ``device``."""
    if policy not in POLICIES:
        raise ConfigError(f"unknown placement policy {policy!r}; choose from {', '.join(POLICIES)}")
    bpw = device.bytes_per_weight
    unknown = sorted(set(stream) - set(workload.paths))
    if unknown:
        raise ConfigError(f"stream names leaves that {workload.name} lacks: {', '.join(unknown[:5])}")
    if not stream:
        raise ConfigError("the input stream is empty")
    placed: set[tuple[str, str]] = set()
    free = device.weight_sram_bytes
    for unit in workload.units.values():
        if not unit.every_input:
            continue
        for layer in unit.layers:
            if layer.bytes(bpw) <= free:
                placed.add((unit.name, layer.name))
                free -= layer.bytes(bpw)
    counts: dict[str, int] = {}
    for leaf in stream:
        counts[leaf] = counts.get(leaf, 0) + 1
    placed_units: set[str] = set()
    if policy == "hybrid":
        uses = {name: sum(c for leaf, c in counts.items() if name in workload.paths[leaf])
                for name, unit in workload.units.items() if not unit.every_input}
        for name in sorted(uses, key=lambda u: (-uses[u], u)):
            size = workload.units[name].bytes(bpw)
            if uses[name] and size <= free:
                placed_units.add(name)
                free -= size
    static_bytes = device.weight_sram_bytes - free
    # Per unit, the (bytes, seconds) one use costs: fixed for placed/streamed every-input units;
    # for cacheable units, one cost on a hit (nothing streams) and one on a miss (every layer streams).
    fixed: dict[str, tuple[int, float]] = {}
    hit_cost: dict[str, tuple[int, float]] = {}
    miss_cost: dict[str, tuple[int, float]] = {}
    for unit in workload.units.values():
        if unit.name in placed_units:
            fixed[unit.name] = (0, sum(_layer_time(la, 0, device) for la in unit.layers))
        elif unit.every_input:
            streamed = [0 if (unit.name, layer.name) in placed else layer.bytes(bpw) for layer in unit.layers]
            fixed[unit.name] = (sum(streamed), sum(_layer_time(la, b, device) for la, b in zip(unit.layers, streamed)))
        else:
            hit_cost[unit.name] = (0, sum(_layer_time(la, 0, device) for la in unit.layers))
            miss_cost[unit.name] = (unit.bytes(bpw),
                                    sum(_layer_time(la, la.bytes(bpw), device) for la in unit.layers))
    cache: ByteLRU[None] = ByteLRU(free)
    stored = workload.stored_bytes(bpw)
    for leaf in stream:  # warm-up pass
        for name in workload.paths[leaf]:
            if name in miss_cost and not cache.touch(name):
                cache.insert(name, None, miss_cost[name][0])
    hits = lookups = 0
    total_bytes = total_time = 0.0
    for leaf in stream:
        for name in workload.paths[leaf]:
            if name in fixed:
                cost = fixed[name]
            else:
                lookups += 1
                if cache.touch(name):
                    hits += 1
                    cost = hit_cost[name]
                else:
                    cache.insert(name, None, miss_cost[name][0])
                    cost = miss_cost[name]
            total_bytes += cost[0]
            total_time += cost[1]
    active = sum(c * workload.path_params(leaf) for leaf, c in counts.items())
    total_compute = sum(c * workload.path_macs(leaf) for leaf, c in counts.items()) / device.macs_per_s
    n = len(stream)
    precision = workload.precision or device.precision  # measured bytes: the precision of the files
    return EdgeResult(workload.name, device.name, precision, order, policy, n, stored, static_bytes, free,
                      stored <= device.weight_sram_bytes, total_bytes / n, total_time / n, total_compute / n,
                      hits / lookups if lookups else None, active / n)
