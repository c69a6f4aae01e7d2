import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from sigmab.cli import main
from tests.conftest import require_shared

TINY_FLAGS = ["--arch", "small_cnn", "--arch-kwargs", "{widths: [8, 16, 32]}", "--dataset", "digits",
              "--batch-size", "64", "--lr", "0.05", "--no-progress"]


def _json_out(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_train_then_eval_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--out", str(tmp_path), "--epochs", "2", *TINY_FLAGS]) == 0
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(tmp_path / "model.safetensors"), "--dataset", "digits", "--json"]) == 0
    report = _json_out(capsys)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {"top1", "params", "macs", "n_samples"} <= set(report)
    assert report["n_samples"] == 359 and report["params"] == summary["params"] and report["macs"] == summary["macs"]
    assert report["top1"] == pytest.approx(summary["top1"], abs=1e-3)


def test_resume_extends_a_finished_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--out", str(tmp_path), "--epochs", "1", *TINY_FLAGS]) == 0
    assert main(["train", "--out", str(tmp_path), "--resume", "--epochs", "2", "--no-progress"]) == 0
    rows = (tmp_path / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 3  # header + 2 epochs
    history = yaml.safe_load((tmp_path / "config-history.yaml").read_text())  # the first epoch's settings stay
    assert [(h["until_epoch"], h["config"]["epochs"]) for h in history] == [(1, 1)]


@pytest.mark.slow
def test_demo_runs_the_whole_pipeline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path / "demo"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "SigmaB (hard)" in out and "active-parameter reduction" in out
    report = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert report["top1"] > 90.0 and report["dense_top1"] > 95.0
    assert report["active_params_mean"] < 0.5 * report["dense_params"]
    assert (tmp_path / "demo" / "tree.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "demo" / "tree" / "finetuned.safetensors").is_file()


@pytest.mark.parametrize(("argv", "message"), [
    (["eval", "--checkpoint", "x.pt", "--arch", "resnet99", "--dataset", "cifar10"], "unknown architecture"),
    (["eval", "--checkpoint", "missing.pt", "--arch", "resnet20", "--dataset", "cifar10"], "checkpoint not found"),
    (["train", "--out", "{tmp}", "--dataset", "cifar10", "--data-root", "{tmp}/none.npz"], "npz file not found"),
    (["train", "--out", "{tmp}", "--config", "{tmp}/none.yaml"], "config not found"),
])
def test_user_errors_are_one_line_without_traceback(tmp_path: Path, argv: list[str], message: str) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    proc = subprocess.run([sys.executable, "-m", "sigmab", *argv], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sigmab: error:") and message in lines[0]
    assert not (tmp_path / "config.yaml").exists()  # stopped before any work


def test_misfit_checkpoint_and_dataset_mismatch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--out", str(tmp_path), "--epochs", "1", *TINY_FLAGS]) == 0
    ckpt = str(tmp_path / "model.safetensors")
    assert main(["eval", "--checkpoint", ckpt, "--arch", "resnet20", "--dataset", "digits"]) == 2
    assert main(["eval", "--checkpoint", ckpt, "--dataset", "cifar10", "--data-root", "x.npz"]) == 2
    err = capsys.readouterr().err
    assert "holds a small_cnn model, but --arch resnet20" in err
    assert "expects 1-channel inputs and 10 classes; cifar10 has 3 and 10" in err


@pytest.mark.shared
@pytest.mark.slow
def test_eval_of_shared_resnet20_prints_its_top1(capsys: pytest.CaptureFixture[str]) -> None:
    weights, data = require_shared("weights/resnet20-12fca82f.th", "data/cifar10.npz.xz")
    assert main(["eval", "--checkpoint", str(weights), "--arch", "resnet20", "--dataset", "cifar10",
                 "--data-root", str(data), "--json"]) == 0
    report = _json_out(capsys)
    assert report["top1"] == 91.73 and report["params"] == 269_722 and report["n_samples"] == 10_000


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.parametrize(("arch", "top1", "params"), [("resnet20", 68.83, 278_324)])
def test_eval_of_shared_cifar100_resnets_prints_their_top1(arch: str, top1: float, params: int,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The projection-shortcut layout, recognised from the file; CIFAR-100 read from its xz archive (ResNet-56's
    72.62% is `python -m benchmarks.dense_eval`'s, the same command on 3x the compute)."""
    weights, data = require_shared(f"weights/cifar100_{arch}.pth", "data/cifar100.npz.xz")
    assert main(["eval", "--checkpoint", str(weights), "--arch", arch, "--dataset", "cifar100",
                 "--data-root", str(data), "--json", "--no-progress"]) == 0
    report = _json_out(capsys)
    assert report["top1"] == top1 and report["params"] == params and report["n_samples"] == 10_000


def test_image_folder_runs_through_train_convert_finetune_prune_and_eval(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.data.fixtures import write_image_folder

    sizes = ((300, 200), (180, 260), (256, 256), (64, 80), (120, 90), (200, 200))
    data = write_image_folder(tmp_path / "data", "train", sizes=sizes)
    write_image_folder(data, "val", sizes=sizes[:2])
    common = ["--dataset", "imagefolder-32", "--data-root", str(data)]
    assert main(["train", "--out", str(tmp_path / "dense"), "--arch", "resnet18", "--arch-kwargs",
                 "{width: 0.125, stem: cifar}", "--epochs", "1", "--batch-size", "4", "--no-progress",
                 *common]) == 0
    checkpoint = str(tmp_path / "dense" / "model.safetensors")
    assert main(["convert", "--checkpoint", checkpoint, "--out", str(tmp_path / "tree"), "--depth", "1",
                 "--calib-size", "12", "--min-leaf-samples", "2", *common]) == 0
    assert main(["finetune", str(tmp_path / "tree"), "--soft-epochs", "1", "--hard-epochs", "0", "--batch-size", "4",
                 "--workers", "1", "--no-progress"]) == 0
    assert main(["prune", "--checkpoint", checkpoint, "--out", str(tmp_path / "pruned"), "--criterion", "hrank",
                 "--calib-size", "6", "--target-reduction", "0.3", *common]) == 0
    capsys.readouterr()
    for folder in ("tree", "pruned"):
        assert main(["eval", str(tmp_path / folder), "--json"]) == 0
        report = _json_out(capsys)
        assert report["n_samples"] == 4 and report["dataset"] == "imagefolder-32"  # the val/ folder: 2 per class
    assert main(["eval", "--checkpoint", checkpoint, "--json", *common]) == 0
    dense = _json_out(capsys)
    assert dense["n_samples"] == 4 and dense["arch"] == "resnet18"
    (data / "val" / "dog").rename(data / "val" / "wolf")
    assert main(["eval", "--checkpoint", checkpoint, *common]) == 2
    assert "class folders differ from the training split's" in capsys.readouterr().err


def test_point_sets_run_through_train_convert_finetune_prune_and_eval(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.data.fixtures import write_modelnet40_h5

    data = tmp_path / "modelnet40_ply_hdf5_2048"
    write_modelnet40_h5(data, per_file=16)
    common = ["--dataset", "modelnet40", "--data-root", str(data)]
    kwargs = ("{centers: [32, 8], radii: [0.4, 0.8], neighbors: [8, 8], mlps: [[8, 16], [16, 24], [24, 32]], "
              "hidden: [24, 16]}")
    assert main(["train", "--out", str(tmp_path / "dense"), "--arch", "pointnet2_ssg", "--arch-kwargs", kwargs,
                 "--epochs", "1", "--batch-size", "8", "--no-progress", *common]) == 0
    checkpoint = str(tmp_path / "dense" / "model.safetensors")
    assert main(["convert", "--checkpoint", checkpoint, "--out", str(tmp_path / "tree"), "--depth", "1",
                 "--calib-size", "32", "--min-leaf-samples", "4", "--residual-widths", "[0.5]", *common]) == 0
    assert main(["finetune", str(tmp_path / "tree"), "--soft-epochs", "1", "--hard-epochs", "0", "--batch-size", "8",
                 "--no-progress"]) == 0
    assert main(["prune", "--checkpoint", checkpoint, "--out", str(tmp_path / "pruned"), "--criterion", "fpgm",
                 "--target-reduction", "0.3", *common]) == 0
    capsys.readouterr()
    for folder in ("tree", "pruned"):
        assert main(["eval", str(tmp_path / folder), "--json"]) == 0
        report = _json_out(capsys)
        assert report["n_samples"] == 16 and report["params"] < report["dense_params"]
    assert main(["prune", "--checkpoint", checkpoint, "--out", str(tmp_path / "all"), "--scope", "all",
                 "--keep-ratio", "0.5", *common]) == 2
    assert "scope 'inner'" in capsys.readouterr().err


def test_top_level_help_is_a_whole_sentence_without_markup(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "``" not in text and "input dispatcher." in " ".join(text.split())


def test_a_torchvision_checkpoint_runs_through_convert_prune_and_eval_by_its_zoo_name(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--arch torchvision:NAME``: a state_dict saved from torchvision's own model, nothing downloaded; the run
    folders rebuild the model by that name."""
    from tests.data.fixtures import write_image_folder
    from tests.helpers import torchvision_models

    tv = torchvision_models()
    sizes = ((300, 200), (180, 260), (256, 256), (64, 80), (120, 90), (200, 200))
    data = write_image_folder(tmp_path / "data", "train", sizes=sizes)
    write_image_folder(data, "val", sizes=sizes[:2])
    torch.manual_seed(0)
    torch.save(tv.mobilenet_v3_small(num_classes=2).state_dict(), tmp_path / "mv3.pth")
    common = ["--dataset", "imagefolder-32", "--data-root", str(data)]
    zoo = ["--checkpoint", str(tmp_path / "mv3.pth"), "--arch", "torchvision:mobilenet_v3_small"]
    assert main(["convert", *zoo, "--out", str(tmp_path / "tree"), "--depth", "1", "--calib-size", "12",
                 "--min-leaf-samples", "2", *common]) == 0
    assert main(["prune", *zoo, "--out", str(tmp_path / "pruned"), "--criterion", "l1", "--target-reduction", "0.3",
                 *common]) == 0
    capsys.readouterr()
    for folder, spec in (("tree", "tree.json"), ("pruned", "pruned.json")):
        assert '"arch": "torchvision:mobilenet_v3_small"' in (tmp_path / folder / spec).read_text()
        assert main(["eval", str(tmp_path / folder), "--json"]) == 0  # rebuilt from that name
        assert _json_out(capsys)["n_samples"] == 4


def test_models_lists_one_name_per_line_and_names_the_zoos_apart(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out, err = capsys.readouterr()
    assert {"resnet56", "mobilenet_v2_cifar"} <= set(out.split("\n")) and ":" not in out
    assert "torchvision:NAME or timm:NAME" in err
