"""Load and save model weights without pickling modules.

Read formats:
- ``.safetensors`` written by :func:`save_model` (metadata in the header);
- ``torch.save`` files, opened with ``weights_only=True``: a bare state_dict, a dict with
  ``state_dict`` (e.g. akamaster's CIFAR ResNets, whose keys carry DataParallel's ``module.``
  prefix), or a sigmab training checkpoint (``model`` + ``meta``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from sigmab.errors import CheckpointError, ConfigError
from sigmab.models.meta import ModelMeta
from sigmab.models.registry import build_from_meta, build_model, default_meta, get_entry
from sigmab.utils.io import atomic_path

StateDict = dict[str, torch.Tensor]
_META_KEY = "sigmab_meta"


@dataclass
class Checkpoint:
    """Weights read from a file, with the model metadata when the file carries it."""

    path: Path
    state_dict: StateDict
    meta: ModelMeta | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _strip_prefix(sd: StateDict, prefix: str = "module.") -> StateDict:
    if sd and all(k.startswith(prefix) for k in sd):
        return {k[len(prefix) :]: v for k, v in sd.items()}
    return sd


def _as_state_dict(obj: Any, path: Path) -> StateDict:
    if not isinstance(obj, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items()):
        raise CheckpointError(f"{path}: does not hold a state_dict (a mapping of parameter names to tensors)")
    return _strip_prefix(obj)


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read ``path`` into a :class:`Checkpoint`; raises ``CheckpointError`` with the file named."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        try:
            sd = load_file(path)
            with open(path, "rb") as f:
                header_len = int.from_bytes(f.read(8), "little")
                header = json.loads(f.read(header_len))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
        raw_meta = (header.get("__metadata__") or {}).get(_META_KEY)
        try:
            meta = ModelMeta.from_dict(json.loads(raw_meta)) if raw_meta else None
        except (ValueError, TypeError, KeyError) as exc:
            raise CheckpointError(f"{path}: its {_META_KEY} header is not valid model metadata ({exc!r})") from None
        return Checkpoint(path, _strip_prefix(sd), meta)
    with open(path, "rb") as f:
        magic = f.read(2)
    if not (magic == b"PK" or magic[:1] == b"\x80"):  # torch.save writes a zip archive (legacy: a pickle)
        raise CheckpointError(f"{path}: not a readable weights-only torch checkpoint (its bytes are not a "
                              "torch.save file)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - arbitrary bytes fail in arbitrary ways (a text file: KeyError)
        if "weights only load failed" in str(exc).lower():  # PyTorch's message suggests weights_only=False: no
            raise CheckpointError(
                f"{path}: refused: besides tensors it holds pickled objects (classes or code), which sigmab never "
                "loads, because unpickling can run code. Re-save only the state_dict "
                "(torch.save(model.state_dict(), path)) with code you trust") from None
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if not isinstance(exc, (RuntimeError, OSError, EOFError)):  # a KeyError from a text file says nothing
            first_line = "its bytes are not a torch.save file"
        raise CheckpointError(f"{path}: not a readable weights-only torch checkpoint ({first_line})") from None
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        try:
            meta = ModelMeta.from_dict(obj["meta"]) if obj.get("meta") else None
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise CheckpointError(f"{path}: its 'meta' entry is not valid model metadata ({exc!r})") from None
        extra = {k: v for k, v in obj.items() if k not in ("model", "meta")}
        return Checkpoint(path, _as_state_dict(obj["model"], path), meta, extra)
    if isinstance(obj, dict) and "state_dict" in obj:
        extra = {k: v for k, v in obj.items() if k != "state_dict"}
        return Checkpoint(path, _as_state_dict(obj["state_dict"], path), None, extra)
    return Checkpoint(path, _as_state_dict(obj, path))


def check_fits(model: nn.Module, sd: StateDict, *, source: str) -> None:
    """Raise one ``CheckpointError`` that summarises every key and shape mismatch."""
    expected = {k: v.shape for k, v in model.state_dict().items()}
    # BatchNorm's step counter postdates many published checkpoints and never affects eval outputs.
    missing = [k for k in expected if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in expected]
    wrong = [f"{k} {tuple(sd[k].shape)} vs {tuple(s)}" for k, s in expected.items() if k in sd and sd[k].shape != s]
    dtypes = {k: v.dtype for k, v in model.state_dict().items()}
    # A float tensor keeps its exact dtype (an int32 or float64 weight is not what sigmab wrote), and weights
    # must be finite.
    kinds = [f"{k} {sd[k].dtype} vs {dtypes[k]}" for k in expected if k in sd and (
        sd[k].dtype != dtypes[k] if dtypes[k].is_floating_point else sd[k].dtype.is_floating_point)]
    non_finite = [k for k in expected if k in sd and sd[k].dtype.is_floating_point and not bool(sd[k].isfinite().all())]
    if not (missing or unexpected or wrong or kinds or non_finite):
        return
    arch = getattr(getattr(model, "meta", None), "arch", type(model).__name__)
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong),
                         ("wrong dtype", kinds), ("with NaN or infinite values", non_finite)):
        if items:
            parts.append(f"{len(items)} {label} (e.g. {items[0]})")
    raise CheckpointError(f"{source} does not fit {arch}: " + "; ".join(parts))


def load_model(
    path: str | os.PathLike[str], *, arch: str | None = None, num_classes: int | None = None,
    arch_kwargs: dict[str, Any] | None = None,
) -> nn.Module:
    """Build the model a checkpoint describes (or ``arch``) and load its weights, in eval mode.

    Files without metadata (e.g. akamaster's) need ``arch``; ``num_classes`` defaults to the
    classifier size found in the weights, and the family's layout reader (if it registered one)
    recognises the file's layout (e.g. a CIFAR ResNet's shortcut option) and renames its keys.
    ``arch_kwargs`` names builder keywords explicitly; they win over what the layout reader found.
    """
    if arch is not None:
        entry = get_entry(arch)  # an unknown name fails before the file is read
    ckpt = load_checkpoint(path)
    sd = ckpt.state_dict
    if ckpt.meta is not None:
        if arch is not None and arch != ckpt.meta.arch:
            raise CheckpointError(f"{path} holds a {ckpt.meta.arch} model, but --arch {arch} was given")
        meta = ckpt.meta if not arch_kwargs else ckpt.meta.with_updates(
            arch_kwargs={**ckpt.meta.arch_kwargs, **arch_kwargs})
        model = build_from_meta(meta)
    else:
        if arch is None:
            raise CheckpointError(f"{path} carries no model metadata; pass the architecture (--arch)")
        overrides: dict[str, Any] = {}
        if entry.layout is not None:
            reading = entry.layout(sd)
            sd = reading.state_dict
            overrides.update(reading.meta)
            overrides.update(reading.arch_kwargs)
        overrides.update(arch_kwargs or {})
        classes = num_classes if num_classes is not None else _guess_num_classes(sd)
        if classes is not None:
            overrides["num_classes"] = classes
        model = build_model(arch, **overrides) if overrides else build_model(arch, meta=default_meta(arch))
    load_weights(model, sd, source=str(path))
    return model.eval()


def load_weights(model: nn.Module, sd: StateDict, *, source: str) -> None:
    """Load ``sd`` into ``model`` after :func:`check_fits`; absent BN step counters keep their value."""
    check_fits(model, sd, source=source)
    model.load_state_dict({**model.state_dict(), **sd})


def _guess_num_classes(sd: StateDict) -> int | None:
    """The output size of the last 2-D weight (the classifier) in a state_dict."""
    weights = [v for k, v in sd.items() if k.endswith("weight") and v.dim() == 2]
    return int(weights[-1].shape[0]) if weights else None


def save_state_dict(module: nn.Module, path: str | os.PathLike[str], *, metadata: dict[str, str]) -> None:
    """Write ``module``'s state_dict to a ``.safetensors`` file with a string ``metadata`` header, atomically.
    Weights holding inf or NaN are refused: every later command would fail on them far from the cause."""
    sd = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    bad = [k for k, v in sd.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"refusing to write {path}: {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''} "
                              "hold inf or NaN values (a setting out of range, or diverged training)")
    with atomic_path(path) as tmp:
        save_file(sd, str(tmp), metadata=metadata)


def save_model(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Write weights and ``model.meta`` to a ``.safetensors`` file, atomically."""
    meta: ModelMeta | None = getattr(model, "meta", None)
    if meta is None:
        raise CheckpointError("save_model needs a model built by sigmab (it has no .meta)")
    save_state_dict(model, path, metadata={_META_KEY: json.dumps(meta.to_dict())})


