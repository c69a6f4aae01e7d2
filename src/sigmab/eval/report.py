"""Typed evaluation reports: the fields every method's evaluation has, in one dataclass.

What ``sigmab eval`` prints (``--json``), what a folder's report holds and what a benchmark result
carries are built from a :class:`ModelReport`, for trees, pruned models, nested routes and dispatcher
points alike; folder kinds add their own fields beside it (a tree's split points, a pruned model's
criterion). The benchmarks read :data:`RESULT_FIELDS` instead of keeping a copy of the list.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

BYTES_PER_WEIGHT = {"fp32": 4, "fp16": 2, "int8": 1}


@dataclass(frozen=True)
class ModelReport:
    """Top-1 and per-input costs of one evaluated model. Means weight each path (leaf, route, dispatched
    model) by its measured share of inputs; a static model has one path, so active = stored."""

    method: str  # sigmab | l1 | fpgm | hrank | nested | dispatch | dense
    dataset: str
    split: str
    n_samples: int
    top1: float
    dense_top1: float | None  # None when the dense checkpoint is not readable
    active_params_mean: float
    active_params_min: int
    active_params_max: int
    active_macs_mean: float
    stored_params: int
    weight_bytes_per_inference: float
    weight_precision: str
    dense_params: int
    dense_macs: int
    leaves: list[dict[str, Any]] = field(default_factory=list)  # a tree's per-leaf rows; empty otherwise
    diagnosis: dict[str, Any] | None = None  # a tree's leaf-gap / routing-headroom breakdown, when asked for

    @property
    def active_params_reduction(self) -> float:
        return 1.0 - self.active_params_mean / self.dense_params

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "active_params_reduction": self.active_params_reduction}

    @classmethod
    def static(cls, *, params: int, macs: int, precision: str = "fp32", **common: Any) -> ModelReport:
        """A model with one path (dense or statically pruned): every input touches all ``params``."""
        return cls(active_params_mean=float(params), active_params_min=params, active_params_max=params,
                   active_macs_mean=float(macs), stored_params=params,
                   weight_bytes_per_inference=params * BYTES_PER_WEIGHT[precision], weight_precision=precision,
                   **common)


REPORT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ModelReport)) + ("active_params_reduction",)
# What a benchmark result copies from a test-split report (the rest of a result says how it was made).
RESULT_FIELDS: tuple[str, ...] = ("top1", "dense_top1", "active_params_mean", "active_params_max",
                                  "active_params_min", "stored_params", "dense_params", "active_macs_mean",
                                  "dense_macs", "weight_bytes_per_inference", "leaves", "diagnosis")
