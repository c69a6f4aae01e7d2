"""The specialisation study runs end to end on digits: the tree starts as the static prune exactly (the sanity
rung), both arms get the same extra epochs, and the result carries what the report needs."""

import json
from pathlib import Path

import pytest

import benchmarks.specialise as specialise
from benchmarks.specialise_report import REQUIRED, specialise_section, write_specialise_plot
from sigmab.errors import ConfigError
from tests.helpers import digits_resnet_checkpoint


def test_a_run_writes_both_arms_and_the_tree_starts_as_the_prune(tmp_path: Path) -> None:
    grid = {"name": "tiny", "model": "resnet8", "dataset": "digits",
            "weights": str(digits_resnet_checkpoint(tmp_path / "dense", epochs=2)),
            "prune": {"criterion": "fpgm", "target_reduction": 0.5, "scope": "inner"},
            "static": {"epochs": 1, "lr": 0.02, "distill_weight": 1.0, "batch_size": 64, "val_fraction": 0.1},
            "runs": [{"id": "tiny-d1", "tree": {"depth": 1, "calib_size": 400},
                      "specialise": {"epochs": 1, "lr": 0.02},
                      "routers": {"kind": "mlp", "settings": {"hidden": 8}, "epochs": 5, "respecialise": 1}}]}
    out = specialise.run_one(grid, grid["runs"][0], progress=False, runs_dir=tmp_path / "runs",
                             results_dir=tmp_path / "results", fit=True)
    result = json.loads(out.read_text())
    fit = result["fit"]  # the per-leaf comparison covers every input and agrees with the evaluations above
    assert fit["test"]["all"]["tree_top1"] == round(result["tree_top1"], 2)
    assert fit["test"]["all"]["static_top1"] == round(result["static_continued_top1"], 2)
    for split in ("train", "test"):
        assert abs(sum(leaf["share"] for leaf in fit[split]["leaves"]) - 1) < 1e-3
    assert "Fit or generalisation?" in "\n".join(specialise_section([result]))
    assert result["tree_start_top1"] == result["static_top1"]  # every path is the prune before specialisation
    assert abs(result["active_params_mean"] - result["static_params"]) < 0.01 * result["static_params"]  # + router
    assert result["stored_params"] > result["static_params"]
    assert result["tree_minus_static_pp"] == round(result["tree_top1"] - result["static_continued_top1"], 4)
    assert result["oracle_top1"] >= max(leaf["top1_all"] for leaf in result["diagnosis"]["leaves"])
    epochs = [line.split(",")[0] for line in result["tree_metrics_csv"].strip().splitlines()[1:]]
    assert epochs == ["1"] and result["static_continued_metrics_csv"].count("\n") == 2  # header + 1 epoch each
    routed = result["trained_routers"]
    fit = routed["fit_on_train"]
    assert fit["after"]["oracle_top1"] == fit["before"]["oracle_top1"]  # routing does not change the leaves
    assert abs(sum(fit["after"]["leaf_shares"]) - 1) < 1e-9 and 0 <= fit["after"]["routed_top1"] <= 100
    assert routed["respecialised_epochs"] == 1 and routed["metrics_csv"].count("\n") == 2
    assert routed["active_params_mean"] > result["static_params"]  # an mlp router costs more than a cosine one
    section = "\n".join(specialise_section([result]))
    assert section.startswith("## Does routing beat static pruning?") and "`tiny-d1`" in section
    won = result["tree_minus_static_pp"] > 0
    assert f"beats the equally trained static prune in {int(won)} of 1 runs" in section
    assert all(k in result for k in REQUIRED)
    write_specialise_plot([result], tmp_path / "specialise.png")
    assert (tmp_path / "specialise.png").read_bytes()[:4] == b"\x89PNG"


