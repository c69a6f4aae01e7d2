from pathlib import Path

import pytest

from sigmab.cli import main
from tests.helpers import digits_resnet_checkpoint


def test_nested_command_prints_every_route_and_rejects_bad_levels(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = str(digits_resnet_checkpoint(tmp_path / "dense", epochs=1))
    assert main(["nested", "--checkpoint", checkpoint, "--dataset", "digits", "--epochs", "0", "--sparsities",
                 "[0.0, 0.9]", "--out", str(tmp_path / "n"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    dense_top1 = out.split("top-1 ")[1].split("%")[0]
    assert f"{'L0':<12} {float(dense_top1):>7.2f}%" in out  # sparsity 0 without training is the dense model
    assert "L0->L1@" in out and (tmp_path / "n" / "report.json").is_file()
    assert main(["nested", "--checkpoint", checkpoint, "--dataset", "digits", "--sparsities", "[0.9, 0.5]",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "must increase" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_nested_resume_needs_no_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    import sigmab.train.driver as driver

    checkpoint = str(digits_resnet_checkpoint(tmp_path / "dense", epochs=1))
    argv = ["--dataset", "digits", "--epochs", "2", "--sparsities", "[0.5, 0.8]", "--calibration-batches", "0",
            "--out", str(tmp_path / "n"), "--no-progress"]
    real, calls = driver.train_epoch, []

    def killed_in_epoch_2(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(driver, "train_epoch", killed_in_epoch_2)
    assert main(["nested", "--checkpoint", checkpoint, *argv]) == 130
    monkeypatch.undo()
    assert main(["nested", "--resume", *argv]) == 0  # the dense checkpoint comes from last.pt
    assert (tmp_path / "n" / "report.json").is_file()
    assert main(["nested", "--dataset", "digits", "--out", str(tmp_path / "m")]) == 2
    assert "--checkpoint is required" in capsys.readouterr().err
