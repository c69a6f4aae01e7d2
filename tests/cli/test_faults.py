"""Faults a hostile or careless user found (issue 32): each gets one clear `sigmab: error:` line, a non-zero exit,
and loses nothing - checked before the work, not after it."""

import json
import sys
from pathlib import Path

import pytest
import yaml

from sigmab.cli import main
from sigmab.utils.lock import folder_lock
from tests.helpers import digits_tree_folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("faults")
    checkpoint, tree = digits_tree_folder(root, epochs=1)
    return {"checkpoint": checkpoint, "tree": tree, "root": root}


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sigmab: error: "), lines
    return lines[0]


def test_a_folder_being_written_refuses_a_second_writer(folders, tmp_path: Path, capsys) -> None:
    tree = folders["tree"]
    with folder_lock(tree):  # another `sigmab finetune TREE` is running
        assert main(["finetune", str(tree), "--soft-epochs", "1", "--hard-epochs", "0", "--no-progress"]) == 2
    assert "another sigmab command is writing the run folder" in _error(capsys)
    assert not (tree / "finetune").exists()
    out = tmp_path / "tree2"
    with folder_lock(out):  # another `sigmab convert --out OUT` is building it
        assert main(["convert", "--checkpoint", str(folders["checkpoint"]), "--dataset", "digits", "--out", str(out),
                     "--no-progress"]) == 2
    assert "another sigmab command is writing" in _error(capsys)
    assert not out.exists() and not (tmp_path / ".tree2.partial").exists()


def _prune(folders, out: Path, *extra: str) -> int:
    return main(["prune", "--checkpoint", str(folders["checkpoint"]), "--dataset", "digits", "--out", str(out),
                 "--keep-ratio", "0.5", "--epochs", "1", "--batch-size", "64", "--no-progress", *extra])


def test_a_bad_teacher_fails_before_the_prune_writes_anything(folders, tmp_path: Path, capsys) -> None:
    out = tmp_path / "pruned"
    assert _prune(folders, out, "--distill-weight", "1", "--teacher", str(tmp_path / "absent.pt")) == 2
    assert "checkpoint not found" in _error(capsys)
    assert not out.exists()


def test_a_prune_that_diverged_in_its_first_epoch_resumes_afresh_with_new_settings(folders, tmp_path: Path,
                                                                                   capsys) -> None:
    out = tmp_path / "pruned"
    assert _prune(folders, out, "--lr", "1e8", "--distill-weight", "1") == 2
    message = _error(capsys)
    assert "training diverged" in message and f"sigmab prune --out {out} --resume" in message
    assert _prune(folders, out) == 2  # the prune is there: a second prune into it is refused...
    assert "already holds a pruned model" in _error(capsys)
    assert main(["prune", "--out", str(out), "--resume", "--lr", "0.01", "--no-progress"]) == 0  # ...resume is not
    config = yaml.safe_load((out / "finetune" / "config.yaml").read_text())
    assert config["lr"] == 0.01 and config["distill_weight"] == 1.0  # new flag; the rest as the prune set it
    history = yaml.safe_load((out / "finetune" / "config-history.yaml").read_text())
    assert history[-1]["config"]["lr"] == 1e8
    assert (out / "finetuned.safetensors").is_file()


def test_train_and_dispatch_refuse_an_out_that_is_in_the_way(folders, tmp_path: Path, capsys) -> None:
    flags = ["--arch", "resnet8", "--dataset", "digits", "--epochs", "1", "--no-progress"]
    (tmp_path / "afile").write_text("x")
    assert main(["train", "--out", str(tmp_path / "afile"), *flags]) == 2
    assert "it is a file, not a folder" in _error(capsys)
    assert main(["train", "--out", str(tmp_path / "afile" / "run"), *flags]) == 2
    assert "afile is not a folder" in _error(capsys)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine")
    assert main(["train", "--out", str(notes), *flags]) == 2
    assert "holds files that are not a training run's (todo.txt)" in _error(capsys)
    model = str(folders["checkpoint"])
    assert main(["dispatch", model, model, "--out", str(notes), "--dataset", "digits", "--no-progress"]) == 2
    assert "holds files that are not a dispatch run's" in _error(capsys)
    assert [p.name for p in notes.iterdir()] == ["todo.txt"]


def test_result_files_are_checked_before_the_work_and_never_overwritten_silently(folders, tmp_path: Path,
                                                                                 capsys) -> None:
    tree, routes = str(folders["tree"]), tmp_path / "routes.npz"
    routes.write_bytes(b"an older result")
    assert main(["eval", tree, "--save-routes", str(routes), "--no-progress"]) == 2
    assert "routes.npz already exists; pass --force to overwrite it" in _error(capsys)
    assert routes.read_bytes() == b"an older result"
    assert main(["eval", tree, "--save-routes", str(tmp_path), "--no-progress"]) == 2
    assert "is a folder; give a file name" in _error(capsys)
    assert main(["eval", tree, "--save-routes", str(routes), "--force", "--json", "--no-progress"]) == 0
    capsys.readouterr()
    sim = ["edge-sim", "--tree", tree, "--routes", str(routes), "--device", "ethos-u55-mcu"]
    (tmp_path / "edge.json").write_text("{}")
    assert main([*sim, "--out", str(tmp_path / "edge.json")]) == 2
    assert "edge.json already exists; pass --force" in _error(capsys)
    assert main([*sim, "--plot", str(tmp_path)]) == 2
    assert "the plot" in _error(capsys)
    assert main([*sim, "--out", str(tmp_path / "edge.json"), "--force"]) == 0
    assert "results" in json.loads((tmp_path / "edge.json").read_text())


def test_edge_sim_of_an_export_without_onnx_installed_names_the_extra(folders, tmp_path: Path, capsys,
                                                                      monkeypatch) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "model.onnx").write_bytes(b"")
    (export / "export.json").write_text(json.dumps({
        "format": "sigmab.export/1", "input": "x", "output": "y", "kind": "model", "precision": "int8",
        "source": {"checkpoint": str(folders["checkpoint"])}, "graphs": {"model": {"files": {"onnx": "model.onnx"}}}}))
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` raises ImportError
    assert main(["edge-sim", "--export", str(export), "--device", "ethos-u55-mcu"]) == 2
    assert "needs the [export] extra (onnx is not installed): pip install 'sigmab[export]'" in _error(capsys)
