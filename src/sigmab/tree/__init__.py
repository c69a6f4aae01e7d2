"""SigmaB-Nets: the routed tree, its spec and conversion from a dense model."""

from sigmab.routing import CosineRouter as Router
from sigmab.routing import leaf_names
from sigmab.tree.convert import Conversion, ConvertConfig, convert
from sigmab.tree.metrics import PathCost, cost_summary, path_costs
from sigmab.tree.model import PathModel, SigmaBTree, SoftOutput
from sigmab.tree.spec import NodeSpec, TreeSpec, build_tree, load_tree, read_spec, save_tree, save_tree_weights

__all__ = [
    "Conversion",
    "ConvertConfig",
    "NodeSpec",
    "PathCost",
    "PathModel",
    "Router",
    "SigmaBTree",
    "SoftOutput",
    "TreeSpec",
    "build_tree",
    "convert",
    "cost_summary",
    "leaf_names",
    "load_tree",
    "path_costs",
    "read_spec",
    "save_tree",
    "save_tree_weights",
]
