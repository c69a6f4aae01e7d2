"""The one training driver: a diverged run stops with one clear error and saves nothing from the bad epoch."""

from pathlib import Path

import pytest

from sigmab.cli import main
from sigmab.errors import TrainingError
from sigmab.train import TrainConfig, train
from tests.helpers import digits_resnet_checkpoint

TINY = dict(arch="small_cnn", arch_kwargs={"widths": [8, 16, 32]}, dataset="digits", batch_size=64)


def test_a_non_finite_loss_stops_training_before_anything_is_saved(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="training diverged: the loss is (nan|inf)"):
        train(TrainConfig(**TINY, epochs=2, lr=1e6), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "model.safetensors").exists() and not (tmp_path / "run" / "last.pt").exists()


def test_a_diverged_finetune_is_an_error_and_keeps_the_converted_weights(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture) -> None:
    checkpoint = digits_resnet_checkpoint(tmp_path / "dense", epochs=1)
    assert main(["convert", "--checkpoint", str(checkpoint), "--dataset", "digits",
                 "--out", str(tmp_path / "tree"), "--depth", "1", "--calib-size", "200", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["finetune", str(tmp_path / "tree"), "--lr", "1e6", "--soft-epochs", "1", "--hard-epochs", "1",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sigmab: error: training diverged") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "tree" / "finetuned.safetensors").exists()  # `sigmab eval` keeps reading tree.safetensors


def test_an_empty_training_split_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import numpy as np

    npz = tmp_path / "empty.npz"
    np.savez(npz, x_train=np.zeros((0, 32, 32, 3), np.uint8), y_train=np.zeros((0,), np.uint8),
             x_test=np.zeros((4, 32, 32, 3), np.uint8), y_test=np.arange(4, dtype=np.uint8))
    assert main(["train", "--arch", "resnet8", "--dataset", "cifar10", "--data-root", str(npz), "--epochs", "1",
                 "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "holds no samples" in capsys.readouterr().err and not (tmp_path / "run" / "model.safetensors").exists()


def test_a_teacher_that_would_be_ignored_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    checkpoint = digits_resnet_checkpoint(tmp_path / "dense", epochs=1)
    assert main(["prune", "--checkpoint", str(checkpoint), "--dataset", "digits", "--out", str(tmp_path / "p"),
                 "--keep-ratio", "0.5", "--epochs", "1", "--distill-weight", "0", "--teacher", "/nonexistent.th",
                 "--no-progress"]) == 2
    assert "would not be used" in capsys.readouterr().err and not (tmp_path / "p").exists()  # before any work
