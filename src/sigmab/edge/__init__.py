"""Edge weight-traffic model: device profiles, workloads of dense/pruned/tree models, and the simulation."""

from sigmab.edge.device import BYTES_PER_WEIGHT, DeviceProfile, load_device, packaged_devices
from sigmab.edge.simulate import EdgeResult, simulate
from sigmab.edge.streams import ORDER_HELP, order_indices
from sigmab.edge.workload import Layer, Unit, Workload, model_workload, tree_workload, with_file_bytes

__all__ = [
    "BYTES_PER_WEIGHT",
    "ORDER_HELP",
    "DeviceProfile",
    "EdgeResult",
    "Layer",
    "Unit",
    "Workload",
    "load_device",
    "model_workload",
    "order_indices",
    "packaged_devices",
    "simulate",
    "tree_workload",
    "with_file_bytes",
]
