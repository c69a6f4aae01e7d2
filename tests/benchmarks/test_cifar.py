import json
from pathlib import Path

import pytest
import yaml

from benchmarks.cifar import dense_weights, load_grid, run_layers, run_nested, run_one
from benchmarks.grid_report import REQUIRED
from benchmarks.report import load_results, render, write_plots
from sigmab.config import preset_layer
from sigmab.errors import ConfigError
from tests.benchmarks.test_report import _valid
from tests.helpers import digits_resnet_checkpoint


def _grid(tmp_path: Path, runs: list[dict], weights: str = "w.safetensors") -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({"model": "resnet8", "weights": weights, "data": str(tmp_path),
                                    "dataset": "digits", "val_fraction": 0.2, "runs": runs}))
    return path


def test_grid_settings_are_checked_before_any_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run ids must be unique"):
        load_grid(_grid(tmp_path, [{"id": "a"}, {"id": "a"}]))
    with pytest.raises(ConfigError, match=r"every width must be in \(0, 1\]"):
        load_grid(_grid(tmp_path, [{"id": "a", "convert": {"depth": 1, "widths": [2.0]}}]))
    with pytest.raises(ConfigError, match="unknown option"):
        load_grid(_grid(tmp_path, [{"id": "a", "finetune": {"epochs": 3}}]))


