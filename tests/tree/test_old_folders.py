"""Folders written by sigmab 0.1 before the routing module (tree.json format 1) still load and give the
outputs they gave then (recorded in the fixture by the old code)."""

from pathlib import Path

import numpy as np
import torch

from sigmab.tree import load_tree

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "folders_v0_1"


def _close(actual: torch.Tensor, expected: np.ndarray) -> None:
    expected_t = torch.from_numpy(expected)
    scale = float(expected_t.abs().max())
    torch.testing.assert_close(actual, expected_t, atol=1e-5 * max(1.0, scale), rtol=0)


def test_a_format_one_tree_folder_loads_and_routes_as_it_did() -> None:
    expected = np.load(FIXTURES / "expected.npz")
    tree, spec = load_tree(FIXTURES / "tree")
    assert {r.kind for r in spec.routers.values()} == {"cosine"}
    with torch.no_grad():
        logits, leaves = tree.forward_hard(torch.from_numpy(expected["x"]))
    assert leaves.tolist() == expected["tree_leaves"].tolist()
    _close(logits, expected["tree_logits"])
