import json
from pathlib import Path

import pytest
import torch
import yaml

from sigmab.cli import build_parser, main
from sigmab.errors import CheckpointError, ConfigError
from sigmab.models import load_model
from sigmab.tree import ConvertConfig, load_tree
from sigmab.tree.pipeline import convert_checkpoint
from tests.helpers import assert_same_function, digits_resnet_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return digits_resnet_checkpoint(tmp_path_factory.mktemp("dense"))


CFG = dict(depth=2, split_points=["layer2.0", "layer3.0"], widths=[0.5, 0.5], calib_size=400, min_leaf_samples=16)


def test_convert_writes_a_tree_folder_with_a_report(checkpoint: Path, tmp_path: Path) -> None:
    conversion, report = convert_checkpoint(checkpoint, dataset="digits", out=tmp_path / "t", cfg=ConvertConfig(**CFG))
    assert {p.name for p in (tmp_path / "t").iterdir()} == {"tree.json", "tree.safetensors", "report.json",
                                                            "sigmab.json"}
    saved = json.loads((tmp_path / "t" / "report.json").read_text())
    assert saved["dense_params"] == sum(p.numel() for p in load_model(checkpoint).parameters())
    assert saved["stored_params"] == sum(p.numel() for p in load_tree(tmp_path / "t")[0].parameters())
    assert saved["stored_params"] > saved["active_params_max"] >= saved["active_params_min"]
    assert 0 < saved["active_fraction_of_dense"] < 1 and len(saved["paths"]) == 4
    assert json.loads((tmp_path / "t" / "tree.json").read_text())["convert_config"]["source"]["dataset"] == "digits"


