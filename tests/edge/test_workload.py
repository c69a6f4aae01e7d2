import pytest
import yaml

from sigmab.edge import load_device, model_workload, packaged_devices, tree_workload, with_file_bytes
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


def test_file_bytes_replace_bytes_per_weight_and_add_up_per_unit() -> None:
    tree = tiny_tree().tree
    workload = tree_workload(tree, (3, 32, 32))
    sizes = {name: 3 * unit.params + 17 for name, unit in workload.units.items()}  # e.g. int8 plus scales
    measured = with_file_bytes(workload, sizes, precision="int8")
    assert measured.precision == "int8" and workload.precision is None
    for name, unit in measured.units.items():
        assert unit.bytes(4) == sizes[name]  # the device's bytes per weight no longer apply
        assert [la.params for la in unit.layers] == [la.params for la in workload.units[name].layers]
    assert measured.stored_bytes(1) == sum(sizes.values())
    assert workload.stored_bytes(2) == 2 * workload.stored_params
    with pytest.raises(ConfigError, match="no file bytes for unit"):
        with_file_bytes(workload, {"backbone": 10}, precision="int8")
