import pytest
import torch

from sigmab.errors import CheckpointError, ConfigError
from sigmab.runtime import LeafOnDemandRunner, read_package_manifest, state_bytes, unit_path, write_package
from sigmab.tree import PathModel
from tests.helpers import calibration_batch, tiny_tree


@pytest.fixture(scope="module")
def conversion():
    return tiny_tree()


@pytest.fixture(scope="module")
def package(conversion, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pkg")
    write_package(conversion.tree, conversion.spec, folder)
    return folder


def path_bytes(tree, leaf: str) -> int:
    """Independent count: every state tensor of the backbone, routers and nodes that PathModel holds."""
    return state_bytes(PathModel(tree, leaf))


def test_outputs_equal_the_in_memory_tree(conversion, package) -> None:
    x = calibration_batch(40)
    runner = LeafOnDemandRunner(package, cache_bytes=10**9)
    logits, stats = runner.predict(x)
    with torch.no_grad():  # the runner streams inputs one by one; so does the reference, bit for bit
        expected = torch.cat([conversion.tree(x[i : i + 1]) for i in range(len(x))])
        _, leaves = conversion.tree.forward_hard(x)
    assert torch.equal(logits, expected)
    assert [s.leaf for s in stats] == [conversion.tree.leaves[i] for i in leaves]
    assert len({s.leaf for s in stats}) > 1


def test_cold_cache_reads_exactly_the_path_weight_bytes(conversion, package) -> None:
    x = calibration_batch(40)
    _, leaves = conversion.tree.forward_hard(x)
    for i in range(4):
        leaf = conversion.tree.leaves[int(leaves[i * 10])]
        runner = LeafOnDemandRunner(package, cache_bytes=10**9, pin=())
        assert runner.resident_bytes == 0
        _, stats = runner.predict_one(x[i * 10 : i * 10 + 1])
        assert stats.leaf == leaf
        assert stats.bytes_read == path_bytes(conversion.tree, leaf)
        assert stats.loaded == unit_path(conversion.tree, leaf)


def test_warm_cache_reads_nothing_and_a_small_cache_rereads(conversion, package) -> None:
    x = calibration_batch(40)
    manifest = read_package_manifest(package)
    runner = LeafOnDemandRunner(package, cache_bytes=10**9)
    assert runner.resident_bytes == sum(u["bytes"] for u in manifest["units"].values()
                                        if u["kind"] in ("backbone", "router"))
    runner.predict(x)
    _, again = runner.predict(x)
    assert all(s.bytes_read == 0 for s in again)
    # a zero-byte cache stores no node: every input reads its nodes again, and only those
    tiny = LeafOnDemandRunner(package, cache_bytes=0)
    _, stats = tiny.predict(x[:6])
    for s in stats:
        nodes = [u for u in unit_path(conversion.tree, s.leaf) if u.startswith("n")]
        assert s.loaded == nodes and s.bytes_read == sum(manifest["units"][u]["bytes"] for u in nodes)
    assert len(tiny.cache) == 0


def test_bad_package_and_inputs_are_clear_errors(package, tmp_path) -> None:
    with pytest.raises(CheckpointError, match="not a sigmab package folder"):
        LeafOnDemandRunner(tmp_path, cache_bytes=0)
    with pytest.raises(ConfigError, match="cannot pin"):
        LeafOnDemandRunner(package, cache_bytes=0, pin=("nodes",))
    with pytest.raises(ConfigError, match="batch of one"):
        LeafOnDemandRunner(package, cache_bytes=0).predict_one(calibration_batch(2))
