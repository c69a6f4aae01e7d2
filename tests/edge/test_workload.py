import pytest
import yaml

from sigmab.edge import load_device, model_workload, packaged_devices, tree_workload
from sigmab.errors import ConfigError
from sigmab.eval import count_params, profile_model
from sigmab.tree import PathModel
from tests.helpers import tiny_resnet, tiny_tree


def test_tree_workload_paths_count_what_path_model_counts() -> None:
    tree = tiny_tree().tree
    work = tree_workload(tree, (3, 32, 32))
    for leaf in tree.leaves:
        profile = profile_model(PathModel(tree, leaf), (3, 32, 32))
        assert work.path_params(leaf) == profile.params
        assert work.path_macs(leaf) == profile.macs
    assert work.stored_params == count_params(tree)
    assert [u for u, unit in work.units.items() if unit.every_input] == ["backbone", "r"]


def test_model_workload_is_one_unit_used_by_every_input() -> None:
    dense = tiny_resnet()
    work = model_workload(dense, (3, 32, 32))
    assert work.stored_params == count_params(dense) == work.path_params("model")


def test_packaged_profiles_load_and_cite_sources(tmp_path) -> None:
    devices = packaged_devices()
    assert {"coral-edgetpu-usb", "stm32n6-npu", "ethos-u55-mcu"} <= set(devices)
    assert all(d.sources for d in devices.values())
    own = tmp_path / "mine.yaml"
    own.write_text(yaml.safe_dump({"weight_sram_bytes": 1024, "offchip_bytes_per_s": 1e6, "macs_per_s": 1e9}))
    assert load_device(own).name == "mine" and load_device(own).precision == "int8"
    with pytest.raises(ConfigError, match="unknown device"):
        load_device("no-such-part")
    own.write_text(yaml.safe_dump({"weight_sram_bytes": 1024}))
    with pytest.raises(ConfigError, match="lacks"):
        load_device(own)
