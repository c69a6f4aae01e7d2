"""Edge-accelerator profiles: on-chip weight memory, off-chip bandwidth and compute throughput.

Packaged profiles live in ``configs/devices.yaml``, each with the sources of its figures; a user's
own profile is a YAML file with the same keys.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sigmab.errors import ConfigError
from sigmab.eval.report import BYTES_PER_WEIGHT

_KEYS = ("weight_sram_bytes", "offchip_bytes_per_s", "macs_per_s")


@dataclass(frozen=True)
class DeviceProfile:
    """``weight_sram_bytes``: on-chip memory available to weights; ``offchip_bytes_per_s``: sustained
    off-chip read bandwidth; ``macs_per_s``: sustained multiply-accumulates per second."""

    name: str
    weight_sram_bytes: int
    offchip_bytes_per_s: float
    macs_per_s: float
    precision: str = "int8"
    description: str = ""
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for key in _KEYS:
            if not getattr(self, key) > (0 if key != "weight_sram_bytes" else -1):
                raise ConfigError(f"device {self.name!r}: {key} must be positive")
        if self.precision not in BYTES_PER_WEIGHT:
            raise ConfigError(f"device {self.name!r}: precision must be one of {', '.join(BYTES_PER_WEIGHT)}")

    @property
    def bytes_per_weight(self) -> int:
        return BYTES_PER_WEIGHT[self.precision]

    def with_changes(self, **changes: Any) -> DeviceProfile:
        return DeviceProfile(**{**self.__dict__, **changes})

    @classmethod
    def from_dict(cls, name: str, d: dict[str, Any], *, source: str) -> DeviceProfile:
        missing = [k for k in _KEYS if k not in d]
        if missing:
            raise ConfigError(f"{source}: device {name!r} lacks {', '.join(missing)}")
        try:
            return cls(name, int(d["weight_sram_bytes"]), float(d["offchip_bytes_per_s"]), float(d["macs_per_s"]),
                       str(d.get("precision", "int8")), str(d.get("description", "")),
                       tuple(str(s) for s in d.get("sources", ())))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: device {name!r} has a non-numeric value ({exc})") from None


def packaged_devices() -> dict[str, DeviceProfile]:
    text = (resources.files("sigmab") / "configs" / "devices.yaml").read_text()
    return {name: DeviceProfile.from_dict(name, d, source="devices.yaml") for name, d in yaml.safe_load(text).items()}


def load_device(name_or_path: str | os.PathLike[str]) -> DeviceProfile:
    """A packaged profile by name, or every key of a one-device YAML file (its ``name`` optional)."""
    devices = packaged_devices()
    if str(name_or_path) in devices:
        return devices[str(name_or_path)]
    path = Path(name_or_path)
    if not path.is_file():
        raise ConfigError(f"unknown device {str(name_or_path)!r}: not a file, and not one of {', '.join(devices)}")
    try:
        d = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{path}: a device profile is a mapping of keys")
    return DeviceProfile.from_dict(str(d.get("name", path.stem)), d, source=str(path))