def load_folder_weights(module: nn.Module, folder: Path, weights: str | None, *, finetuned: str, built: str) -> str:
    """Load a run folder's safetensors into ``module``: ``weights`` if given, else the fine-tuned file
    when present, else the one written when the model was built. Returns the file name used."""
    name = weights if weights is not None else (finetuned if (folder / finetuned).is_file() else built)
    path = file_in_folder(folder, name)
    load_weights(module, read_folder_weights(folder, name), source=str(path))
    return name


def read_folder_weights(folder: Path, name: str) -> StateDict:
    """The tensors of the safetensors file ``name`` of run folder ``folder``: one clear error if it is missing,
    unreadable or a link out of the folder."""
    path = file_in_folder(folder, name)
    if not path.is_file():
        raise CheckpointError(f"weights not found: {Path(folder) / name}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{Path(folder) / name}: not a readable safetensors file ({exc})") from None


def read_folder_spec(path: Path, *, what: str, fmt: str | None = None) -> dict[str, Any]:
    """The JSON spec or manifest at ``path`` of a ``what`` folder (a tree, a pruned model, an export...),
    with one clear error if it is missing, not JSON, leads outside its folder, or (given ``fmt``) not of that format."""
    path = file_in_folder(path.parent, path.name)
    if not path.is_file():
        raise CheckpointError(f"not a sigmab {what} folder: {path} not found")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: invalid JSON ({exc})") from None
    if fmt is not None and (not isinstance(data, dict) or data.get("format") != fmt):
        found = data.get("format") if isinstance(data, dict) else None
        raise CheckpointError(f"{path}: not a sigmab {what} (format {found!r}, expected {fmt!r})")
    return data


