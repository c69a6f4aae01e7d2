from benchmarks.edge_report import edge_section
from sigmab.edge import DeviceProfile, simulate
from tests.edge.test_simulate import toy_tree


def test_edge_section_tabulates_each_result_and_the_sweep() -> None:
    device = DeviceProfile("toy", 1000, 100.0, 1000.0, description="a toy", sources=("nowhere",))
    stream = ["n0", "n1", "n0"]
    rows = [simulate(toy_tree(), stream, device, order="shuffled", policy=p).to_json() for p in ("hybrid", "lru")]
    sweep = [simulate(toy_tree(), stream, device.with_changes(name=f"toy@{s}", weight_sram_bytes=s),
                      order="shuffled").to_json() for s in (1024, 2048)]
    result = {"model": "toy", "tree": "t", "tree_top1": 90.0, "leaf_share": [2 / 3, 1 / 3], "n_inputs": 3,
              "workloads": {"toy": {"stored_params": 1010}}, "results": rows, "sweep_device": "toy",
              "sweep": {"int8": sweep}, "policies": ["hybrid", "lru"], "_file": "edge_toy.json",
              "devices": {"toy": {"description": "a toy", "weight_sram_bytes": 1000, "offchip_bytes_per_s": 100.0,
                                  "macs_per_s": 1000.0, "precision": "int8", "sources": ["nowhere"]}}}
    text = "\n".join(edge_section([result]))
    assert "| toy | toy (shuffled) | 1 | 1 | 0.1 | 6343.333 |" in text  # hybrid: n1 streams once in 3
    assert "| toy | toy (shuffled, lru) | 1 | 0 | 0.2 | 6343.333 |" in text
    assert "| toy (shuffled) | 0.0 | 0.0 |" in text  # 1 and 2 KiB hold everything
    assert "nowhere" in text and "66.7%, 33.3%" in text
