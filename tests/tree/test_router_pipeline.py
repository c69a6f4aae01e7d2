"""`sigmab fit-routers`: new routers in a new folder (the source tree untouched), on best-leaf or class targets;
the new folder evaluates, fine-tunes and refits like any tree folder (hard EM by alternation)."""

import json
from pathlib import Path

import pytest

from sigmab.cli import main
from sigmab.errors import ConfigError
from sigmab.routing import RouterSpec
from sigmab.tree import load_tree
from sigmab.tree.router_pipeline import RouterFitConfig
from tests.helpers import digits_resnet_checkpoint


@pytest.fixture(scope="module")
def tree_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fit")
    checkpoint = digits_resnet_checkpoint(root / "dense")
    assert main(["convert", "--checkpoint", str(checkpoint), "--dataset", "digits", "--out", str(root / "tree"),
                 "--depth", "1", "--calib-size", "400", "--widths", "[0.75]", "--no-progress"]) == 0
    return root / "tree"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_best_leaf_routers_then_hard_epochs_then_refit(tree_dir: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    before = _files(tree_dir)
    out = tmp_path / "em1"
    assert main(["fit-routers", str(tree_dir), "--out", str(out), "--settings", "{hidden: 8}", "--epochs", "5",
                 "--no-progress"]) == 0
    assert "best-leaf agreement" in capsys.readouterr().out
    assert _files(tree_dir) == before  # the source folder is never changed
    tree, spec = load_tree(out)
    assert spec.routers["r"] == RouterSpec("mlp", spec.routers["r"].in_channels, {"hidden": 8})
    report = json.loads((out / "router_fit.json").read_text())
    assert report["fit_on_train"]["after"]["oracle_top1"] == report["fit_on_train"]["before"]["oracle_top1"]
    assert main(["eval", str(out), "--json"]) == 0
    assert 0 < json.loads(capsys.readouterr().out)["top1"] <= 100
    assert main(["finetune", str(out), "--soft-epochs", "0", "--hard-epochs", "1", "--no-progress"]) == 0
    assert main(["fit-routers", str(out), "--out", str(tmp_path / "em2"), "--epochs", "2", "--no-progress"]) == 0
    assert (tmp_path / "em2" / "tree.json").is_file()
    assert main(["fit-routers", str(out), "--out", str(tmp_path / "em2"), "--no-progress"]) == 2  # never overwrites


def test_class_group_routers_split_every_class_once(tree_dir: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "classes"
    assert main(["fit-routers", str(tree_dir), "--out", str(out), "--targets", "classes", "--epochs", "20",
                 "--no-progress"]) == 0
    assert "class groups: n0:" in capsys.readouterr().out
    report = json.loads((out / "router_fit.json").read_text())
    groups = report["groups"]
    assert sorted(groups["0"] + groups["1"]) == list(range(10)) and min(len(groups["0"]), len(groups["1"])) >= 3
    assert report["group_accuracy"]["train"] > 60 and 0 < report["predicted_group_accuracy_val"] <= 100


def test_bad_router_fit_settings_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="targets must be one of best-leaf, classes"):
        RouterFitConfig(targets="oracle")
    with pytest.raises(ConfigError, match="kind must be one of"):
        RouterFitConfig(kind="transformer")
    with pytest.raises(ConfigError, match="needs val_fraction > 0"):
        RouterFitConfig(targets="classes", val_fraction=0.0)
