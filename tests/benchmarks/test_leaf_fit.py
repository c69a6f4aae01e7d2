"""The per-leaf comparison of a grid's tree and static run: it covers every input, agrees with each run's own
test Top-1, and its leaves add up to the overall difference."""

import json
from pathlib import Path

import pytest

from benchmarks.cifar import load_grid, run_one
from benchmarks.leaf_fit import leaf_fit_section, run_pair
from sigmab.errors import ConfigError
from tests.benchmarks.test_cifar import _grid
from tests.helpers import digits_resnet_checkpoint


def test_a_tree_and_a_static_run_split_their_difference_by_leaf(tmp_path: Path) -> None:
    weights = digits_resnet_checkpoint(tmp_path / "dense", epochs=2)
    tree = {"id": "tree", "convert": {"depth": 1, "widths": [0.5], "calib_size": 300, "min_leaf_samples": 16},
            "finetune": {"soft_epochs": 0, "hard_epochs": 1, "batch_size": 64}}
    static = {"id": "fp", "method": "fpgm", "prune": {"target_reduction": 0.5},
              "finetune": {"epochs": 1, "batch_size": 64}}
    grid = load_grid(_grid(tmp_path, [tree, static], weights=str(weights)))
    runs, results = tmp_path / "runs", tmp_path / "results"
    top1 = {run["id"]: json.loads(run_one(grid, run, 0, progress=False, runs_dir=runs,
                                          results_dir=results).read_text())["top1"] for run in (tree, static)}
    with pytest.raises(ConfigError, match="tree-s1/tree does not exist: it must be a tree run"):
        run_pair(grid, "tree", "fp", 1, runs_dir=runs, results_dir=results)
    result = json.loads(run_pair(grid, "tree", "fp", 0, runs_dir=runs, results_dir=results).read_text())
    fit = result["fit"]
    assert fit["test"]["all"]["tree_top1"] == pytest.approx(top1["tree"], abs=0.01)
    assert fit["test"]["all"]["static_top1"] == pytest.approx(top1["fp"], abs=0.01)
    for split in ("train", "test"):
        leaves, overall = fit[split]["leaves"], fit[split]["all"]
        assert len(leaves) == 2 and sum(leaf["share"] for leaf in leaves) == pytest.approx(1, abs=1e-3)
        by_leaf = sum(leaf["share"] * (leaf["tree_top1"] - leaf["static_top1"]) for leaf in leaves)
        assert by_leaf == pytest.approx(overall["tree_top1"] - overall["static_top1"], abs=0.05)
    text = "\n".join(leaf_fit_section([{**result, "_file": "x.json"}]))
    assert "| resnet8 | `tree` | `fp` | 0 | test |" in text and "leaves beat the static net" in text
