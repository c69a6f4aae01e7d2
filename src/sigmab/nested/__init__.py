"""Nested sparse networks, a dynamic-inference system users compare SigmaB with: magnitude-nested channel levels
over one shared weight set, chosen per input by route (``net.py``), trained jointly and saved as a run folder
(``training.py``, ``sigmab nested``)."""

from sigmab.nested.net import (
    NestedSparseNet,
    Route,
    StorageCost,
    calibrate_route,
    magnitude_keep_levels,
    masked_layers,
    storage_cost,
)

__all__ = ["NestedSparseNet", "Route", "StorageCost", "calibrate_route", "magnitude_keep_levels", "masked_layers",
           "storage_cost"]
