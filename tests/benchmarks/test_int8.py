"""The int8 benchmark's model entries: a row may change the grid's quantisation (a float stem beside full int8)."""

import pytest

from benchmarks.int8 import entry_config
from sigmab.errors import ConfigError
from sigmab.export.quantize import QuantizeConfig


def test_an_entry_keeps_named_layers_in_float_on_top_of_the_grid_settings() -> None:
    grid = QuantizeConfig(calib_size=256, calib_seed=0)
    cfg = entry_config(grid, {"name": "dense-stem", "quantize": {"keep_float": ["stem"]}})
    assert cfg.keep_float == ("stem",) and cfg.calib_size == 256
    assert entry_config(grid, {"name": "dense"}) == grid


def test_an_entry_naming_an_unknown_layer_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="keep_float: unknown layer"):
        entry_config(QuantizeConfig(), {"name": "x", "quantize": {"keep_float": ["neck"]}})
