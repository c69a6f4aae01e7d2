"""Run configuration: dataclass defaults < YAML file < command-line flags; the result is saved with the run.

Each config dataclass is the one source of truth for its options: :func:`add_config_flags`
derives the CLI flags from its fields, so a new field is a new flag without more code.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from sigmab.errors import ConfigError
from sigmab.utils.io import atomic_write_text

C = TypeVar("C")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _base_type(annotation: Any) -> Any:
    """``int | None`` -> ``int``; other annotations unchanged."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _yaml_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise argparse.ArgumentTypeError(f"not valid YAML: {text!r} ({exc})") from None


def _with_default(text: str, f: dataclasses.Field) -> str:
    """A flag's help with its default appended, unless the text already says what the default is."""
    if "default" in text:
        return text
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return text
    shown = "none" if value is None else yaml.safe_dump(value, default_flow_style=True).removesuffix("...\n").strip()
    return f"{text} (default: {shown})" if text else f"default: {shown}"


def option(default: Any = dataclasses.MISSING, help: str = "", *, factory: Any = dataclasses.MISSING) -> Any:
    """A config field with its ``--help`` text beside it (in the field's metadata, which :func:`add_config_flags`
    reads): ``lr: float = option(0.1, "peak learning rate")``; ``factory`` for a mutable default."""
    return dataclasses.field(default=default, default_factory=factory, metadata={"help": help})


def add_config_flags(parser: argparse.ArgumentParser, config_cls: type) -> None:
    """Add one flag per field of ``config_cls``, its help from the field's metadata (:func:`option`); unset flags
    stay out of the namespace (``SUPPRESS``)."""
    hints = typing.get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        kind = _base_type(hints[f.name])
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "help": _with_default(f.metadata.get("help", ""), f)}
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif kind in (int, float, str):
            kwargs["type"] = kind
            kwargs["metavar"] = kind.__name__.upper()
        else:  # lists and dicts are given as YAML, e.g. --widths "[8, 16]"
            kwargs["type"] = _yaml_value
            kwargs["metavar"] = "YAML"
        parser.add_argument(_flag(f.name), dest=f.name, **kwargs)


def config_flags(args: argparse.Namespace, config_cls: type) -> dict[str, Any]:
    """The flags :func:`add_config_flags` made for ``config_cls`` that were given (unset ones are not in
    the namespace), as the top layer for :func:`resolve_config`."""
    return {k: v for k, v in vars(args).items() if k in config_cls.__dataclass_fields__}


def read_yaml_config(path_or_name: str) -> dict[str, Any]:
    """A YAML mapping from a file path, or from a config packaged with sigmab (e.g. ``demo``)."""
    path = Path(path_or_name)
    if path.is_file():
        text = path.read_text()
    else:
        packaged = resources.files("sigmab") / "configs" / f"{path_or_name}.yaml"
        if not packaged.is_file():
            raise ConfigError(f"config not found: {path_or_name} (neither a file nor a packaged config)")
        text = packaged.read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path_or_name}: invalid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path_or_name}: expected a mapping of option: value, got {type(data).__name__}")
    return data


def _coerce(config_cls: type, name: str, value: Any, hint: Any) -> Any:
    kind = _base_type(hint)
    if value is None:
        if kind is not hint:  # Optional field
            return None
        raise ConfigError(f"{config_cls.__name__}: {name} must not be empty")
    try:
        if kind is bool:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if kind in (int, float, str):
            if kind is int and (isinstance(value, bool) or (isinstance(value, float) and not value.is_integer())):
                raise TypeError
            if kind is float and not math.isfinite(float(value)):  # no setting of sigmab means nan or inf
                raise ConfigError(f"{name}: expected a finite number, got {value!r}")
            return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected {kind.__name__}, got {value!r}") from None
    return value


