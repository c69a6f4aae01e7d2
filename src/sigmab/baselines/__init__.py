"""The other dynamic-inference systems users compare SigmaB with: nested sparse networks (and, next, an input
dispatcher over several models)."""

from sigmab.baselines.nested import (
    NestedSparseNet,
    Route,
    StorageCost,
    magnitude_keep_levels,
    masked_layers,
    storage_cost,
)

__all__ = ["NestedSparseNet", "Route", "StorageCost", "magnitude_keep_levels", "masked_layers", "storage_cost"]
