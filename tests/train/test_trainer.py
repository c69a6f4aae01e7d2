import csv
from pathlib import Path

import pytest
import torch
import yaml

from sigmab.errors import CheckpointError, ConfigError
from sigmab.models import load_checkpoint, load_model
from sigmab.train import TrainConfig, driver, train

TINY = dict(arch="small_cnn", arch_kwargs={"widths": [8, 16, 32]}, dataset="digits", batch_size=64, lr=0.05)


def test_digits_training_learns_and_fills_the_run_folder(tmp_path: Path) -> None:
    result = train(TrainConfig(**TINY, epochs=6), tmp_path, progress=False)
    assert result.final.top1 > 85.0 and result.eval_split == "test" and result.final.n_samples == 359
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["epochs"] == 6
    reloaded = load_model(tmp_path / "model.safetensors")
    assert reloaded.meta.mean == (0.3053,) and reloaded.meta.arch_kwargs == {"widths": [8, 16, 32]}
    x = torch.randn(3, 1, 8, 8)
    torch.testing.assert_close(reloaded(x), result.model(x), rtol=0, atol=0)


@pytest.mark.parametrize("amp", ["off", "bf16"])
def test_resumed_run_equals_an_uninterrupted_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, amp: str) -> None:
    """Bit for bit in fp32 and under bf16 autocast (channels-last either way)."""
    cfg = TrainConfig(**TINY, epochs=3, amp=amp)
    straight = train(cfg, tmp_path / "a", progress=False)
    real_epoch = driver.train_epoch

    def killed_in_epoch_3(*args, desc: str, **kwargs):
        if desc.startswith("epoch 3/"):
            raise KeyboardInterrupt
        return real_epoch(*args, desc=desc, **kwargs)

    monkeypatch.setattr(driver, "train_epoch", killed_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "b", progress=False)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "b" / "last.pt").extra["epoch"] == 1
    resumed = train(cfg, tmp_path / "b", resume=True, progress=False)
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    assert straight.history == [{**r, "epoch_seconds": s["epoch_seconds"]} for r, s in
                                zip(resumed.history, straight.history)]


def test_held_out_validation_is_reported_instead_of_test(tmp_path: Path) -> None:
    result = train(TrainConfig(**TINY, epochs=1, val_fraction=0.25), tmp_path, progress=False)
    assert result.eval_split == "val" and result.final.n_samples == 360  # 25% of 1438


def test_run_folder_guards(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(TrainConfig(**TINY, epochs=1), tmp_path, resume=True, progress=False)
    train(TrainConfig(**TINY, epochs=1), tmp_path, progress=False)
    with pytest.raises(ConfigError, match="already holds a run"):
        train(TrainConfig(**TINY, epochs=1), tmp_path, progress=False)


def test_config_values_are_validated() -> None:
    with pytest.raises(ConfigError, match="epochs must be >= 1"):
        TrainConfig(epochs=0)
    with pytest.raises(ConfigError, match="val_fraction"):
        TrainConfig(val_fraction=1.5)


def test_bf16_autocast_and_data_on_device_train_float32_weights(tmp_path: Path) -> None:
    plain = train(TrainConfig(**TINY, epochs=1, device="cpu"), tmp_path / "plain", progress=False)
    kept = train(TrainConfig(**TINY, epochs=1, device="cpu", data_on_device=True), tmp_path / "kept", progress=False)
    for (k, a), b in zip(plain.model.state_dict().items(), kept.model.state_dict().values()):
        assert torch.equal(a, b), k  # keeping the data on the device changes no batch
    mixed = train(TrainConfig(**TINY, epochs=2, device="cpu", amp="bf16"), tmp_path / "bf16", progress=False)
    assert all(p.dtype == torch.float32 for p in mixed.model.parameters())
    assert mixed.final.top1 > 50  # it learns (CPU autocast runs the convolutions in bfloat16)
    differs = any(not torch.equal(a, b) for a, b in zip(plain.model.parameters(), mixed.model.parameters()))
    assert differs  # the forward pass really ran in reduced precision
    assert yaml.safe_load((tmp_path / "bf16" / "config.yaml").read_text())["amp"] == "bf16"


def test_amp_auto_resolves_to_what_the_device_runs_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    from sigmab.train import precision

    for fast, expected in ((True, "bf16"), (False, "off")):
        monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda fast=fast: fast)
        assert TrainConfig(**TINY, device="cpu").amp == expected  # the default is auto, resolved on creation
    assert TrainConfig(**TINY, device="cpu", amp="off").amp == "off"  # an explicit choice is kept


def test_amp_auto_trains_a_depthwise_model_in_fp32_on_the_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """bf16 ran MobileNetV2 slower than fp32 on the CPU (benchmarks.train_speed): auto picks fp32 for any model with
    depthwise convolutions there, and says so in the saved config; other models keep bf16, explicit choices stay."""
    from sigmab.train import precision

    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)
    depthwise = dict(TINY, arch="mobilenet_v2_cifar", arch_kwargs={"width_mult": 0.25}, dataset="digits")
    for name, kwargs, expected in (("mv2", depthwise, "off"), ("cnn", TINY, "bf16"),
                                   ("mv2-bf16", {**depthwise, "amp": "bf16"}, "bf16")):
        cfg = TrainConfig(**kwargs, epochs=1, device="cpu")
        train(cfg, tmp_path / name, progress=False)
        assert cfg.amp == expected and yaml.safe_load((tmp_path / name / "config.yaml").read_text())["amp"] == expected
    assert precision.has_depthwise_conv(load_model(tmp_path / "mv2" / "model.safetensors"))


def test_amp_choices_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="amp must be one of auto, off, bf16, fp16"):
        TrainConfig(amp="fp8")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
            train(TrainConfig(**TINY, epochs=1, device="cpu", amp="fp16"), tmp_path, progress=False)
        assert not (tmp_path / "last.pt").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on a GPU machine)")
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_training_on_the_gpu(tmp_path: Path, amp: str) -> None:
    result = train(TrainConfig(**TINY, epochs=4, device="cuda", amp=amp, data_on_device=True), tmp_path,
                   progress=False)
    assert result.final.top1 > 80 and all(p.dtype == torch.float32 for p in result.model.parameters())
