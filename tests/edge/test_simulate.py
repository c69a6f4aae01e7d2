import pytest

from sigmab.edge import DeviceProfile, Layer, Unit, Workload, simulate
from sigmab.errors import ConfigError


def toy_tree() -> Workload:
    units = {
        "backbone": Unit("backbone", (Layer("b1", 100, 1000), Layer("b2", 200, 2000)), True),
        "r": Unit("r", (Layer("r", 10, 10),), True),
        "n0": Unit("n0", (Layer("c", 300, 3000),), False),
        "n1": Unit("n1", (Layer("c", 400, 4000),), False),
    }
    return Workload("toy", units, {"n0": ("backbone", "r", "n0"), "n1": ("backbone", "r", "n1")})


def device(sram: int) -> DeviceProfile:  # int8: one byte per weight; 1000 MAC/s; 100 B/s
    return DeviceProfile("toy", sram, offchip_bytes_per_s=100.0, macs_per_s=1000.0, precision="int8")


def test_static_part_on_chip_and_nodes_streamed_when_the_cache_is_too_small() -> None:
    r = simulate(toy_tree(), ["n0", "n1", "n0"], device(350))
    assert r.static_onchip_bytes == 310 and r.node_cache_bytes == 40
    assert r.offchip_bytes == pytest.approx((300 + 400 + 300) / 3)
    # backbone 1 + 2 s compute, router 0.01 s, node max(MACs/rate, bytes/bandwidth): 3 s or 4 s
    assert r.latency_s == pytest.approx((6.01 + 7.01 + 6.01) / 3)
    assert r.compute_s == pytest.approx((6.01 + 7.01 + 6.01) / 3)
    assert r.cache_hit_rate == 0.0 and not r.fits_on_chip
    assert r.mean_active_params == pytest.approx((610 + 710 + 610) / 3)


def test_lru_node_cache_is_measured_after_a_warm_up_pass() -> None:
    # 690 B of cache: n0 (300) and n1 (400) evict each other. The warm-up pass leaves n0 cached, so the
    # measured pass hits n0, then misses n1 (evicting n0) and misses n0.
    r = simulate(toy_tree(), ["n0", "n1", "n0"], device(1000), policy="lru")
    assert r.cache_hit_rate == pytest.approx(1 / 3)
    assert r.offchip_bytes == pytest.approx((0 + 400 + 300) / 3)
    r = simulate(toy_tree(), ["n0", "n1", "n0"], device(1100), policy="lru")  # 790 B: both stay after warm-up
    assert r.cache_hit_rate == 1.0 and r.offchip_bytes == 0
    assert r.fits_on_chip  # stored 1010 B <= 1100


def test_hybrid_places_the_most_used_node_and_caches_the_rest() -> None:
    # 690 B after the static part: n0 (used twice) is placed (300 B); n1 (400 B) fits neither the
    # remaining 390 B nor the cache, so it streams each time it is used.
    r = simulate(toy_tree(), ["n0", "n1", "n0"], device(1000))
    assert r.policy == "hybrid" and r.static_onchip_bytes == 610 and r.node_cache_bytes == 390
    assert r.offchip_bytes == pytest.approx(400 / 3) and r.cache_hit_rate == 0.0
    with pytest.raises(ConfigError, match="placement policy"):
        simulate(toy_tree(), ["n0"], device(1000), policy="belady")


def test_a_layer_that_does_not_fit_is_streamed_while_later_ones_are_placed() -> None:
    r = simulate(toy_tree(), ["n0"], device(250))  # b1 placed, b2 (200 B) not, router placed
    assert r.static_onchip_bytes == 110
    assert r.offchip_bytes == 200 + 300
    assert r.latency_s == pytest.approx(1 + max(2, 2) + 0.01 + 3)


def test_precision_scales_the_bytes() -> None:
    fp32 = device(0).with_changes(precision="fp32")
    assert simulate(toy_tree(), ["n1"], fp32).offchip_bytes == 4 * 710
    assert simulate(toy_tree(), ["n1"], fp32).latency_s == pytest.approx(1 * 4 + 2 * 4 + 0.4 + 16)


def test_bad_streams_and_profiles_are_refused() -> None:
    with pytest.raises(ConfigError, match="lacks"):
        simulate(toy_tree(), ["n2"], device(10))
    with pytest.raises(ConfigError, match="empty"):
        simulate(toy_tree(), [], device(10))
    with pytest.raises(ConfigError, match="precision"):
        device(10).with_changes(precision="int4")
    with pytest.raises(ConfigError, match="positive"):
        DeviceProfile("x", 10, 0.0, 1.0)
