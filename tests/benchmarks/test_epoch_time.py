import json
import sys
from pathlib import Path

import pytest
import yaml

import benchmarks.common
from benchmarks import epoch_time
from benchmarks.epoch_time import REQUIRED
from benchmarks.report import load_results, render
from tests.benchmarks.test_report import _valid


def _grid(tmp_path: Path, **top: object) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({"model": "small_cnn", "dataset": "digits", "val_fraction": 0.2, "runs": [],
                                    **top}))
    return path


def test_one_epoch_is_timed_projected_and_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(benchmarks.common, "RESULTS", tmp_path / "results")
    grid = _grid(tmp_path, results="points", train={"epochs": 40, "batch_size": 64, "warmup_epochs": 2})
    monkeypatch.setattr(sys, "argv", ["epoch_time", "--config", str(grid), "--budget-minutes", "1000"])
    epoch_time.main()
    result = json.loads((tmp_path / "results" / "points" / "grid-epoch-time.json").read_text())
    assert set(REQUIRED) <= set(result)
    assert result["epochs"] == 40 and result["device"] == "cpu" and result["epoch_seconds"] > 0
    assert result["projected_minutes"] == pytest.approx(40 * result["epoch_seconds"] / 60)
    assert result["fits_budget"] is (result["projected_minutes"] <= 1000)

    _valid(tmp_path / "results")
    text = render(load_results(tmp_path / "results"))
    assert "## Dense training time" in text and "| grid | small_cnn | cpu" in text


def test_a_grid_with_pretrained_weights_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["epoch_time", "--config", str(_grid(tmp_path, weights="w.safetensors"))])
    with pytest.raises(SystemExit, match="no 'train:' section"):
        epoch_time.main()
