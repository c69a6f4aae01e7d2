import json
from pathlib import Path

import pytest
import torch
import yaml

from sigmab.cli import main
from sigmab.errors import CheckpointError
from sigmab.prune import PruneConfig, load_pruned, prune, save_pruned
from sigmab.prune.pipeline import evaluate_pruned_folder
from tests.helpers import digits_resnet_checkpoint, tiny_resnet


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return digits_resnet_checkpoint(tmp_path_factory.mktemp("dense"), epochs=3)


def test_reload_rebuilds_the_pruned_network_exactly(tmp_path: Path) -> None:
    net, spec = prune(tiny_resnet(), PruneConfig(criterion="fpgm", scope="all", keep_ratio=0.4))
    save_pruned(net, spec, tmp_path)
    again, spec_again = load_pruned(tmp_path)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(again(x), net(x))
    assert spec_again.to_json() == spec.to_json()
    (tmp_path / "pruned.json").write_text(json.dumps({"format": "sigmab.tree/1"}))
    with pytest.raises(CheckpointError, match="not a sigmab pruned-model spec"):
        load_pruned(tmp_path)


def test_cli_prune_finetune_eval_and_resume(checkpoint: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p"
    argv = ["prune", "--checkpoint", str(checkpoint), "--dataset", "digits", "--out", str(out), "--criterion",
            "hrank", "--target-reduction", "0.5", "--calib-size", "64", "--epochs", "2", "--batch-size", "64",
            "--lr", "0.02", "--distill-weight", "1.0", "--no-progress"]
    assert main(argv) == 0
    assert main(["eval", str(out), "--json", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["weights"] == "finetuned.safetensors" and report["method"] == "hrank"
    assert report["active_params_mean"] == report["stored_params"] <= 0.5 * report["dense_params"]
    assert report["dense_top1"] > 80.0 and report["top1"] > report["dense_top1"] - 10.0
    sliced = evaluate_pruned_folder(out, split="test", weights="pruned.safetensors", with_dense=False)
    assert sliced["weights"] == "pruned.safetensors" and sliced["top1"] != report["top1"]  # before fine-tuning
    rows = (out / "finetune" / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 3
    saved = yaml.safe_load((out / "finetune" / "config.yaml").read_text())
    assert saved["distill_weight"] == 1.0 and saved["epochs"] == 2
    # a second run into the same folder is refused; --resume of a finished run re-evaluates only
    assert main(argv) == 2
    assert "already holds a pruned model" in capsys.readouterr().err
    assert main(["prune", "--out", str(out), "--resume", "--no-progress"]) == 0
    assert len((out / "finetune" / "metrics.csv").read_text().strip().splitlines()) == 3


@pytest.mark.parametrize(("extra", "message"), [
    (["--keep-ratio", "0.5", "--target-reduction", "0.5"], "exactly one of keep_ratio and target_reduction"),
    (["--keep-ratio", "0.5", "--group-keep", "{nope: 0.5}"], "unknown groups ['nope']"),
    (["--keep-ratio", "0.5", "--arch", "resnet20"], "holds a resnet8 model, but --arch resnet20"),
])
def test_cli_prune_errors_stop_before_writing(checkpoint: Path, tmp_path: Path, extra: list[str], message: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p"
    assert main(["prune", "--checkpoint", str(checkpoint), "--dataset", "digits", "--out", str(out),
                 "--epochs", "0", "--no-progress", *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def _killed(*args, **kwargs):
    raise KeyboardInterrupt


def test_a_prune_killed_in_its_first_fine_tuning_epoch_resumes(checkpoint: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import sigmab.train.driver as driver

    out = tmp_path / "p"
    argv = ["prune", "--checkpoint", str(checkpoint), "--dataset", "digits", "--out", str(out), "--keep-ratio",
            "0.5", "--epochs", "1", "--no-progress"]
    monkeypatch.setattr(driver, "train_epoch", _killed)
    assert main(argv) == 130  # interrupted: the pruned folder is complete, fine-tuning has no epoch yet
    monkeypatch.undo()
    assert (out / "pruned.json").is_file() and not (out / "finetune" / "last.pt").exists()
    assert main(["prune", "--out", str(out), "--resume", "--no-progress"]) == 0
    assert (out / "finetuned.safetensors").is_file()


def test_a_prune_killed_while_pruning_leaves_no_folder(checkpoint: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import sigmab.prune.pipeline as pipeline

    out = tmp_path / "p"
    argv = ["prune", "--checkpoint", str(checkpoint), "--dataset", "digits", "--out", str(out), "--keep-ratio",
            "0.5", "--epochs", "0", "--no-progress"]
    monkeypatch.setattr(pipeline, "atomic_write_json", _killed)  # dies between the weights and the report
    assert main(argv) == 130
    monkeypatch.undo()
    assert not out.exists() and not list(tmp_path.glob(".p.partial*"))
    assert main(argv) == 0 and (out / "report.json").is_file()  # a rerun is accepted
