"""Where training runs: device choices are checked up front; on a GPU machine, every loop trains there."""

import json
from pathlib import Path

import pytest
import torch

from sigmab.cli import main
from sigmab.data import load_split
from sigmab.errors import ConfigError
from sigmab.eval import evaluate
from sigmab.models import load_model
from sigmab.prune.pipeline import evaluate_pruned_folder
from sigmab.train import TrainConfig, train
from sigmab.train.distributed import resolve_device
from sigmab.tree.report import evaluate_tree_folder

TINY = dict(arch="resnet8", arch_kwargs={"widths": [8, 16, 32]}, dataset="digits", batch_size=64, lr=0.05)


def test_device_choices_are_checked() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="device must be auto, cpu, cuda or cuda:N"):
        TrainConfig(device="tpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on a GPU machine)")
def test_training_fine_tuning_and_pruning_run_on_the_gpu(tmp_path: Path) -> None:
    result = train(TrainConfig(epochs=2, device="cuda", **TINY), tmp_path / "dense", progress=False)
    assert next(result.model.parameters()).device.type == "cpu"  # handed back on the CPU
    summary = json.loads((tmp_path / "dense" / "summary.json").read_text())
    weights = tmp_path / "dense" / "model.safetensors"
    model = load_model(weights)
    test = load_split("digits", "test")
    cpu_top1 = evaluate(model, test.loader(batch_size=256, mean=model.meta.mean, std=model.meta.std)).top1
    assert abs(cpu_top1 - summary["top1"]) <= 0.6  # the GPU's evaluation, reproduced on the CPU
    assert summary["top1"] > 60
    assert main(["convert", "--checkpoint", str(weights), "--dataset", "digits", "--out", str(tmp_path / "tree"),
                 "--depth", "1", "--calib-size", "300"]) == 0
    assert main(["finetune", str(tmp_path / "tree"), "--soft-epochs", "1", "--hard-epochs", "1", "--device", "cuda",
                 "--no-progress"]) == 0
    tree_report = evaluate_tree_folder(tmp_path / "tree")
    assert tree_report["top1"] > 50 and tree_report["weights"] == "finetuned.safetensors"
    assert main(["prune", "--checkpoint", str(weights), "--dataset", "digits", "--out", str(tmp_path / "pruned"),
                 "--keep-ratio", "0.5", "--epochs", "1", "--device", "cuda", "--no-progress"]) == 0
    assert evaluate_pruned_folder(tmp_path / "pruned")["top1"] > 40