def test_bad_settings_stop_before_writing_anything(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "t"
    with pytest.raises(ConfigError, match="calib_size 5000 exceeds the 1438 training images"):
        convert_checkpoint(checkpoint, dataset="digits", out=out, cfg=ConvertConfig(**{**CFG, "calib_size": 5000}))
    with pytest.raises(ConfigError, match="invalid split point"):
        convert_checkpoint(checkpoint, dataset="digits", out=out,
                           cfg=ConvertConfig(**{**CFG, "split_points": ["stem", "layer3.0"]}))
    torch.save(load_model(checkpoint).state_dict(), tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="bare.pt does not fit resnet20"):
        convert_checkpoint(tmp_path / "bare.pt", arch="resnet20", dataset="digits", out=out, cfg=ConvertConfig(**CFG))
    assert not out.exists()
    convert_checkpoint(checkpoint, dataset="digits", out=out, cfg=ConvertConfig(**CFG))
    before = (out / "tree.safetensors").read_bytes()
    with pytest.raises(ConfigError, match="already holds a converted tree"):
        convert_checkpoint(checkpoint, dataset="digits", out=out, cfg=ConvertConfig(**CFG))
    assert (out / "tree.safetensors").read_bytes() == before


def test_cli_convert_finetune_eval(checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "t")
    assert main(["convert", "--checkpoint", str(checkpoint), "--dataset", "digits", "--out", out, "--widths",
                 "[0.5, 0.5]", "--calib-size", "400", "--min-leaf-samples", "16", "--no-progress"]) == 0
    assert main(["eval", out, "--json", "--no-progress"]) == 0
    before = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main(["finetune", out, "--soft-epochs", "1", "--hard-epochs", "1", "--distill-weight", "1.0",
                 "--batch-size", "64", "--lr", "0.02", "--no-progress"]) == 0
    assert main(["eval", out, "--json", "--no-progress"]) == 0
    after = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert after["weights"] == "finetuned.safetensors" and before["weights"] == "tree.safetensors"
    for key in ("top1", "dense_top1", "active_params_mean", "active_params_min", "active_params_max",
                "stored_params", "active_macs_mean", "weight_bytes_per_inference", "dense_params", "dense_macs"):
        assert after[key] is not None, key
    assert after["top1"] > before["top1"]
    assert abs(sum(leaf["share"] for leaf in after["leaves"]) - 1.0) < 1e-9
    rows = (Path(out) / "finetune" / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 3 and rows[1].split(",")[1] == "soft" and rows[2].split(",")[1] == "hard"
    assert main(["eval", out, "--checkpoint", str(checkpoint), "--dataset", "digits"]) == 2


def test_preset_sets_defaults_that_flags_override(checkpoint: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["presets"]) == 0
    listed = capsys.readouterr().out
    assert "cifar10-resnet56:" in listed and "cifar10-resnet20:" in listed
    out = str(tmp_path / "t")
    # the packaged presets are for the CIFAR ResNets; a resnet8 checkpoint is refused before any work
    assert main(["convert", "--checkpoint", str(checkpoint), "--dataset", "digits", "--out", out,
                 "--preset", "cifar10-resnet20"]) == 2
    assert "preset cifar10-resnet20 is for resnet20, but" in capsys.readouterr().err
    assert not Path(out).exists()
    assert main(["convert", "--checkpoint", str(checkpoint), "--dataset", "digits", "--out", out, "--widths",
                 "[0.5, 0.5]", "--calib-size", "400", "--min-leaf-samples", "16", "--no-progress"]) == 0
    assert main(["finetune", out, "--preset", "cifar10-resnet20", "--soft-epochs", "0", "--hard-epochs", "1",
                 "--batch-size", "64", "--no-progress"]) == 0
    saved = yaml.safe_load((Path(out) / "finetune" / "config.yaml").read_text())
    assert saved["distill_weight"] == 1.0 and saved["lr"] == 0.01  # from the preset
    assert saved["batch_size"] == 64 and saved["soft_epochs"] == 0  # flags win


def test_convert_defaults_work_on_every_bundled_dataset_and_help_shows_them(
        checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """digits has 1,438 training images, fewer than the default calib_size: the default takes them all, with a
    note; --help shows every option's default; convert says a tree needs fine-tuning."""
    assert main(["convert", "--checkpoint", str(checkpoint), "--dataset", "digits", "--out", str(tmp_path / "t"),
                 "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "calibrating on all 1,438 training images of digits" in captured.err
    assert "next: `sigmab finetune" in captured.out
    assert json.loads((tmp_path / "t" / "tree.json").read_text())["convert_config"]["calib_size"] is None
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["convert"]
    text = " ".join(sub.format_help().split())
    assert "--kmeans-restarts INT k-means restarts (best cost wins) (default: 5)" in text
    assert "--widths YAML inner-channel keep ratio per depth, as YAML, e.g. '[0.5, 0.25]' (default: per arch" in text
    assert text.count("(default:") >= 10


def test_a_conversion_killed_after_tree_json_leaves_no_folder(checkpoint: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import sigmab.tree.spec as spec_module

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    out = tmp_path / "t"
    monkeypatch.setattr(spec_module, "save_tree_weights", killed)  # between tree.json and tree.safetensors
    with pytest.raises(KeyboardInterrupt):
        convert_checkpoint(checkpoint, dataset="digits", out=out, cfg=ConvertConfig(**CFG))
    monkeypatch.undo()
    assert not out.exists()
    convert_checkpoint(checkpoint, dataset="digits", out=out, cfg=ConvertConfig(**CFG))  # a rerun is accepted
    assert (out / "tree.safetensors").is_file()


def test_an_unwritable_out_fails_before_calibration(checkpoint: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ConfigError, match="cannot write the tree folder"):
        convert_checkpoint(checkpoint, dataset="digits", out=tmp_path / "file" / "t", cfg=ConvertConfig(**CFG))


def test_convert_from_pruned_starts_every_path_as_the_fine_tuned_prune(checkpoint: Path, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from sigmab.data import load_split
    from sigmab.prune.spec import load_pruned

    assert main(["prune", "--checkpoint", str(checkpoint), "--dataset", "digits", "--out", str(tmp_path / "pruned"),
                 "--criterion", "fpgm", "--target-reduction", "0.5", "--epochs", "1", "--no-progress"]) == 0
    assert main(["convert", "--from-pruned", str(tmp_path / "pruned"), "--out", str(tmp_path / "tree"),
                 "--depth", "1", "--calib-size", "300", "--no-progress"]) == 0
    assert "every path is the prune" in capsys.readouterr().out
    net, _ = load_pruned(tmp_path / "pruned")  # its fine-tuned weights
    tree, spec = load_tree(tmp_path / "tree")
    assert spec.convert_config["source"]["dataset"] == "digits" and spec.backbone is not None
    test = load_split("digits", "test")
    x, _ = next(iter(test.loader(batch_size=128, mean=spec.dense_meta.mean, std=spec.dense_meta.std)))
    with torch.no_grad():
        reference = net(x)
        for leaf in tree.leaves:
            assert_same_function(tree.forward_path(x, leaf), reference, ulps=64)  # same weights, same kernels
    report = json.loads((tmp_path / "tree" / "report.json").read_text())
    pruned_params = sum(p.numel() for p in net.parameters())
    assert abs(report["active_params_mean"] - pruned_params) < 0.02 * pruned_params  # + the router
    # Cluster channels from the dense checkpoint the prune recorded, the backbone from the prune's sliced weights:
    # the same active parameters; the backbone's output is the dense model's.
    assert main(["convert", "--from-pruned", str(tmp_path / "pruned"), "--out", str(tmp_path / "cluster"),
                 "--depth", "1", "--calib-size", "300", "--from-pruned-channels", "cluster",
                 "--from-pruned-weights", "sliced", "--no-progress"]) == 0
    cluster, cluster_spec = load_tree(tmp_path / "cluster")
    assert cluster_spec.convert_config["from_pruned_channels"] == "cluster"
    sliced, _ = load_pruned(tmp_path / "pruned", weights="pruned.safetensors")
    with torch.no_grad():
        assert_same_function(cluster.backbone(x), tree_backbone_of(sliced, len(cluster.backbone) - 1)(x), ulps=64)
    cluster_report = json.loads((tmp_path / "cluster" / "report.json").read_text())
    assert abs(cluster_report["active_params_mean"] - report["active_params_mean"]) <= 2  # router sizes aside
    assert main(["convert", "--from-pruned", str(tmp_path / "pruned"), "--out", str(tmp_path / "t2"),
                 "--dataset", "digits"]) == 2
    assert "--dataset cannot be used with --from-pruned" in capsys.readouterr().err
    assert main(["convert", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "t3")]) == 2
    assert "needs --dataset" in capsys.readouterr().err
    assert not (tmp_path / "t2").exists() and not (tmp_path / "t3").exists()


def tree_backbone_of(net: torch.nn.Module, blocks: int) -> torch.nn.Sequential:
    """The stem and first ``blocks`` blocks of a pruned network."""
    return torch.nn.Sequential(net.stem, *net.blocks[:blocks])
