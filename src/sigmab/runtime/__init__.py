"""Leaf-on-demand runtime: a per-unit package format and a runner that loads only the routed path."""

from sigmab.runtime.cache import ByteLRU
from sigmab.runtime.package import read_package_manifest, state_bytes, tree_unit_modules, unit_path, write_package
from sigmab.runtime.runner import InferenceStats, LeafOnDemandRunner

__all__ = [
    "ByteLRU",
    "InferenceStats",
    "LeafOnDemandRunner",
    "read_package_manifest",
    "state_bytes",
    "tree_unit_modules",
    "unit_path",
    "write_package",
]
