"""Input orders for the edge model: the same inputs shuffled, or in runs of one class (video-like)."""

from __future__ import annotations

import re

import numpy as np

from sigmab.errors import ConfigError

ORDER_HELP = "'shuffled', 'given' (file order) or 'runs:L' (runs of L consecutive inputs of one class)"


def order_indices(labels: np.ndarray, order: str, *, seed: int = 0) -> np.ndarray:
    """A permutation of ``range(len(labels))`` for ``order``.

    ``runs:L`` cuts each class's inputs (in shuffled order) into runs of ``L`` and shuffles the runs,
    so consecutive inputs share a class the way consecutive frames of a video share a scene.
    """
    rng = np.random.default_rng(seed)
    n = len(labels)
    if order == "given":
        return np.arange(n)
    if order == "shuffled":
        return rng.permutation(n)
    match = re.fullmatch(r"runs:(\d+)", order)
    if not match or int(match.group(1)) < 1:
        raise ConfigError(f"unknown input order {order!r}: use {ORDER_HELP}")
    length = int(match.group(1))
    runs = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        runs += [members[i : i + length] for i in range(0, len(members), length)]
    return np.concatenate([runs[i] for i in rng.permutation(len(runs))])