def file_in_folder(folder: str | os.PathLike[str], name: str, *, manifest: str | None = None) -> Path:
    """The file ``name`` of run folder ``folder`` (named by the file ``manifest`` in it, or fixed by its kind),
    refused unless it lies inside ``folder`` once links are followed: a manifest must not send a reader to
    ``../..`` or an absolute path, and a folder's own files must not be links out of it."""
    root = Path(folder).resolve()
    path = (root / name).resolve()
    if path.is_relative_to(root):
        return path
    if manifest is not None:
        raise CheckpointError(f"{Path(folder) / manifest} names {name!r}, which lies outside {folder}; a manifest may "
                              "only name files inside its own folder")
    raise CheckpointError(f"{Path(folder) / name} leads outside {folder} (to {path}); a run folder's files must lie "
                          "inside it")


def recorded_source(folder: str | os.PathLike[str], source: dict[str, Any] | None) -> dict[str, Any]:
    """A folder's record of where its model came from (``checkpoint``, ``data_root``...), with relative paths
    taken relative to the folder, never to the reader's working directory. These paths were given by the user
    on the command line that built the folder, so unlike manifest entries they may lie outside it."""
    source = dict(source or {})
    for key in ("checkpoint", "data_root"):
        value = source.get(key)
        if value and not Path(value).is_absolute():
            source[key] = str((Path(folder) / value).resolve())
    return source


def recorded_data_source(folder: str | os.PathLike[str], source: dict[str, Any] | None, *, purpose: str
                         ) -> dict[str, Any]:
    """:func:`recorded_source`, for a step that needs the recorded dataset (to ``purpose``): none is an error."""
    source = recorded_source(folder, source)
    if not source.get("dataset"):
        raise ConfigError(f"{folder} records no dataset to {purpose}")
    return source
