"""A statically pruned network: a small text spec (kept channel ids) plus a plain state_dict.

Folder: ``pruned.json`` (this spec, with the pruning settings and the source checkpoint),
``pruned.safetensors`` (weights right after slicing), after fine-tuning ``finetuned.safetensors``,
and ``report.json``. The network is rebuilt from the dense architecture and the spec, never unpickled.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sigmab.errors import CheckpointError
from sigmab.graph import BlockChannels, Decomposition, block_handler, decompose
from sigmab.graph.slicing import sliced_stem
from sigmab.models import ModelMeta, build_from_meta
from sigmab.models.checkpoint import load_folder_weights, read_folder_spec, save_state_dict
from sigmab.utils.io import atomic_write_json
from sigmab.utils.manifest import write_folder_manifest

PRUNED_FORMAT = "sigmab.pruned/1"
PRUNED_SPEC = "pruned.json"
PRUNED_WEIGHTS = "pruned.safetensors"
FINETUNED_WEIGHTS = "finetuned.safetensors"


@dataclass
class PrunedSpec:
    """Kept dense channel ids: of the stem's output, of every block, and of the classifier's input."""

    dense_meta: ModelMeta
    stem_out: list[int]
    blocks: list[BlockChannels]
    head_in: list[int]
    prune_config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"format": PRUNED_FORMAT, "dense_meta": self.dense_meta.to_dict(), "stem_out": self.stem_out,
                "blocks": [b.to_json() for b in self.blocks], "head_in": self.head_in,
                "prune_config": self.prune_config}

    @classmethod
    def from_json(cls, d: dict[str, Any], *, source: str = "pruned spec") -> PrunedSpec:
        if d.get("format") != PRUNED_FORMAT:
            raise CheckpointError(f"{source}: not a sigmab pruned-model spec (format {d.get('format')!r})")
        try:
            return cls(ModelMeta.from_dict(d["dense_meta"]), list(d["stem_out"]),
                       [BlockChannels.from_json(b) for b in d["blocks"]], list(d["head_in"]),
                       dict(d.get("prune_config") or {}))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"{source}: malformed pruned-model spec ({exc!r})") from None


class PrunedNet(nn.Module):
    """stem -> sliced blocks -> sliced head: (N, C, H, W) -> (N, num_classes). Active = stored."""

    def __init__(self, stem: nn.Module, blocks: list[nn.Module], head: nn.Module) -> None:
        super().__init__()
        self.stem = stem
        self.blocks = nn.Sequential(*blocks)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


def build_from_decomposition(dec: Decomposition, spec: PrunedSpec) -> PrunedNet:
    blocks = [block_handler(block).slice(block, ch) for block, ch in zip(dec.blocks, spec.blocks)]
    net = PrunedNet(sliced_stem(dec, spec.stem_out), blocks,
                    dec.head.sliced(torch.tensor(spec.head_in, dtype=torch.long)))
    net.meta = spec.dense_meta
    return net.eval()


def build_pruned(dense: nn.Module, spec: PrunedSpec) -> PrunedNet:
    """Slice ``dense`` as ``spec`` says (weights copied from ``dense``)."""
    dec = decompose(dense)
    if len(spec.blocks) != len(dec.blocks):
        raise CheckpointError(f"the spec has {len(spec.blocks)} blocks; "
                              f"the {spec.dense_meta.arch} has {len(dec.blocks)}")
    return build_from_decomposition(dec, spec)


def save_pruned(net: PrunedNet, spec: PrunedSpec, folder: str | os.PathLike[str], *,
                weights: str = PRUNED_WEIGHTS) -> None:
    folder = Path(folder)
    atomic_write_json(folder / PRUNED_SPEC, spec.to_json())
    save_pruned_weights(net, folder / weights)
    write_folder_manifest(folder, kind="pruned", spec_format=PRUNED_FORMAT)


def save_pruned_weights(net: nn.Module, path: str | os.PathLike[str]) -> None:
    save_state_dict(net, path, metadata={"format": PRUNED_FORMAT})


def read_pruned_spec(folder: str | os.PathLike[str]) -> PrunedSpec:
    path = Path(folder) / PRUNED_SPEC
    return PrunedSpec.from_json(read_folder_spec(path, what="pruned-model"), source=str(path))


def load_pruned(folder: str | os.PathLike[str], *, weights: str | None = None) -> tuple[PrunedNet, PrunedSpec]:
    """Rebuild the pruned network of ``folder`` and load its fine-tuned weights (else the sliced ones)."""
    folder = Path(folder)
    spec = read_pruned_spec(folder)
    net = build_pruned(build_from_meta(spec.dense_meta), spec)
    load_folder_weights(net, folder, weights, finetuned=FINETUNED_WEIGHTS, built=PRUNED_WEIGHTS)
    return net.eval(), spec
