"""The leaf each evaluated input was routed to, saved beside its label: the input stream of `sigmab edge-sim`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sigmab.errors import DataError
from sigmab.utils.io import atomic_path


@dataclass(frozen=True)
class Routes:
    """``leaf_ids`` (N,) index into ``leaves``; ``labels`` (N,) true classes; in evaluation order."""

    leaves: list[str]
    leaf_ids: np.ndarray
    labels: np.ndarray

    def leaf_names(self) -> list[str]:
        return [self.leaves[i] for i in self.leaf_ids]


def save_routes(routes: Routes, path: str | os.PathLike[str]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, leaves=np.array(routes.leaves), leaf_ids=routes.leaf_ids.astype(np.int64),
                 labels=routes.labels.astype(np.int64))


def load_routes(path: str | os.PathLike[str]) -> Routes:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            routes = Routes([str(s) for s in z["leaves"]], z["leaf_ids"], z["labels"])
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path}: not a routes file from `sigmab eval --save-routes` ({exc})") from None
    if routes.leaf_ids.shape != routes.labels.shape or routes.leaf_ids.ndim != 1:
        raise DataError(f"{path}: leaf_ids and labels must be two vectors of one length")
    if len(routes.leaf_ids) and not 0 <= routes.leaf_ids.min() <= routes.leaf_ids.max() < len(routes.leaves):
        raise DataError(f"{path}: leaf ids out of range for {len(routes.leaves)} leaves")
    return routes
