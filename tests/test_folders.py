"""One opener for every run folder: kinds come from the manifest, and folders written before manifests
(sigmab 0.1, committed fixtures) still open and give the outputs they gave then."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sigmab.cli import main
from sigmab.errors import CheckpointError, ConfigError
from sigmab.folders import open_folder, open_model
from sigmab.utils.manifest import FOLDER_MANIFEST, folder_kind
from tests.helpers import digits_resnet_checkpoint

OLD = Path(__file__).resolve().parent / "fixtures" / "folders_v0_1"


def _close(actual: torch.Tensor, expected: np.ndarray) -> None:
    expected_t = torch.from_numpy(expected)
    torch.testing.assert_close(actual, expected_t, atol=1e-5 * max(1.0, float(expected_t.abs().max())), rtol=0)


def test_folders_written_before_manifests_open_by_their_spec_file() -> None:
    expected = np.load(OLD / "expected.npz")
    x = torch.from_numpy(expected["x"])
    assert {k: folder_kind(OLD / k) for k in ("tree", "pruned", "nested")} == {
        "tree": "tree", "pruned": "pruned", "nested": "nested"}
    with torch.no_grad():
        tree = open_folder(OLD / "tree")
        logits, leaves = tree.model.forward_hard(x)
        assert leaves.tolist() == expected["tree_leaves"].tolist()
        _close(logits, expected["tree_logits"])
        _close(open_folder(OLD / "pruned").model(x), expected["pruned_logits"])
        nested = open_folder(OLD / "nested")
        for level, want in enumerate(expected["nested_logits"]):
            _close(nested.model.forward_at(x, level), want)
    assert tree.kind == "tree" and nested.kind == "nested" and nested.meta.arch == "resnet8"


def test_every_new_folder_has_a_manifest_and_eval_reads_each_kind(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    checkpoint = digits_resnet_checkpoint(tmp_path / "dense", epochs=1)
    common = ["--checkpoint", str(checkpoint), "--dataset", "digits", "--no-progress"]
    assert main(["convert", *common, "--out", str(tmp_path / "tree"), "--depth", "1", "--calib-size", "200"]) == 0
    assert main(["prune", *common, "--out", str(tmp_path / "pruned"), "--keep-ratio", "0.5", "--epochs", "0"]) == 0
    assert main(["nested", *common, "--out", str(tmp_path / "nested"), "--sparsities", "[0.5, 0.8]",
                 "--epochs", "0", "--calibration-batches", "0"]) == 0
    for kind in ("dense", "tree", "pruned", "nested"):
        manifest = json.loads((tmp_path / kind / FOLDER_MANIFEST).read_text())
        assert manifest["kind"] == kind and manifest["format"] == "sigmab.folder/1"
        assert open_folder(tmp_path / kind).kind == kind
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "nested"), "--json", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["route"] for r in report["routes"]] == ["L0", "L1", "L0->L1@3", "L1->L0@3"]
    assert main(["eval", str(tmp_path / "dense"), "--json", "--no-progress"]) == 0  # a `sigmab train` run folder
    assert json.loads(capsys.readouterr().out)["dataset"] == "digits"
    assert main(["export", str(tmp_path / "nested"), "--out", str(tmp_path / "nested-export"), "--no-onnx"]) == 0
    graphs = json.loads((tmp_path / "nested-export" / "export.json").read_text())["graphs"]
    assert sorted(graphs) == ["level-0", "level-1"]


def test_bad_folders_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a sigmab run folder"):
        open_folder(tmp_path)
    (tmp_path / FOLDER_MANIFEST).write_text(json.dumps({"format": "sigmab.folder/1", "kind": "spaceship"}))
    with pytest.raises(CheckpointError, match="not a sigmab folder manifest"):
        open_folder(tmp_path)
    with pytest.raises(ConfigError, match="either a run folder"):
        open_model(None, None)
