from benchmarks.int8_report import int8_section, int8_sensitivity_section

MACHINE = {"processor": "x86_64", "cpu_count": 2}


def _row(name: str, fp32: float, int8: float, routes: float | None) -> dict:
    side = {"stored_bytes": 1000, "active_bytes_mean": 800.0, "leaves": None, "prediction_agreement": 0.99}
    return {"name": name, "label": name, "quantization": {"format": "QDQ", "weights": "w", "activations": "a",
                                                          "calib_size": 256},
            "timing": {"int8_throughput_speedup": 0.5, "fp32_latency_ms": {"median": 2.0},
                       "int8_latency_ms": {"median": 3.0}},
            "fp32": {**side, "top1": fp32, "route_agreement": None},
            "int8": {**side, "top1": int8, "route_agreement": routes}, "int8_minus_fp32_pp": int8 - fp32}


def test_int8_rows_state_their_verdict_and_their_own_config() -> None:
    result = {"model": "m", "dataset": "cifar10", "onnxruntime": "1.0", "machine": MACHINE,
              "_file": "benchmarks/results/int8_mobilenet_v2.json",
              "rows": {"dense": _row("dense", 85.31, 82.83, None), "tree": _row("tree", 90.0, 89.8, 0.995)}}
    text = "\n".join(int8_section([result]))
    assert "| dense | 85.31% | 82.83% | -2.48 pp |" in text and "| not met |" in text  # a miss is shown
    assert "| tree | 90.00% | 89.80% | -0.20 pp | 99.00% | 99.50% |" in text and "| met |" in text
    assert "--config benchmarks/configs/int8_mobilenet_v2.yaml" in text


def test_sensitivity_rows_show_each_change_against_fp32() -> None:
    result = {"run": "runs/dense", "model": "m", "dataset": "cifar10", "images": 2000, "fp32_top1": 85.8,
              "calib_size": 256, "_file": "benchmarks/results/int8_sensitivity_m.json",
              "rows": {"float-first": {"change": "the stem left in fp32", "top1": 85.25, "minus_fp32_pp": -0.55,
                                       "prediction_agreement": 0.97}}}
    text = "\n".join(int8_sensitivity_section([result]))
    assert "| float-first | the stem left in fp32 | 85.25% | -0.55 pp | 97.00% |" in text
    assert "python -m benchmarks.int8_sensitivity --run runs/dense" in text
