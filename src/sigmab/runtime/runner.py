"""Leaf-on-demand inference: only the units on an input's path are loaded, through a byte-bounded LRU cache.

Pinned units (by default the backbone and the routers, which are small and used by most inputs) are
loaded once at start-up. Every other unit is read from its file on a cache miss; a unit larger
than the whole cache is read, used and dropped. Each inference reports the bytes it read.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from sigmab.errors import ConfigError
from sigmab.models import build_from_meta
from sigmab.routing import walk_hard
from sigmab.runtime.cache import ByteLRU
from sigmab.runtime.package import read_package_manifest, release_weights, tree_unit_modules
from sigmab.tree.spec import TreeSpec, build_tree

PIN_CHOICES = ("backbone", "routers")


@dataclass
class InferenceStats:
    """One input: its leaf, the bytes read from the package and the units loaded (misses) or found cached."""

    leaf: str
    bytes_read: int = 0
    loaded: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)


class LeafOnDemandRunner:
    """Runs a package written by :func:`sigmab.runtime.write_package`, one input at a time.

    ``cache_bytes`` bounds the bytes of unpinned units kept in memory; ``pin`` names the unit kinds
    loaded at start-up and never evicted (``backbone``, ``routers``; empty for a cold start).
    """

    def __init__(self, folder: str | os.PathLike[str], *, cache_bytes: int, pin: Iterable[str] = PIN_CHOICES) -> None:
        self.folder = Path(folder)
        self.manifest = read_package_manifest(self.folder)
        pin = tuple(pin)
        unknown = sorted(set(pin) - set(PIN_CHOICES))
        if unknown:
            raise ConfigError(f"cannot pin {', '.join(unknown)}; choose from {', '.join(PIN_CHOICES)}")
        spec = TreeSpec.from_json(self.manifest["tree"], source=str(self.folder))
        with torch.no_grad():
            self.tree = build_tree(build_from_meta(spec.dense_meta), spec)
        self.units: dict[str, nn.Module] = tree_unit_modules(self.tree)
        for module in self.units.values():
            release_weights(module)
        self.cache: ByteLRU[nn.Module] = ByteLRU(cache_bytes, on_evict=self._evict)
        kinds = {"backbone": "backbone", "routers": "router"}
        self.pinned = {u for u, info in self.manifest["units"].items() if info["kind"] in {kinds[p] for p in pin}}
        self.resident_bytes = sum(self._load(u) for u in sorted(self.pinned))

    def _evict(self, name: Hashable, module: nn.Module) -> None:
        release_weights(module)

    def _load(self, name: str) -> int:
        """Read unit ``name``'s weights into its module; returns the bytes read."""
        with safe_open(self.manifest["units"][name]["path"], framework="pt") as f:
            # Copied out of the memory map: tensors there sit at unaligned offsets, which sends
            # convolutions down other kernels and changes the rounding.
            tensors = {k: f.get_tensor(k).clone() for k in f.keys()}
        self.units[name].load_state_dict(tensors, strict=True, assign=True)
        return sum(t.numel() * t.element_size() for t in tensors.values())

    def _unit(self, name: str, stats: InferenceStats) -> tuple[nn.Module, bool]:
        """The unit's module, loading it on a miss; the flag says whether to drop it after use."""
        if name in self.pinned or self.cache.lookup(name) is not None:
            stats.cached.append(name)
            return self.units[name], False
        stats.bytes_read += self._load(name)
        stats.loaded.append(name)
        stored = self.cache.insert(name, self.units[name], self.manifest["units"][name]["bytes"])
        return self.units[name], not stored

    def _run(self, name: str, h: torch.Tensor, stats: InferenceStats) -> torch.Tensor:
        module, drop = self._unit(name, stats)
        out = module(h)
        if drop:
            release_weights(module)
        return out

    @torch.inference_mode()
    def predict_one(self, x: torch.Tensor) -> tuple[torch.Tensor, InferenceStats]:
        """One input (1, C, H, W) -> logits (1, K) and its stats."""
        if x.dim() < 2 or x.shape[0] != 1:
            raise ConfigError(f"predict_one takes a batch of one input, got shape {tuple(x.shape)}")
        stats = InferenceStats(leaf="")
        h = self._run("backbone", x, stats)
        out, leaf = walk_hard(h, self.tree.depth, lambda key, h: self._run(key, h, stats))
        stats.leaf = self.tree.leaves[int(leaf)]
        return out, stats

    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, list[InferenceStats]]:
        """Inputs (N, C, H, W) one after another, as a stream: logits (N, K) and per-input stats."""
        outputs, stats = zip(*(self.predict_one(x[i : i + 1]) for i in range(x.shape[0])))
        return torch.cat(outputs), list(stats)
