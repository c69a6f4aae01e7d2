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
