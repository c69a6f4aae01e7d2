"""The other dynamic-inference systems users compare SigmaB with: nested sparse networks and a PERTINENCE-style
input dispatcher over several models (trained under a genetic search)."""

from sigmab.baselines.nested import (
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