def test_a_class_routed_run_with_a_trained_backbone_reports_its_groups(tmp_path: Path) -> None:
    grid = {"name": "tiny", "model": "resnet8", "dataset": "digits",
            "weights": str(digits_resnet_checkpoint(tmp_path / "dense", epochs=2)),
            "prune": {"criterion": "l1", "target_reduction": 0.5, "scope": "inner"},
            "static": {"epochs": 1, "lr": 0.02, "distill_weight": 1.0, "batch_size": 64, "val_fraction": 0.2},
            "runs": [{"id": "tiny-classes", "tree": {"depth": 1, "calib_size": 400}, "route_by": "classes",
                      "class_routers": {"settings": {"hidden": 8}, "epochs": 10},
                      "specialise": {"epochs": 1, "lr": 0.02, "train_backbone": True}}]}
    result = json.loads(specialise.run_one(grid, grid["runs"][0], progress=False, runs_dir=tmp_path / "runs",
                                           results_dir=tmp_path / "results").read_text())
    groups = result["class_groups"]["groups"]
    assert sorted(groups["0"] + groups["1"]) == list(range(10)) and result["config"]["route_by"] == "classes"
    assert result["tree_start_top1"] == result["static_top1"]  # new routers, but every path is still the prune
    section = "\n".join(specialise_section([result]))
    assert "| class groups | trained |" in section and "find an input's group" in section
    write_specialise_plot([result], tmp_path / "plot.png")


def test_runs_from_the_sliced_prune_train_both_arms_from_there(tmp_path: Path) -> None:
    """Rung (b) without a static start: the tree splits the prune before fine-tuning (its channels, or each
    leaf's own cluster's) and the static arm trains the same epochs from the same sliced weights."""
    grid = {"name": "tiny", "model": "resnet8", "dataset": "digits",
            "weights": str(digits_resnet_checkpoint(tmp_path / "dense", epochs=2)),
            "prune": {"criterion": "fpgm", "target_reduction": 0.5, "scope": "inner"},
            "static": {"epochs": 1, "lr": 0.02, "distill_weight": 1.0, "batch_size": 64, "val_fraction": 0.1},
            "runs": [{"id": "tiny-sliced", "tree": {"depth": 1, "calib_size": 400, "from_pruned_weights": "sliced"},
                      "specialise": {"epochs": 2, "lr": 0.02, "train_backbone": True}},
                     {"id": "tiny-cluster", "tree": {"depth": 1, "calib_size": 400, "from_pruned_weights": "sliced",
                                                     "from_pruned_channels": "cluster"},
                      "specialise": {"epochs": 2, "lr": 0.02, "train_backbone": True}}]}
    runs = tmp_path / "runs"
    sliced, cluster = (json.loads(specialise.run_one(grid, run, progress=False, runs_dir=runs,
                                                     results_dir=tmp_path / "results").read_text())
                       for run in grid["runs"])
    fine_tuned = specialise.evaluate_pruned_folder(runs / "tiny" / "static", split="test")["top1"]
    for result in (sliced, cluster):
        assert result["start_weights"] == "sliced" and result["static_epochs"] == 0 and result["extra_epochs"] == 2
        assert result["static_top1"] != fine_tuned  # the start is the prune before its static fine-tuning
        assert result["static_continued_metrics_csv"].count("\n") == 3  # the static arm: 2 epochs from there
        assert abs(result["active_params_mean"] - result["static_params"]) < 0.01 * result["static_params"]
    assert sliced["tree_start_top1"] == sliced["static_top1"]  # every path is the sliced prune
    assert sliced["static_continued_top1"] == cluster["static_continued_top1"]  # one static arm, trained once
    section = "\n".join(specialise_section([sliced, cluster]))
    assert "| own cluster's | k-means | trained | 2 from the sliced prune |" in section
    assert "| the prune's | k-means | trained | 2 from the sliced prune |" in section
    write_specialise_plot([sliced, cluster], tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"


def test_a_run_whose_arms_cannot_be_compared_is_refused_before_any_training(tmp_path: Path) -> None:
    grid = {"name": "tiny", "model": "resnet8", "dataset": "digits", "weights": str(tmp_path / "missing.safetensors"),
            "prune": {"criterion": "fpgm", "target_reduction": 0.5}, "static": {"epochs": 1, "lr": 0.02},
            "runs": [{"id": "bad", "tree": {"depth": 1, "from_pruned_weights": "sliced"},
                      "specialise": {"epochs": 1, "lr": 0.02}, "routers": {"kind": "mlp"}}]}
    for call in (lambda: specialise.run_one(grid, grid["runs"][0], progress=False, runs_dir=tmp_path / "runs",
                                            results_dir=tmp_path / "results"),
                 lambda: specialise.train_arm(grid, grid["runs"][0], "tree", runs_dir=tmp_path / "runs",
                                              progress=False)):
        with pytest.raises(ConfigError, match="bad: trained routers are compared with the continued prune"):
            call()
    assert not (tmp_path / "runs").exists()
