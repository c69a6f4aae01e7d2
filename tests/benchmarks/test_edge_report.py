from benchmarks.edge_report import edge_section
from sigmab.edge import DeviceProfile, Layer, Unit, Workload, simulate
from tests.edge.test_simulate import toy_tree


def plain(name: str, params: int) -> Workload:
    return Workload(name, {"model": Unit("model", (Layer("l", params, 10 * params),), True)}, {"model": ("model",)})


def test_edge_section_tabulates_results_and_generates_its_reading() -> None:
    device = DeviceProfile("toy", 1000, 100.0, 1000.0, description="a toy", sources=("nowhere",))
    tree = toy_tree()
    tree = Workload("sigmab", tree.units, tree.paths)
    streams = {"shuffled": ["n0", "n1", "n0"], "runs:64": ["n0", "n0", "n1"]}

    def rows(dev: DeviceProfile) -> list[dict]:
        out = [simulate(plain("dense", 1200), ["model"] * 3, dev, order="any").to_json(),
               simulate(plain("fpgm-66%", 400), ["model"] * 3, dev, order="any").to_json()]
        return out + [simulate(tree, s, dev, order=o, policy=p).to_json()
                      for p in ("hybrid", "lru") for o, s in streams.items()]

    sweep = [r for size in (1024, 4096) for r in rows(device.with_changes(name=f"toy@{size}", weight_sram_bytes=size))]
    result = {"model": "toy", "tree": "t", "tree_top1": 90.0, "leaf_share": [2 / 3, 1 / 3], "n_inputs": 3,
              "workloads": {"dense": {"stored_params": 1200}, "fpgm-66%": {"stored_params": 400},
                            "sigmab": {"stored_params": 1010}},
              "results": rows(device), "sweep_device": "toy", "sweep": {"int8": sweep}, "orders": list(streams),
              "policies": ["hybrid", "lru"], "_file": "edge_toy.json",
              "devices": {"toy": {"description": "a toy", "weight_sram_bytes": 1000, "offchip_bytes_per_s": 100.0,
                                  "macs_per_s": 1000.0, "precision": "int8", "sources": ["nowhere"]}}}
    text = "\n".join(edge_section([result]))
    # hybrid at 1000 B: backbone + router (310 B) and n0 (300 B) placed; n1 (400 B) streams once in 3
    assert "| toy | sigmab (shuffled) | 1 | 1 | 0.1 | 6343.333 |" in text
    assert "| toy | dense | 1 | 0 | 1.2 | 12000.000 |" in text  # its one 1200 B layer does not fit: it streams
    assert "| dense | 1.2 | 0.0 |" in text  # sweep row: 1 KiB, then 4 KiB where it fits
    assert "streams 0.1 KiB per inference with shuffled inputs" in text and "against 1.2 KiB for dense" in text
    assert "it stores 40% of the tree's weights" in text
    assert "no off-chip traffic (int8): fpgm-66% 1 KiB, sigmab (shuffled) 1 KiB, sigmab (runs:64) 1 KiB, dense 4 KiB" \
        in text
    assert "nowhere" in text and "66.7%, 33.3%" in text
