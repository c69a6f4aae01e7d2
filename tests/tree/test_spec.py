import json
from pathlib import Path

import pytest
import torch

from sigmab.errors import CheckpointError
from sigmab.tree import load_tree, save_tree


def test_reload_reproduces_outputs_exactly(sliced, tmp_path: Path) -> None:
    save_tree(sliced.tree, sliced.spec, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"tree.json", "tree.safetensors", "sigmab.json"}
    tree, spec = load_tree(tmp_path)
    x = torch.randn(20, 3, 32, 32)
    with torch.no_grad():
        a, la = sliced.tree.forward_hard(x)
        b, lb = tree.forward_hard(x)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert torch.equal(la, lb) and spec.split_points == sliced.spec.split_points
    assert json.loads((tmp_path / "tree.json").read_text())["format"] == "sigmab.tree/2"


def test_bad_tree_folders_are_clear_errors(sliced, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a sigmab tree folder"):
        load_tree(tmp_path)
    save_tree(sliced.tree, sliced.spec, tmp_path)
    raw = json.loads((tmp_path / "tree.json").read_text())
    raw["nodes"]["n0"]["blocks"][0]["inner"]["conv1"] = [0, 1]  # no longer matches the weights
    (tmp_path / "tree.json").write_text(json.dumps(raw))
    with pytest.raises(CheckpointError, match="does not fit"):
        load_tree(tmp_path)
    (tmp_path / "tree.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(CheckpointError, match="not a sigmab tree spec"):
        load_tree(tmp_path)
