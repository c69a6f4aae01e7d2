"""One edge study: several models (dense, pruned, a tree) on several devices and input orders,
plus an on-chip memory sweep; as a table, JSON rows and plots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sigmab.edge.device import DeviceProfile
from sigmab.edge.simulate import EdgeResult, simulate
from sigmab.edge.streams import order_indices
from sigmab.edge.workload import Workload
from sigmab.errors import ConfigError
from sigmab.tree.routes import Routes

PLAIN_ORDER = "any"  # a plain model runs the same weights for every input: the order cannot matter


def streams_for(workload: Workload, routes: Routes | None, orders: Sequence[str], *, seed: int = 0
                ) -> dict[str, list[str]]:
    """The leaf stream of each input order; a plain model's single stream is named ``any``."""
    if set(workload.paths) == {"model"}:
        n = len(routes.labels) if routes is not None else 1
        return {PLAIN_ORDER: ["model"] * n}
    if routes is None:
        raise ConfigError(f"{workload.name} is a tree: its input stream needs routes (`sigmab eval --save-routes`)")
    names = np.array(routes.leaf_names())
    return {order: names[order_indices(routes.labels, order, seed=seed)].tolist() for order in orders}


def run_study(workloads: Sequence[Workload], routes: Routes | None, devices: Sequence[DeviceProfile],
              orders: Sequence[str], *, seed: int = 0, policies: Sequence[str] = ("hybrid",)) -> list[EdgeResult]:
    """Every workload x device x order x placement policy (a plain model has nothing to place: first policy)."""
    results = []
    for workload in workloads:
        streams = streams_for(workload, routes, orders, seed=seed)
        plain = set(workload.paths) == {"model"}
        for device in devices:
            results += [simulate(workload, stream, device, order=order, policy=policy)
                        for policy in (policies[:1] if plain else policies) for order, stream in streams.items()]
    return results


def sram_sweep(workloads: Sequence[Workload], routes: Routes | None, device: DeviceProfile, sizes: Sequence[int],
               orders: Sequence[str], *, seed: int = 0, policies: Sequence[str] = ("hybrid",)) -> list[EdgeResult]:
    """``device`` with each weight-memory size in ``sizes`` (bytes)."""
    variants = [device.with_changes(name=f"{device.name}@{size}", weight_sram_bytes=int(size)) for size in sizes]
    return run_study(workloads, routes, variants, orders, seed=seed, policies=policies)


def result_label(r: EdgeResult, default_policy: str = "hybrid") -> str:
    """``model``, or ``model (order[, policy])`` for a tree."""
    if r.order == PLAIN_ORDER:
        return r.workload
    return f"{r.workload} ({r.order})" if r.policy == default_policy else f"{r.workload} ({r.order}, {r.policy})"


def format_table(results: Sequence[EdgeResult]) -> str:
    lines = [f"{'device':<22}{'model':<28}{'order':<10}{'policy':<8}{'stored KiB':>11}{'on-chip KiB':>12}"
             f"{'off-chip KiB/inf':>17}{'latency ms':>11}{'compute ms':>11}{'hit rate':>9}"]
    for r in results:
        hit = "-" if r.cache_hit_rate is None else f"{100 * r.cache_hit_rate:.0f}%"
        lines.append(f"{r.device:<22}{r.workload:<28}{r.order:<10}{r.policy:<8}{r.stored_bytes / 1024:>11,.0f}"
                     f"{r.static_onchip_bytes / 1024:>12,.0f}{r.offchip_bytes / 1024:>17,.1f}"
                     f"{1e3 * r.latency_s:>11.3f}{1e3 * r.compute_s:>11.3f}{hit:>9}")
    return "\n".join(lines)


def results_json(results: Sequence[EdgeResult], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"format": "sigmab.edge/1", **(extra or {}), "results": [r.to_json() for r in results]}
