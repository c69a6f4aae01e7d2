"""A folder's manifest may only name files inside the folder; recorded source paths resolve against the folder."""

import json
import shutil
from pathlib import Path

import pytest

from sigmab.errors import CheckpointError
from sigmab.export.onnx_runner import OnnxGraphs
from sigmab.models.checkpoint import file_in_folder, recorded_source
from sigmab.runtime import LeafOnDemandRunner, write_package
from tests.helpers import tiny_tree


def test_file_in_folder_refuses_parent_and_absolute_names(tmp_path: Path) -> None:
    (tmp_path / "a.safetensors").write_bytes(b"")
    assert file_in_folder(tmp_path, "a.safetensors", manifest="m.json") == (tmp_path / "a.safetensors").resolve()
    for name in ("../outside/x.safetensors", "/etc/passwd", "sub/../../x"):
        with pytest.raises(CheckpointError, match="outside"):
            file_in_folder(tmp_path, name, manifest="m.json")


def test_a_package_whose_unit_file_escapes_its_folder_is_refused(tmp_path: Path) -> None:
    conversion = tiny_tree()
    write_package(conversion.tree, conversion.spec, tmp_path / "pkg")
    outside = tmp_path / "outside"
    outside.mkdir()
    manifest = json.loads((tmp_path / "pkg" / "package.json").read_text())
    unit = next(iter(manifest["units"].values()))
    shutil.copy2(tmp_path / "pkg" / unit["file"], outside / "x.safetensors")
    for name in ("../outside/x.safetensors", str(outside / "x.safetensors")):
        unit["file"] = name
        (tmp_path / "pkg" / "package.json").write_text(json.dumps(manifest))
        with pytest.raises(CheckpointError, match="outside"):
            LeafOnDemandRunner(tmp_path / "pkg", cache_bytes=10**9)


def test_an_export_manifest_cannot_name_a_graph_outside_its_folder(tmp_path: Path) -> None:
    (tmp_path / "export.json").write_text(json.dumps({
        "format": "sigmab.export/1", "input": "x", "output": "y", "kind": "model",
        "graphs": {"model": {"files": {"onnx": "../elsewhere.onnx"}}}}))
    with pytest.raises(CheckpointError, match="outside"):
        OnnxGraphs(tmp_path).run("model", None)


def test_relative_recorded_sources_resolve_against_the_folder_not_the_working_directory(tmp_path: Path,
                                                                                      monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "runs" / "tree"
    source = recorded_source(folder, {"checkpoint": "../dense/model.safetensors", "data_root": None, "arch": "x"})
    assert source["checkpoint"] == str((tmp_path / "runs" / "dense" / "model.safetensors").resolve())
    assert recorded_source(folder, {"checkpoint": "/abs/model.th"})["checkpoint"] == "/abs/model.th"
    assert recorded_source(folder, None) == {}


def test_an_export_manifest_naming_an_outside_graph_is_refused_before_its_bytes_are_read(tmp_path: Path) -> None:
    from sigmab.export.evaluate import graph_bytes

    (tmp_path / "elsewhere.onnx").write_bytes(b"not read")
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "export.json").write_text(json.dumps({
        "format": "sigmab.export/1", "input": "x", "output": "y", "kind": "model",
        "graphs": {"model": {"files": {"onnx": "../elsewhere.onnx"}, "weight_bytes": 8}}}))
    with pytest.raises(CheckpointError, match="names '../elsewhere.onnx', which lies outside"):
        graph_bytes(OnnxGraphs(folder))


@pytest.mark.parametrize("name", ["tree.json", "tree.safetensors"])
def test_a_tree_folder_file_linked_out_of_the_folder_is_refused(tmp_path: Path, name: str) -> None:
    from sigmab.folders import open_folder
    from sigmab.tree.spec import save_tree

    conversion = tiny_tree()
    folder, outside = tmp_path / "tree", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    save_tree(conversion.tree, conversion.spec, folder)
    open_folder(folder)  # the folder as written opens
    shutil.move(folder / name, outside / name)
    (folder / name).symlink_to(outside / name)
    with pytest.raises(CheckpointError, match=rf"{name} leads outside .*tree"):
        open_folder(folder)


def test_a_folder_reached_through_a_link_still_opens(tmp_path: Path) -> None:
    from sigmab.folders import open_folder
    from sigmab.tree.spec import save_tree

    conversion = tiny_tree()
    save_tree(conversion.tree, conversion.spec, tmp_path / "tree")
    (tmp_path / "alias").symlink_to(tmp_path / "tree")  # the folder itself may be a link; its files stay inside it
    assert open_folder(tmp_path / "alias").kind == "tree"