def resolve_config(config_cls: type[C], *layers: dict[str, Any]) -> C:
    """Merge ``layers`` (later wins) over the dataclass defaults and type-check every value."""
    hints = typing.get_type_hints(config_cls)
    names = {f.name for f in dataclasses.fields(config_cls)}
    merged: dict[str, Any] = {}
    for layer in layers:
        unknown = sorted(set(layer) - names)
        if unknown:
            raise ConfigError(f"unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
        merged.update(layer)
    values = {k: _coerce(config_cls, k, v, hints[k]) for k, v in merged.items()}
    return config_cls(**values)


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def save_config(config: Any, path: Path, *, epoch: int | None = None) -> None:
    """Write ``config`` as YAML; a different config already at ``path`` (a resumed run extended from epoch
    ``epoch``) is appended to ``config-history.yaml`` beside it first, so the folder describes every epoch."""
    new = config_to_dict(config)
    if path.is_file():
        old = yaml.safe_load(path.read_text())
        if old != new:
            history_file = path.with_name("config-history.yaml")
            history = yaml.safe_load(history_file.read_text()) if history_file.is_file() else []
            history.append({"until_epoch": epoch, "config": old})
            atomic_write_text(history_file, yaml.safe_dump(history, sort_keys=False))
    atomic_write_text(path, yaml.safe_dump(new, sort_keys=False))


PRESET_SECTIONS = ("convert", "finetune")


def _preset_files() -> dict[str, Any]:
    folder = resources.files("sigmab") / "configs" / "presets"
    return {p.name.removesuffix(".yaml"): p for p in folder.iterdir() if p.name.endswith(".yaml")}


def list_presets() -> dict[str, str]:
    """Packaged SigmaB presets: name -> one-line description."""
    return {name: str(read_preset(name).get("description", "")).strip()
            for name in sorted(_preset_files())}


def read_preset(name: str) -> dict[str, Any]:
    """A packaged preset: ``description``, ``model``, ``dataset`` and one mapping per pipeline step
    (``convert``, ``finetune``) that sets that step's option defaults."""
    files = _preset_files()
    if name not in files:
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(sorted(files)) or 'none'}")
    data = yaml.safe_load(files[name].read_text())
    if not isinstance(data, dict) or not all(isinstance(data.get(s, {}), dict) for s in PRESET_SECTIONS):
        raise ConfigError(f"preset {name}: expected a mapping with {' and '.join(PRESET_SECTIONS)} mappings")
    return data


def preset_layer(name: str | None, section: str) -> dict[str, Any]:
    """The options one step takes from preset ``name`` (empty when no preset is given)."""
    return dict(read_preset(name).get(section, {})) if name else {}


def layered_config(config_cls: type[C], *, preset: str | None = None, step: str | None = None,
                   config: str | None = None, saved: dict[str, Any] | None = None,
                   flags: dict[str, Any] | None = None, owners: Sequence[type] = ()) -> C:
    """The one layering of every command: defaults < preset ``preset``'s ``step`` section < the ``config`` YAML
    file < ``flags``. A resumed run passes its folder's ``saved`` config.yaml (as read), which replaces preset
    and YAML (it continues with the settings it started with); flags still win. ``owners``: when one YAML file holds the
    options of several config classes, the classes that share it (keys of none of them are refused; each class
    takes its own)."""
    if saved is not None:
        layers = [saved]
    else:
        yaml_layer = read_yaml_config(config) if config else {}
        if owners:
            known = {f.name for c in owners for f in dataclasses.fields(c)}
            unknown = sorted(set(yaml_layer) - known)
            if unknown:
                raise ConfigError(f"{config}: unknown option(s) {', '.join(unknown)}")
            names = {f.name for f in dataclasses.fields(config_cls)}
            yaml_layer = {k: v for k, v in yaml_layer.items() if k in names}
        layers = [preset_layer(preset, step) if step else {}, yaml_layer]
    return resolve_config(config_cls, *layers, flags or {})


# Settings a resumed run may change: where and how fast it runs, and how long (extending a finished run; the
# run folder keeps the earlier settings in config-history.yaml), not what it computes.
RUNTIME_KEYS = frozenset({"device", "threads", "workers", "eval_batch_size", "epochs", "hard_epochs", "data_on_device",
                          "amp"})


def command_config(config_cls: type[C], args: argparse.Namespace, *, step: str | None = None,
                   run_config: Path | None = None, owners: Sequence[type] = (), locked: bool = True) -> C:
    """:func:`layered_config` from a command's parsed ``--preset``, ``--config``, ``--resume`` and the flags
    :func:`add_config_flags` made; ``run_config`` is where the run folder keeps its resolved config. With
    ``--resume`` its settings are the base; ``locked`` (an epoch was trained under them) refuses flags that
    change them, unlocked (nothing trained yet, e.g. the first epoch diverged) flags may change them."""
    resume = bool(getattr(args, "resume", False))
    flags = config_flags(args, config_cls)
    saved = None
    if resume and run_config is not None and run_config.is_file():
        saved = read_yaml_config(str(run_config))  # it must keep describing every epoch of the run
        changed = sorted(k for k, v in flags.items() if k not in RUNTIME_KEYS and k in saved and saved[k] != v)
        if changed and locked:
            raise ConfigError("--resume continues a run with the settings it started with; "
                              + ", ".join(f"{k} was {saved[k]!r}, not {flags[k]!r}" for k in changed)
                              + ". Start a new run to change them")
    return layered_config(config_cls, preset=getattr(args, "preset", None), step=step,
                          config=getattr(args, "config", None), saved=saved, flags=flags, owners=owners)
