from benchmarks.dynamic_report import dynamic_section


def _nested(route: str, top1: float, params: float) -> dict:
    return {"method": "nested", "model": "resnet20", "route": route, "top1": top1, "dense_top1": 90.0,
            "active_params_mean": params, "dense_params": 1000, "active_macs_mean": 5e6, "storage_bytes": 1234,
            "_file": f"n-{route}.json"}


def test_nested_rows_give_relative_loss_and_kept_weights_beside_the_paper() -> None:
    lines = dynamic_section([_nested("L2", 81.0, 50.0), _nested("L0", 90.0, 200.0)])
    text = "\n".join(lines)
    assert "5.38% of weights" in text  # the published figure sits beside ours
    rows = [line for line in lines if line.startswith("| resnet20 |")]
    assert rows[0].startswith("| resnet20 | L0 | 90.00% | 0.00% | 20.00% |")  # densest route first
    assert rows[1].startswith("| resnet20 | L2 | 81.00% | 10.00% | 5.00% |")
    assert "| 1,234 bytes (30.9% of dense) |" in rows[0]  # storage beside the dense fp32 weights (4,000 bytes)


def test_dispatch_rows_compare_mean_ops_with_the_largest_model_alone() -> None:
    models = [{"name": "r20", "top1": 91.0, "mean_macs": 40e6}, {"name": "r56", "top1": 93.0, "mean_macs": 125e6}]
    r = {"method": "dispatch", "model": "resnet56", "run_id": "d:f0", "top1": 92.5, "active_macs_mean": 80e6,
         "dispatch": {"models": models, "oracle_top1": 95.0, "shares": [0.6, 0.4]}, "_file": "d-f0.json"}
    row = next(line for line in dynamic_section([r]) if line.startswith("| resnet56 |"))
    assert "| r20, r56 | 92.50% | 93.00% | 95.00% | 80,000,000 | 36.0% | 0.60 / 0.40 |" in row
    assert dynamic_section([{"method": "fpgm"}]) == []
