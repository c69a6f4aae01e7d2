import numpy as np
import pytest

from sigmab.edge import order_indices
from sigmab.errors import ConfigError


def test_orders_are_permutations_and_runs_share_a_class() -> None:
    labels = np.repeat(np.arange(3), [7, 5, 4])
    for order in ("given", "shuffled", "runs:2", "runs:4"):
        idx = order_indices(labels, order, seed=1)
        assert sorted(idx.tolist()) == list(range(len(labels)))
    assert order_indices(labels, "given").tolist() == list(range(16))
    runs = order_indices(labels, "runs:4", seed=1)
    changes = int((np.diff(labels[runs]) != 0).sum())
    assert changes <= 2 + 3 + 2 - 1  # at most one class change per run boundary (ceil(7/4)+ceil(5/4)+1 runs)
    # a full class run: consecutive inputs of one class come in blocks of at most 4
    blocks = np.split(labels[runs], np.flatnonzero(np.diff(labels[runs])) + 1)
    assert all(len(b) <= 8 for b in blocks)  # two runs of one class may meet, never more than 2 x 4


def test_unknown_order_is_refused() -> None:
    for bad in ("sorted", "runs:0", "runs:x"):
        with pytest.raises(ConfigError, match="unknown input order"):
            order_indices(np.zeros(3), bad)