def test_a_run_writes_a_result_in_the_shared_schema_and_the_report_renders_it(tmp_path: Path) -> None:
    weights = digits_resnet_checkpoint(tmp_path / "dense", epochs=2)
    run = {"id": "tiny", "convert": {"depth": 1, "widths": [0.5], "calib_size": 300, "min_leaf_samples": 16},
           "finetune": {"soft_epochs": 1, "hard_epochs": 0, "batch_size": 64}}
    grid = load_grid(_grid(tmp_path, [run], weights=str(weights)))
    out = run_one(grid, run, 0, progress=False, runs_dir=tmp_path / "runs", results_dir=tmp_path / "results" / "cifar")
    result = json.loads(out.read_text())
    assert set(REQUIRED) - {"_file"} <= set(result)
    assert result["method"] == "sigmab" and result["finetune_epochs"] == 1 and result["val_top1"] is not None
    assert result["active_params_mean"] < result["dense_params"]
    diagnosis = result["diagnosis"]
    assert diagnosis["top1"] == pytest.approx(result["top1"], abs=1e-3)
    drop = result["dense_top1"] - result["top1"]
    assert sum(leaf["gap_pp"] for leaf in diagnosis["leaves"]) == pytest.approx(drop, abs=1e-3)
    # a second call reuses the finished tree instead of converting and fine-tuning again
    again = json.loads(run_one(grid, run, 0, progress=False, runs_dir=tmp_path / "runs",
                               results_dir=tmp_path / "results" / "cifar").read_text())
    assert again["top1"] == result["top1"]

    _valid(tmp_path / "results")  # the other result files the report expects
    by_kind = load_results(tmp_path / "results")
    assert "| resnet8 | tiny | 0 |" in render(by_kind)
    write_plots(by_kind, tmp_path / "plots")
    assert (tmp_path / "plots" / "cifar_pareto.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "plots" / "routing_resnet8.png").is_file()
    (tmp_path / "results" / "cifar" / "tiny-s0.json").write_text(json.dumps({"benchmark": "cifar_run", "top1": 1}))
    with pytest.raises(SystemExit, match="tiny-s0.json: missing fields"):
        load_results(tmp_path / "results")


@pytest.mark.parametrize("grid_file", ["resnet20.yaml", "resnet56.yaml"])
def test_committed_preset_results_were_produced_with_the_presets_settings(grid_file: str) -> None:
    """A preset names the settings of a committed benchmark row, so `--preset` gets what the table shows."""
    root = Path(__file__).resolve().parents[2]
    grid = load_grid(root / "benchmarks" / "configs" / grid_file)
    with_preset = [run for run in grid["runs"] if run.get("preset")]
    assert with_preset, "each grid benchmarks its model's preset"
    for run in with_preset:
        results = sorted((root / "benchmarks" / "results" / "cifar").glob(f"{run['id']}-s*.json"))
        assert results, f"no committed result for {run['id']}"
        for path in results:
            recorded = json.loads(path.read_text())["config"]
            for section in ("convert", "finetune"):
                for key, value in preset_layer(run["preset"], section).items():
                    assert recorded[section][key] == value, f"{path.name}: {section}.{key}"


def test_a_run_can_take_a_preset_and_override_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not for resnet8"):
        load_grid(_grid(tmp_path, [{"id": "a", "preset": "cifar10-resnet56"}]))
    run = {"id": "a", "preset": "cifar10-resnet56", "finetune": {"hard_epochs": 0}}
    layers = run_layers(run, "finetune")
    assert layers[0]["soft_epochs"] == 3 and layers[-1] == {"hard_epochs": 0}


@pytest.mark.parametrize(("baselines", "preset"), [("resnet20_baselines.yaml", "cifar10-resnet20"),
                                                   ("resnet56_baselines.yaml", "cifar10-resnet56")])
def test_baselines_get_the_fine_tuning_budget_of_the_sigmab_preset(baselines: str, preset: str) -> None:
    root = Path(__file__).resolve().parents[2]
    grid = load_grid(root / "benchmarks" / "configs" / baselines)
    sigmab = preset_layer(preset, "finetune")
    for run in grid["runs"]:
        assert run["method"] in ("l1", "fpgm", "hrank")
        ft = run["finetune"]
        assert ft["epochs"] == sigmab["soft_epochs"] + sigmab["hard_epochs"], run["id"]
        for key in ("lr", "distill_weight", "batch_size"):
            assert ft[key] == sigmab[key], (run["id"], key)


def test_a_pruning_run_writes_the_same_schema(tmp_path: Path) -> None:
    weights = digits_resnet_checkpoint(tmp_path / "dense", epochs=2)
    run = {"id": "fp", "method": "fpgm", "prune": {"target_reduction": 0.5},
           "finetune": {"epochs": 1, "batch_size": 64, "distill_weight": 1.0}}
    grid = load_grid(_grid(tmp_path, [run], weights=str(weights)))
    out = run_one(grid, run, 0, progress=False, runs_dir=tmp_path / "runs", results_dir=tmp_path / "results")
    result = json.loads(out.read_text())
    assert set(REQUIRED) - {"_file"} <= set(result)
    assert result["method"] == "fpgm" and result["config"]["prune"]["criterion"] == "fpgm"
    assert result["active_params_mean"] == result["stored_params"] == result["active_params_max"]
    assert result["stored_params"] <= 0.5 * result["dense_params"] and result["val_top1"] is not None
    with pytest.raises(ConfigError, match="unknown method 'taylor'"):
        load_grid(_grid(tmp_path, [{"id": "t", "method": "taylor", "prune": {"keep_ratio": 0.5}}]))


def test_a_grid_without_weights_trains_its_dense_model_once(tmp_path: Path) -> None:
    path = tmp_path / "points.yaml"
    grid = {"model": "small_cnn", "dataset": "digits", "val_fraction": 0.2, "results": "points",
            "train": {"arch_kwargs": {"widths": [8, 16, 32]}, "epochs": 1, "batch_size": 64, "lr": 0.05},
            "runs": [{"id": "tiny", "convert": {"depth": 1, "split_points": ["features.2"], "widths": [0.5],
                                                 "calib_size": 300, "min_leaf_samples": 16},
                      "finetune": {"soft_epochs": 1, "hard_epochs": 0, "batch_size": 64}}]}
    path.write_text(yaml.safe_dump(grid))
    loaded = load_grid(path)
    assert loaded["name"] == "points"
    weights = dense_weights(loaded, progress=False, runs_dir=tmp_path / "runs")
    assert weights == tmp_path / "runs" / "points-dense" / "model.safetensors" and weights.is_file()
    stamp = weights.stat().st_mtime_ns
    assert dense_weights(loaded, progress=False, runs_dir=tmp_path / "runs").stat().st_mtime_ns == stamp
    path.write_text(yaml.safe_dump({**grid, "weights": str(weights)}))  # committed weights win; train: a record
    assert dense_weights(load_grid(path), progress=False, runs_dir=tmp_path / "elsewhere") == weights
    path.write_text(yaml.safe_dump({k: v for k, v in grid.items() if k != "train"}))
    with pytest.raises(ConfigError, match="give 'weights'"):
        load_grid(path)
    path.write_text(yaml.safe_dump({**grid, "train": {"epochs": 0}}))
    with pytest.raises(ConfigError, match="epochs must be >= 1"):
        load_grid(path)


def test_a_nested_run_writes_one_result_per_route(tmp_path: Path) -> None:
    weights = digits_resnet_checkpoint(tmp_path / "dense", epochs=1)
    run = {"id": "nest", "method": "nested", "nested": {"sparsities": [0.5, 0.9], "epochs": 1, "batch_size": 64}}
    grid = load_grid(_grid(tmp_path, [run], weights=str(weights)))
    paths = run_nested(grid, run, 0, progress=False, runs_dir=tmp_path / "runs", results_dir=tmp_path / "results")
    results = {json.loads(p.read_text())["route"]: json.loads(p.read_text()) for p in paths}
    assert sorted(results) == ["L0", "L0->L1@3", "L1", "L1->L0@3"]
    assert [p.name for p in paths][0] == "nest-L0-s0.json" and "nest-L0toL1at3-s0.json" in [p.name for p in paths]
    for r in results.values():
        assert set(REQUIRED) - {"_file"} <= set(r) and r["method"] == "nested"
        assert r["stored_params"] == results["L0"]["active_params_max"] and r["val_top1"] is not None
    assert results["L1"]["active_params_mean"] < results["L0"]["active_params_mean"] < results["L0"]["dense_params"]


def test_a_dispatch_run_writes_one_result_per_front_point(tmp_path: Path) -> None:
    from benchmarks.cifar import _configs, _resolve
    from benchmarks.cifar_dispatch import run_dispatch_grid
    from sigmab.train import TrainConfig, train

    big = digits_resnet_checkpoint(tmp_path / "big", epochs=2)
    train(TrainConfig(arch="resnet8", arch_kwargs={"widths": [4, 8, 16]}, dataset="digits", epochs=1, batch_size=64,
                      lr=0.05), tmp_path / "runs" / "small", progress=False)
    run = {"id": "disp", "method": "dispatch", "models": [{"weights": str(big)}, {"run": "small/model.safetensors"}],
           "dispatch": {"population": 2, "generations": 1, "epochs": 3}}
    grid = load_grid(_grid(tmp_path, [run], weights=str(big)))
    cfg, _ = _configs(grid, run, 0)
    kwargs = dict(dense_weights=big, runs_dir=tmp_path / "runs", results_dir=tmp_path / "results" / "cifar",
                  resolve=_resolve, progress=False)
    paths = run_dispatch_grid(grid, run, 0, cfg, **kwargs)
    results = [json.loads(p.read_text()) for p in paths]
    assert [p.name for p in paths] == [f"disp-f{k}-s0.json" for k in range(len(paths))]
    for r in results:
        assert set(REQUIRED) <= set(r) and r["method"] == "dispatch"
        d = r["dispatch"]
        small, dense = sorted(m["mean_params"] for m in d["models"])
        assert small + d["dispatcher_params"] - 1e-6 <= r["active_params_mean"] <= dense + d["dispatcher_params"] + 1e-6
        assert r["stored_params"] == sum(m["stored_params"] for m in d["models"]) + d["dispatcher_params"]
        assert r["dense_params"] == dense and r["top1"] <= d["oracle_top1"]
    # a second call reuses the searched front
    assert [json.loads(p.read_text())["top1"] for p in run_dispatch_grid(grid, run, 0, cfg, **kwargs)] == \
        [r["top1"] for r in results]
    _valid(tmp_path / "results")
    assert "| resnet8 | dispatch | disp:f0 | 0 |" in render(load_results(tmp_path / "results"))

    gone = {**run, "id": "gone", "models": [{"weights": str(big)}, {"run": "nowhere/tree"}]}
    with pytest.raises(ConfigError, match="nowhere/tree: run the grid that makes them first"):
        run_dispatch_grid(grid, gone, 0, cfg, **kwargs)
    with pytest.raises(ConfigError, match="each model is"):
        load_grid(_grid(tmp_path, [{**run, "models": [{"weights": "a", "run": "b"}, {"run": "c"}]}]))


def test_every_method_a_grid_names_has_one_entry_in_the_method_table() -> None:
    from benchmarks.cifar import METHOD_TABLE
    from sigmab.importance.filters import CRITERIA

    assert set(METHOD_TABLE) == {"sigmab", "nested", "dispatch", *CRITERIA.names()}
    assert [name for name, method in METHOD_TABLE.items() if method.tree] == ["sigmab"]
    assert METHOD_TABLE["fpgm"].first_result("r", 1) == "r-s1.json"
    assert METHOD_TABLE["nested"].first_result("r", 1) == "r-L0-s1.json"  # its first route's file
    assert METHOD_TABLE["dispatch"].first_result("r", 1).startswith("r-") and "s1" in \
        METHOD_TABLE["dispatch"].first_result("r", 1)


def test_the_committed_mobilenet_v2_dense_model_is_the_grids_start() -> None:
    """Issue 30: the MobileNetV2 grid starts every arm and seed from committed weights, not a retrained model."""
    import torch

    from benchmarks.common import ROOT
    from sigmab.folders import open_model

    grid = load_grid(ROOT / "benchmarks" / "configs" / "mobilenet_v2_cifar_s2.yaml")
    weights = dense_weights(grid, progress=False)
    assert weights == ROOT / "benchmarks" / "weights" / "mobilenet_v2_cifar_s2-dense" / "model.safetensors"
    opened = open_model(weights.parent, None)
    assert sum(p.numel() for p in opened.model.parameters()) == 700_490
    with torch.no_grad():
        assert opened.model.eval()(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize(("fp32_grid", "bf16_grid"), [("c100_resnet20_fp32.yaml", "c100_resnet20.yaml"),
                                                      ("c100_resnet56_fp32.yaml", "c100_resnet56.yaml")])
def test_an_fp32_twin_differs_from_its_bf16_run_only_in_precision(fp32_grid: str, bf16_grid: str) -> None:
    """The precision study and the fp32 verdicts pair `X-fp32` with `X`: nothing but `amp` may differ."""
    from benchmarks.c100_report import PARITY_SUFFIX

    def recipe(run: dict) -> dict:  # everything but the id and the precision
        return {**{k: v for k, v in run.items() if k != "id"},
                "finetune": {k: v for k, v in run["finetune"].items() if k != "amp"}}

    root = Path(__file__).resolve().parents[2] / "benchmarks" / "configs"
    fp32, bf16 = load_grid(root / fp32_grid), load_grid(root / bf16_grid)
    assert fp32["model"] == bf16["model"] and fp32["weights"] == bf16["weights"]
    twins = {run["id"]: run for run in bf16["runs"]}
    paired = 0
    for run in fp32["runs"]:
        assert run["id"].endswith(PARITY_SUFFIX) and run["finetune"]["amp"] == "off", run["id"]
        twin = twins.get(run["id"].removesuffix(PARITY_SUFFIX))
        if twin is None:  # a setting with no bf16 run (e.g. a longer budget)
            continue
        paired += 1
        assert "amp" not in twin["finetune"] and recipe(run) == recipe(twin), run["id"]
    assert paired >= 2
