import importlib.util
import json
from pathlib import Path

import pytest

from sigmab.cli import main
from sigmab.dispatch.pipeline import DispatchConfig, dispatch_splits, load_models, run_dispatch
from sigmab.errors import ConfigError
from sigmab.train import TrainConfig, train
from tests.helpers import digits_resnet_checkpoint


@pytest.fixture(scope="module")
def two_models(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("models")
    big = digits_resnet_checkpoint(root / "big", epochs=3)
    train(TrainConfig(arch="resnet8", arch_kwargs={"widths": [4, 8, 16]}, dataset="digits", epochs=1, batch_size=64,
                      lr=0.05), root / "small", progress=False)
    return [str(big), str(root / "small" / "model.safetensors")]


def test_dispatch_front_lies_between_its_models(two_models: list[str], tmp_path: Path) -> None:
    cfg = DispatchConfig(dataset="digits", val_fraction=0.3, population=4, generations=2, epochs=10)
    report = run_dispatch(two_models, cfg, tmp_path / "d")
    small, big = report["models"]
    assert [small["name"], big["name"]] == ["small", "big"]  # cheapest first
    assert small["mean_macs"] < big["mean_macs"] and report["stored_params_models"] > 0
    assert small["stored_params"] + big["stored_params"] == report["stored_params_models"]
    assert report["front"] and len(report["search"]) == 4 + 2  # initial population, then the children
    best = report["best_val_top1_per_generation"]
    assert best == sorted(best)
    for row in report["front"]:
        dispatcher = row["dispatcher_macs"]
        assert dispatcher + small["mean_macs"] - 1e-6 <= row["mean_macs"] <= dispatcher + big["mean_macs"] + 1e-6
        assert row["top1"] <= report["oracle_top1"] and sum(row["shares"]) == pytest.approx(1.0)
    assert json.loads((tmp_path / "d" / "report.json").read_text()) == report
    with pytest.raises(ConfigError, match="already holds"):
        run_dispatch(two_models, cfg, tmp_path / "d")
    with pytest.raises(ConfigError, match="at least two models"):
        run_dispatch(two_models[:1], cfg, tmp_path / "one")


def test_dispatch_command(two_models: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dispatch", *two_models, "--dataset", "digits", "--val-fraction", "0.3", "--population", "2",
                 "--generations", "1", "--epochs", "5", "--out", str(tmp_path / "d"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "oracle (any model right)" in out and "front (test)" in out
    assert main(["dispatch", two_models[0], "--dataset", "digits", "--out", str(tmp_path / "e")]) == 2
    # one architecture per model, '-' where the checkpoint names its own; a count that fits neither is refused
    assert main(["dispatch", *two_models, "--arch", "resnet8", "-", "--dataset", "digits", "--val-fraction", "0.3",
                 "--population", "2", "--generations", "1", "--epochs", "2", "--out", str(tmp_path / "f"),
                 "--no-progress"]) == 0
    if importlib.util.find_spec("pymoo") is not None:  # the same report from pymoo's NSGA-II, same budget
        assert main(["dispatch", *two_models, "--dataset", "digits", "--val-fraction", "0.3", "--population", "4",
                     "--generations", "2", "--epochs", "2", "--search", "nsga2", "--out", str(tmp_path / "n"),
                     "--no-progress"]) == 0
        report = json.loads((tmp_path / "n" / "report.json").read_text())
        assert report["config"]["search"] == "nsga2" and len(report["search"]) == 4 + 2 and report["front"]
    assert main(["dispatch", *two_models, two_models[0], "--arch", "resnet8", "-", "--dataset", "digits",
                 "--out", str(tmp_path / "g")]) == 2
    assert "2 architectures for 3 models" in capsys.readouterr().err


def test_models_load_with_one_architecture_each_and_bad_paths_are_named(two_models: list[str], tmp_path: Path) -> None:
    models, meta = load_models(two_models, arch=[None, None])
    assert [name for name, _ in models] == ["big", "small"] and meta.arch == "resnet8"
    with pytest.raises(ConfigError, match="1 architectures for 2 models"):
        load_models(two_models, arch=["resnet8"])
    with pytest.raises(ConfigError, match="missing.safetensors does not exist"):
        load_models([two_models[0], str(tmp_path / "missing.safetensors")])


def test_test_half_learning_splits_the_test_set_into_two_disjoint_halves() -> None:
    learn, report = dispatch_splits(DispatchConfig(dataset="digits", learn_on="test-half", seed=3))
    val, test = dispatch_splits(DispatchConfig(dataset="digits", val_fraction=0.3))
    assert len(learn) + len(report) == len(test) and abs(len(learn) - len(report)) <= 1
    assert sorted([*learn.labels.tolist(), *report.labels.tolist()]) == sorted(test.labels.tolist())
    assert len(val) != len(learn)  # the default learns from held-out training images
    with pytest.raises(ConfigError, match="learn_on must be one of val, test-half"):
        DispatchConfig(dataset="digits", learn_on="train")
