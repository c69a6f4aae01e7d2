import argparse
from pathlib import Path

import pytest
import yaml

from sigmab.config import (
    add_config_flags,
    list_presets,
    preset_layer,
    read_preset,
    read_yaml_config,
    resolve_config,
    save_config,
)
from sigmab.errors import ConfigError
from sigmab.train import TrainConfig


def _flags(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser()
    add_config_flags(parser, TrainConfig)
    return vars(parser.parse_args(argv))


def test_flags_override_yaml_which_overrides_defaults(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("epochs: 7\nlr: 0.2\narch_kwargs: {widths: [4]}\n")
    cfg = resolve_config(TrainConfig, read_yaml_config(str(tmp_path / "c.yaml")),
                         _flags(["--lr", "0.3", "--no-nesterov", "--crop-padding", "2"]))
    assert (cfg.epochs, cfg.lr, cfg.nesterov, cfg.crop_padding) == (7, 0.3, False, 2)
    assert cfg.arch_kwargs == {"widths": [4]} and cfg.batch_size == TrainConfig().batch_size


def test_unset_flags_do_not_mask_the_yaml() -> None:
    assert _flags([]) == {}
    assert _flags(["--arch-kwargs", "{widths: [2, 4]}"]) == {"arch_kwargs": {"widths": [2, 4]}}


def test_resolved_config_round_trips_through_the_run_folder(tmp_path: Path) -> None:
    cfg = resolve_config(TrainConfig, {"epochs": 3, "hflip": True})
    save_config(cfg, tmp_path / "config.yaml")
    assert resolve_config(TrainConfig, yaml.safe_load((tmp_path / "config.yaml").read_text())) == cfg


def test_packaged_demo_config_is_found_by_name() -> None:
    assert read_yaml_config("demo")["dataset"] == "digits"


@pytest.mark.parametrize(("layer", "message"), [
    ({"epoch": 3}, "unknown option\\(s\\) epoch; valid: .*epochs"),
    ({"epochs": "many"}, "epochs: expected int, got 'many'"),
    ({"epochs": 2.5}, "epochs: expected int"),
    ({"nesterov": "yes"}, "nesterov: expected bool"),
    ({"lr": None}, "lr must not be empty"),
])
def test_bad_values_are_config_errors(layer: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_config(TrainConfig, layer)


def test_bad_yaml_files(tmp_path: Path) -> None:
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        read_yaml_config(str(tmp_path / "list.yaml"))
    (tmp_path / "broken.yaml").write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        read_yaml_config(str(tmp_path / "broken.yaml"))
    with pytest.raises(ConfigError, match="config not found"):
        read_yaml_config("no-such-config")


def test_presets_are_packaged_and_checked() -> None:
    presets = list_presets()
    assert {"cifar10-resnet20", "cifar10-resnet56"} <= set(presets) and all(presets.values())
    assert preset_layer("cifar10-resnet56", "convert")["widths"] == [0.5, 0.25]
    assert preset_layer(None, "convert") == {}
    with pytest.raises(ConfigError, match="unknown preset 'nope'; available: cifar10-resnet20"):
        read_preset("nope")


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--arch", "small_cnn", "--dataset", "digits", "--lr", "inf"], "lr: expected a finite number"),
    (["train", "--arch", "small_cnn", "--dataset", "digits", "--lr", "nan"], "lr: expected a finite number"),
    (["train", "--arch", "small_cnn", "--dataset", "digits", "--momentum", "5"], "momentum must be in [0, 1)"),
    (["train", "--arch", "small_cnn", "--dataset", "digits", "--weight-decay", "-1"], "weight_decay must be >= 0"),
    (["finetune", "TREE", "--distill-temperature", "0"], "distill_temperature must be > 0"),
    (["finetune", "TREE", "--distill-weight", "nan"], "distill_weight: expected a finite number"),
    (["convert", "--checkpoint", "x.th", "--dataset", "digits", "--router-scale", "nan"], "router_scale: expected"),
    (["convert", "--checkpoint", "x.th", "--dataset", "digits", "--router-scale", "0"], "router_scale must be in"),
    (["convert", "--checkpoint", "x.th", "--dataset", "digits", "--router-scale", "-10"], "router_scale must be in"),
    (["prune", "--checkpoint", "x.th", "--dataset", "digits", "--keep-ratio", "0.5", "--lr", "inf"], "lr: expected"),
])
def test_non_finite_and_out_of_range_settings_are_refused_before_any_work(
        argv: list[str], message: str, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from sigmab.cli import main

    argv = [str(tmp_path / "tree") if a == "TREE" else a for a in argv]
    out = tmp_path / "out"
    assert main([*argv, *([] if argv[0] == "finetune" else ["--out", str(out)])]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not (tmp_path / "tree").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--arch", "resnet8", "--dataset", "digits", "--arch-kwargs", "{widths: [16, -32, 64]}"],
     "bad arguments for architecture 'resnet8'"),
    (["train", "--arch", "resnet8", "--dataset", "digits", "--arch-kwargs", "abc"], "arch_kwargs must be a mapping"),
    (["nested", "--checkpoint", "x.th", "--dataset", "digits", "--sparsities", "abc"], "sparsities must be a list"),
])
def test_malformed_structured_flags_are_one_line(argv: list[str], message: str, tmp_path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from sigmab.cli import main

    assert main([*argv, "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_resume_refuses_changed_settings_but_not_runtime_ones(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from sigmab.cli import main

    run = ["train", "--arch", "small_cnn", "--dataset", "digits", "--epochs", "1", "--out", str(tmp_path / "r"),
           "--no-progress"]
    assert main(run) == 0
    saved = (tmp_path / "r" / "config.yaml").read_text()
    assert main([*run, "--resume", "--lr", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "lr was 0.1, not 0.5" in err and (tmp_path / "r" / "config.yaml").read_text() == saved
    assert main([*run, "--resume", "--threads", "1"]) == 0  # where it runs may change; the run is finished
