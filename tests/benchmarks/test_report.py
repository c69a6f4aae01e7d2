import json
from pathlib import Path

import pytest

from benchmarks.report import load_results, render


def _write(folder: Path, name: str, payload: dict) -> None:
    (folder / name).write_text(json.dumps(payload))


MACHINE = {"cpu_count": 2, "torch_threads": 2, "torch": "2.13.0", "python": "3.11", "processor": "x86_64"}


def _valid(folder: Path) -> None:
    stats = lambda m: {"median": m, "min": m, "max": m, "runs": [m]}  # noqa: E731
    _write(folder, "eval_speed_resnet56.json", {
        "benchmark": "eval_speed", "model": "resnet56", "n_samples": 10000, "batch_size": 256, "top1": [93.39],
        "cli_seconds": stats(18.0), "loop_seconds_nchw": stats(22.0), "loop_seconds_channels_last": stats(17.0),
        "channels_last_speedup": 22 / 17, "target_seconds": 25.0, "machine": MACHINE, "git_commit": "abc"})
    _write(folder, "demo_time.json", {"benchmark": "demo_time", "command": "make demo", "seconds": stats(130.0),
                                      "target_seconds": 120.0, "machine": MACHINE, "git_commit": "abc"})
    _write(folder, "sigmab_engine_resnet56.json", {
        "benchmark": "sigmab_engine", "model": "resnet56", "calib_size": 10000,
        "convert_config": {"depth": 2, "widths": None, "residual_widths": None}, "convert_seconds": stats(33.0),
        "convert_target_seconds": 60.0, "batch_size": 256,
        "batch_seconds": {"dense": stats(0.6), "tree": stats(0.4), "single_path_bound": stats(0.38)},
        "throughput_speedup": 1.5, "ideal_speedup_from_macs": 2.0, "fraction_of_ideal": 0.75, "fraction_target": 0.8,
        "engine_efficiency_vs_single_path": 0.95, "latency_batch1_ms": {"dense": stats(5.0), "tree": stats(4.0)},
        "latency_speedup": 1.25, "dense_macs": 125485696, "active_macs_mean": 62742848.0,
        "active_params_mean": 400000.0, "dense_params": 853018, "machine": MACHINE, "git_commit": "abc"})
    tree = {"n_samples": 10000, "top1": 85.0, "dense_top1": 91.73, "dense_params": 269722, "dense_macs": 40551040,
            "active_params_mean": 92030.0, "active_params_reduction": 0.659, "stored_params": 273182,
            "active_macs_mean": 2.5e7, "leaves": [{"share": 0.5}, {"share": 0.5}]}
    _write(folder, "sigmab_smoke_resnet20.json", {
        "benchmark": "sigmab_smoke", "model": "resnet20", "convert_args": ["--depth", "1"], "finetune_args": [],
        "converted": {**tree, "top1": 18.0}, "finetuned": tree, "finetune_metrics_csv": "epoch\n1\n",
        "convert_seconds": 27.0, "finetune_seconds": 288.0, "machine": MACHINE, "git_commit": "abc"})


def test_report_renders_every_result_with_its_verdict(tmp_path: Path) -> None:
    _valid(tmp_path)
    text = render(load_results(tmp_path))
    assert "| resnet56 | 10,000 | 256 | 93.39% | 18.0 s (1 runs) |" in text
    assert "1.29x" in text and "<= 25 s: met" in text
    assert "<= 120 s: **missed**" in text  # a missed target is reported, not hidden
    assert "| 1.50x = 0.75 of ideal | >= 0.8 of ideal | **missed** |" in text
    assert "< 60 s | met |" in text
    assert "| fine-tuned | 85.00% | 92,030 | 65.9% | 273,182 |" in text


def test_missing_and_malformed_results_are_errors_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="missing result file .*eval_speed_resnet56.json"):
        load_results(tmp_path)
    _valid(tmp_path)
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(SystemExit, match="broken.json: not valid JSON"):
        load_results(tmp_path)
    _write(tmp_path, "broken.json", {"benchmark": "demo_time", "command": "make demo"})
    with pytest.raises(SystemExit, match=r"broken.json: missing fields \['seconds'"):
        load_results(tmp_path)
    _write(tmp_path, "broken.json", {"benchmark": "mystery"})
    with pytest.raises(SystemExit, match="unknown or missing 'benchmark' kind 'mystery'"):
        load_results(tmp_path)


def test_dense_rows_show_the_layout_read_off_each_file(tmp_path: Path) -> None:
    _valid(tmp_path)
    row = {"dataset": "cifar100", "arch": "resnet56", "checkpoint": "weights/c.pth", "shortcut": "B",
           "mean": [0.507, 0.4865, 0.4409], "std": [0.2673, 0.2564, 0.2762], "top1": 72.62, "published_top1": 72.63,
           "params": 861620, "macs": 125753600, "n_samples": 10000, "command": "sigmab eval ..."}
    _write(tmp_path, "dense_pretrained.json", {"benchmark": "dense_pretrained", "rows": [row], "machine": MACHINE,
                                               "git_commit": "abc"})
    text = render(load_results(tmp_path))
    assert "| cifar100 | resnet56 | option B | 72.62% | 72.63% | 861,620 | 125,753,600 |" in text
    _write(tmp_path, "dense_pretrained.json", {"benchmark": "dense_pretrained", "machine": MACHINE})
    with pytest.raises(SystemExit, match=r"dense_pretrained.json: missing fields \['rows', 'git_commit'\]"):
        load_results(tmp_path)


def test_train_speed_rows_show_their_ratio_and_the_loader_verdict(tmp_path: Path) -> None:
    _valid(tmp_path)
    (tmp_path / "train_speed").mkdir()
    row = {"model": "resnet56", "phase": "dense", "amp": "bf16", "memory_format": "channels_last", "compile": False,
           "seconds_per_step": 0.5, "samples_per_s": 256.0, "speedup_vs_fp32_nchw": 2.19, "runs": [0.5]}
    _write(tmp_path / "train_speed", "train_speed.json", {
        "benchmark": "train_speed", "rows": [row], "batch_size": 128, "steps": 5, "repeats": 3,
        "cpu_model": "Intel(R) Xeon(R) Processor", "bf16_fast": True, "machine": MACHINE, "git_commit": "abc",
        "loader": {"model": "resnet20", "dataset": "cifar100", "real_samples_per_s": 600.0,
                   "synthetic_samples_per_s": 700.0, "ratio": 0.857}})
    text = render(load_results(tmp_path))
    assert "| resnet56 | dense | 128 | bf16 | channels_last | 256 | 2.19x | yes |" in text
    assert "### Intel(R) Xeon(R) Processor (fast bf16: yes)" in text and "0.86 of the same steps" in text
    assert "resnet56 2.19x, met" in text
    assert "target >= 0.9, **missed**" in text
