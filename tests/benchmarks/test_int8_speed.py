"""The int8 speed section: one subsection per kind of CPU, a verdict on every int8 row and none on fp32."""

from benchmarks.common import per_cpu_name
from benchmarks.int8_speed import int8_speed_section


def _result(cpu: str, isa: str | None, uint8_ratio: float) -> dict:
    rows = [{"model": "dense", "precision": p, "samples_per_s": 100.0 * r, "latency_ms": 1.0 / r,
             "throughput_vs_fp32": r, "latency_vs_fp32": r} for p, r in (("fp32", 1.0), ("uint8", uint8_ratio))]
    result = {"model": "resnet56", "rows": rows, "batch_size": 64, "rounds": 5, "cpu_model": cpu, "vnni": isa is None,
              "onnxruntime": "1.32.0", "_file": f"{cpu}.json",
              "machine": {"cpu_count": 2, "torch_threads": 2, "torch": "2.13.0+cpu"}}
    return result | ({"cpu_isa": isa} if isa else {})


def test_each_cpu_gets_its_own_subsection_and_verdicts() -> None:
    text = "\n".join(int8_speed_section([_result("Intel(R) Xeon(R) Processor", None, 2.1),
                                         _result("AMD EPYC", "avx2", 0.8)]))
    assert "### Intel(R) Xeon(R) Processor (VNNI: yes)" in text and "### AMD EPYC (avx2, VNNI: no)" in text
    assert "| dense | fp32 | 100 | 1.000x | 1.00 ms | 1.00x |  |" in text
    assert "| 2.100x |" in text and "| 0.800x |" in text
    assert text.count("**missed**") == 1 and text.count("| met |") == 1


def test_the_file_name_names_the_cpu_and_its_vector_extension() -> None:
    assert per_cpu_name("int8_speed", "Intel(R) Xeon(R) Processor", "amx") == "int8_speed-intel-xeon-processor-amx"
    name = per_cpu_name("int8_speed", "AMD EPYC 9554 64-Core", "avx512-bf16")
    assert name == "int8_speed-amd-epyc-9554-64-core-avx512-bf16"
