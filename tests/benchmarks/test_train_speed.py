"""The training-speed benchmark: which rows it measures on which CPU, the compile payback arithmetic, one results
file per kind of CPU, and the report section it renders."""

import pytest
import torch
from torch import nn

from benchmarks import train_speed
from benchmarks.train_speed import Case, _compile_row, _plain_loss, measure_models, out_path, train_speed_section
from sigmab.train import precision


def _tiny_cases() -> dict[str, Case]:
    conv = Case(lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(144, 5)), "dense", _plain_loss, 5,
                input_shape=(3, 8, 8))
    points = Case(lambda: nn.Sequential(nn.Conv1d(3, 4, 1), nn.Flatten(), nn.Linear(64, 5)), "dense", _plain_loss,
                  5, input_shape=(3, 16), batch_size=4)
    return {"conv": conv, "points": points}


def test_without_fast_bf16_only_the_first_model_gets_a_bf16_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(train_speed, "CASES", _tiny_cases())
    rows = measure_models(["conv", "points"], batch_size=8, steps=1, repeats=1, bf16_fast=False)
    settings = {(r["model"], r["amp"], r["memory_format"]) for r in rows}
    assert settings == {("conv", "off", "contiguous"), ("conv", "off", "channels_last"),
                        ("conv", "bf16", "channels_last"), ("points", "off", "contiguous")}
    auto = {(r["model"], r["amp"], r["memory_format"]) for r in rows if r["auto"]}
    assert auto == {("conv", "off", "channels_last"), ("points", "off", "contiguous")}
    assert {r["model"]: r["batch_size"] for r in rows} == {"conv": 8, "points": 4}
    assert all(r["speedup_vs_fp32_nchw"] == 1.0 for r in rows if r["memory_format"] == "contiguous"
               and r["amp"] == "off")


def test_with_fast_bf16_every_model_gets_its_bf16_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(train_speed, "CASES", _tiny_cases())
    rows = measure_models(["conv", "points"], batch_size=8, steps=1, repeats=1, bf16_fast=True)
    assert {(r["model"], r["amp"], r["memory_format"]) for r in rows if r["auto"]} == {
        ("conv", "bf16", "channels_last"), ("points", "bf16", "contiguous")}


def test_compile_payback_counts_the_steps_that_repay_the_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    case = _tiny_cases()["conv"]
    x, y = torch.randn(2, 3, 8, 8), torch.zeros(2, dtype=torch.long)
    # 0.5 s per compiled step, 11 s for the first two: 10 s of compile, repaid by 20 steps of 0.5 s saved
    monkeypatch.setattr(train_speed, "_step_times", lambda *a, **k: (0.5, 11.0))
    row = _compile_row("conv", case, nn.Identity(), x, y, amp="off", fmt="channels_last", eager_sec=1.0, steps=3,
                       batch=128)
    assert (row["compile_seconds"], row["payback_steps"], row["epoch_steps"]) == (10.0, 20, 352)
    assert row["pays_back_in_one_epoch"] and row["speedup_vs_eager"] == 2.0
    slower = _compile_row("conv", case, nn.Identity(), x, y, amp="off", fmt="channels_last", eager_sec=0.4,
                          steps=3, batch=128)
    assert slower["payback_steps"] is None and not slower["pays_back_in_one_epoch"]

    def fails(*args, **kwargs):
        raise RuntimeError("inductor cannot\nsecond line")

    monkeypatch.setattr(train_speed, "_step_times", fails)
    failed = _compile_row("conv", case, nn.Identity(), x, y, amp="off", fmt="channels_last", eager_sec=1.0,
                          steps=3, batch=128)
    assert failed["error"] == "RuntimeError: inductor cannot"


def test_each_kind_of_cpu_writes_its_own_file(monkeypatch: pytest.MonkeyPatch) -> None:
    assert out_path("Intel(R) Xeon(R) Processor", "amx").name == "train_speed-intel-xeon-processor-amx.json"
    assert out_path("AMD EPYC", "avx2").name == "train_speed-amd-epyc-avx2.json"
    for flags, isa in (({"avx2", "avx512f", "amx_bf16"}, "amx"), ({"avx2", "avx512f", "avx512_bf16"}, "avx512-bf16"),
                       ({"avx2", "avx512f"}, "avx512"), ({"avx2"}, "avx2"), (set(), "other")):
        monkeypatch.setattr(precision, "cpu_flags", lambda flags=flags: frozenset(flags))
        assert precision.cpu_isa() == isa


def test_the_section_says_what_auto_picks_and_whether_compile_pays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(train_speed, "CASES", _tiny_cases())
    rows = measure_models(["conv"], batch_size=8, steps=1, repeats=1, bf16_fast=False)
    rows.append({"model": "conv", "phase": "dense", "amp": "off", "memory_format": "channels_last", "compile": True,
                 "batch_size": 8, "seconds_per_step": 0.1, "samples_per_s": 80.0, "speedup_vs_eager": 1.5,
                 "compile_seconds": 30.0, "payback_steps": 900, "epoch_steps": 352, "pays_back_in_one_epoch": False})
    result = {"rows": rows, "batch_size": 8, "steps": 1, "repeats": 1, "cpu_model": "AMD EPYC", "cpu_isa": "avx2",
              "bf16_fast": False, "machine": {"cpu_count": 2, "torch_threads": 2, "torch": "2.13.0+cpu"},
              "_file": "benchmarks/results/train_speed/train_speed-amd-epyc-avx2.json"}
    text = "\n".join(train_speed_section([result]))
    assert "### AMD EPYC (avx2, fast bf16: no)" in text
    assert "`--amp auto` picks fp32 on this CPU" in text
    assert "| conv | dense | fp32 channels-last | 30 s |" in text and "| 900 steps | no of 352 |" in text
