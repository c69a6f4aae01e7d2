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


def _edit(path: Path, edit) -> None:
    raw = json.loads(path.read_text())
    edit(raw)
    path.write_text(json.dumps(raw))


@pytest.mark.parametrize(("edit", "message"), [
    (lambda r: r["nodes"]["n0"]["blocks"][0]["out"].append(10**6), "out of range"),
    (lambda r: r["nodes"]["n0"]["blocks"][0]["inner"]["conv1"].insert(0, -1), "non-negative, unique and sorted"),
    (lambda r: r["nodes"]["n0"]["blocks"][0]["out"].insert(1, r["nodes"]["n0"]["blocks"][0]["out"][0]),
     "non-negative, unique and sorted"),
    (lambda r: r["nodes"]["n0"]["blocks"][0]["out"].reverse(), "non-negative, unique and sorted"),
    (lambda r: r["nodes"]["n0"]["blocks"][0]["out"].__setitem__(0, 0.5), "list of integers"),
    (lambda r: r.__setitem__("depth", 0), "depth must be 1..3"),
    (lambda r: r.__setitem__("depth", -1), "depth must be 1..3"),
    (lambda r: r.__setitem__("depth", 10**6), "depth must be 1..3"),
    (lambda r: r["nodes"].pop("n11"), "a depth-2 tree has nodes"),
    (lambda r: r["nodes"]["n00"].__setitem__("head_in", None), "head_in must be given for leaves"),
    (lambda r: r["dense_meta"].__setitem__("num_classes", 10**12), "num_classes and in_channels must be in"),
    (lambda r: r.__setitem__("nodes", []), "malformed tree spec"),  # once an AttributeError trace
    (lambda r: r.__setitem__("routers", None), "malformed tree spec"),
    (lambda r: r.__setitem__("dense_meta", []), "malformed"),
])
def test_edited_tree_specs_are_one_clear_error(sliced, tmp_path: Path, edit, message: str) -> None:
    save_tree(sliced.tree, sliced.spec, tmp_path)
    _edit(tmp_path / "tree.json", edit)
    with pytest.raises(CheckpointError, match=message):
        load_tree(tmp_path)


def test_a_spec_that_is_not_a_mapping_and_corrupt_weights_are_clear_errors(sliced, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    save_tree(sliced.tree, sliced.spec, tmp_path)
    spec_text = (tmp_path / "tree.json").read_text()
    (tmp_path / "tree.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="not a sigmab tree"):
        load_tree(tmp_path)
    (tmp_path / "tree.json").write_text(spec_text)
    weights = load_file(str(tmp_path / "tree.safetensors"))
    key = next(k for k, v in weights.items() if v.is_floating_point())
    for bad, message in ((weights[key].to(torch.int32), "wrong dtype"), (weights[key].double(), "wrong dtype"),
                         (torch.full_like(weights[key], float("nan")), "NaN or infinite")):
        save_file({**weights, key: bad}, str(tmp_path / "tree.safetensors"))
        with pytest.raises(CheckpointError, match=message):
            load_tree(tmp_path)
