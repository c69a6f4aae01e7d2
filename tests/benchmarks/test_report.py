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


def test_report_renders_every_result_with_its_verdict(tmp_path: Path) -> None:
    _valid(tmp_path)
    text = render(load_results(tmp_path))
    assert "| resnet56 | 10,000 | 256 | 93.39% | 18.0 s (1 runs) |" in text
    assert "1.29x" in text and "<= 25 s: met" in text
    assert "<= 120 s: **missed**" in text  # a missed target is reported, not hidden


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
