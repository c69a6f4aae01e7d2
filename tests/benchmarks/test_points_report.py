import json
from pathlib import Path

from benchmarks.report import load_results, render, write_plots
from tests.benchmarks.test_report import MACHINE, _valid


def _run(run_id: str, method: str, top1: float, active: float, gpu: str | None = None) -> dict:
    return {"benchmark": "cifar_run", "model": "pointnet2_ssg", "dataset": "fashion_mnist_points", "method": method,
            "run_id": run_id, "config": {}, "top1": top1, "dense_top1": 88.5, "val_top1": top1 + 0.1,
            "dense_val_top1": 88.9, "active_params_mean": active, "active_params_max": active,
            "active_params_min": active, "stored_params": 90_000, "dense_params": 130_000,
            "active_macs_mean": 1.5e7, "dense_macs": 1.7e7, "weight_bytes_per_inference": active * 4, "leaves": [],
            "diagnosis": None, "finetune_epochs": 4, "wall_seconds": 600.0, "seed": 0, "git_commit": "abc",
            "machine": {**MACHINE, "gpu": gpu}, "finetune_metrics_csv": "epoch\n1\n"}


def test_point_set_runs_get_their_own_section_and_plot(tmp_path: Path) -> None:
    _valid(tmp_path)
    (tmp_path / "points").mkdir()
    for r in (_run("fp-d1", "sigmab", 86.0, 52_000.0, gpu="NVIDIA H100"), _run("fp-fpgm", "fpgm", 87.0, 65_000.0)):
        (tmp_path / "points" / f"{r['run_id']}-s0.json").write_text(json.dumps(r))
    by_kind = load_results(tmp_path)
    text = render(by_kind)
    section = text[text.index("## Point sets"):]
    assert "### Fashion-MNIST as 2-D point sets" in section and "CIFAR-10: SigmaB" not in text
    assert "| pointnet2_ssg | sigmab | fp-d1 | 0 | 86.00% | 88.50% | 2.50 |" in section
    assert "- fp-d1: 86.00% at 60.0% fewer active parameters (2.50 pp below dense); finished on NVIDIA H100." in section
    assert "- fp-fpgm: 87.00% at 50.0% fewer" in section and "finished on 2 CPUs" in section
    write_plots(by_kind, tmp_path / "plots")
    assert (tmp_path / "plots" / "points_pareto_fashion_mnist_points.png").read_bytes()[:4] == b"\x89PNG"
