import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sigmab.cli import main
from sigmab.tree.routes import load_routes
from tests.helpers import digits_tree_folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("deploy")
    checkpoint, tree = digits_tree_folder(root, epochs=1)
    return {"checkpoint": checkpoint, "tree": tree, "root": root}


def test_eval_routes_feed_edge_sim_with_json_and_plots(folders, capsys) -> None:
    routes = folders["root"] / "routes.npz"
    assert main(["eval", str(folders["tree"]), "--save-routes", str(routes), "--json", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    saved = load_routes(routes)
    assert len(saved.labels) == report["n_samples"] == 359
    shares = np.bincount(saved.leaf_ids, minlength=4) / len(saved.leaf_ids)
    assert shares.tolist() == pytest.approx([leaf["share"] for leaf in report["leaves"]])

    out, plot = folders["root"] / "edge.json", folders["root"] / "edge.png"
    assert main(["edge-sim", "--tree", str(folders["tree"]), "--routes", str(routes), "--checkpoint",
                 str(folders["checkpoint"]), "--device", "ethos-u55-mcu", "--precision", "fp32",
                 "--orders", "shuffled", "runs:16", "--sram-sweep", "0", "4096", "1048576",
                 "--out", str(out), "--plot", str(plot)]) == 0
    data = json.loads(out.read_text())
    rows = {(r["workload"].split(":")[0], r["order"]): r for r in data["results"]}
    assert set(rows) == {("tree", "shuffled"), ("tree", "runs:16"), ("dense", "any")}
    # the digits models fit in 512 KiB: in the steady state nothing streams; with no on-chip memory
    # every weight an input uses streams
    assert all(r["offchip_bytes"] == 0 for r in data["results"])
    none = [r for r in data["sweep"] if r["device"].endswith("@0")]
    for r in none:
        assert r["offchip_bytes"] == pytest.approx(4 * r["mean_active_params"])
    assert plot.read_bytes()[:4] == b"\x89PNG" and (folders["root"] / "edge-sweep.png").is_file()


@pytest.mark.slow
def test_export_and_package_commands(folders, capsys) -> None:
    """The CLI's wiring; ONNX against PyTorch is tested in tests/export (here .pt2 only, to keep it fast)."""
    exported, package = folders["root"] / "export", folders["root"] / "pkg"
    assert main(["export", str(folders["tree"]), "--out", str(exported), "--no-onnx"]) == 0
    assert main(["export", "--checkpoint", str(folders["checkpoint"]), "--out", str(folders["root"] / "dx"),
                 "--no-onnx", "--no-paths"]) == 0
    assert main(["package", str(folders["tree"]), "--out", str(package)]) == 0
    manifest = json.loads((exported / "export.json").read_text())
    assert manifest["preprocess"]["input_size"] == [8, 8] and len(manifest["graphs"]) == 1 + 3 + 6 + 4 + 1
    assert all(set(g["files"]) == {"pt2"} for g in manifest["graphs"].values())
    program = torch.export.load(exported / "path-n10.pt2")
    assert program.module()(torch.zeros(3, 1, 8, 8)).shape == (3, 10)
    assert json.loads((package / "package.json").read_text())["paths"]["n10"] == ["backbone", "r", "n1", "r1", "n10"]


@pytest.mark.parametrize(("argv", "message"), [
    (["edge-sim", "--tree", "t"], "--tree and --routes go together"),
    (["edge-sim"], "nothing to simulate"),
    (["edge-sim", "--checkpoint", "x.pt", "--device", "no-such-part"], "unknown device"),
    (["eval", "--checkpoint", "x.pt", "--dataset", "digits", "--save-routes", "r.npz"], "--save-routes is for tree"),
])
def test_deploy_user_errors(argv, message, capsys) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_export_and_package_refuse_to_overwrite_or_mix_into_a_folder(folders, capsys) -> None:
    taken = folders["root"] / "taken"
    taken.mkdir()
    (taken / "export.json").write_text("{}")
    for argv in (["package", str(folders["tree"]), "--out", str(taken)],
                 ["package", str(folders["tree"]), "--out", str(folders["tree"])],
                 ["export", "--checkpoint", str(folders["checkpoint"]), "--out", str(taken), "--no-onnx"]):
        assert main(argv) == 2
        assert "already exists and is not an empty folder" in capsys.readouterr().err
    assert sorted(p.name for p in taken.iterdir()) == ["export.json"] and (taken / "export.json").read_text() == "{}"
    assert not (folders["tree"] / "package.json").exists()


def test_unwritable_outputs_fail_before_any_work(folders, tmp_path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    bad = str(blocker / "sub" / "out")
    for argv, what in ((["eval", str(folders["tree"]), "--save-routes", bad, "--no-progress"], "routes file"),
                       (["edge-sim", "--checkpoint", str(folders["checkpoint"]), "--out", bad], "results file"),
                       (["train", "--arch", "small_cnn", "--dataset", "digits", "--out", bad], "run folder"),
                       (["nested", "--checkpoint", str(folders["checkpoint"]), "--dataset", "digits", "--out", bad],
                        "run folder")):
        assert main(argv) == 2
        assert f"cannot write the {what}" in capsys.readouterr().err
