"""Router kinds: modules that map the stream at a split point (N, C, ...) to two branch logits (N, 2).

A kind is registered by name with :func:`register_router`; ``tree.json`` records each router as a
:class:`RouterSpec` (kind, input channels, settings), and :func:`build_router` rebuilds it. A new kind
only needs a class here: the walk over the tree, export and the runtimes read nothing but the logits.
"""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from sigmab.errors import CheckpointError, ConfigError
from sigmab.utils.registry import NameRegistry

DEFAULT_ROUTER = "cosine"
CLUSTER_FIT_STEPS = 1000  # full-batch steps fitting a kind without a closed form to the k-means split
_KINDS: NameRegistry[type[RouterModule]] = NameRegistry("router kind", name_attr="kind")


def pooled(x: torch.Tensor) -> torch.Tensor:
    """Global average over every dim after the channel dim: (N, C, ...) -> (N, C)."""
    return x.flatten(2).mean(2)


class RouterModule(nn.Module):
    """Base of every router kind: ``forward`` (N, C, ...) -> (N, 2) logits; argmax picks the branch."""

    kind: ClassVar[str]

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels

    def settings(self) -> dict[str, Any]:
        """The constructor's keyword arguments beyond ``in_channels`` (JSON values), saved in ``tree.json``."""
        return {}

    def spec(self) -> RouterSpec:
        return RouterSpec(self.kind, self.in_channels, self.settings())

    def init_from_clusters(self, features: torch.Tensor, centroids: torch.Tensor, labels: torch.Tensor,
                           *, scale: float) -> None:
        """Start as the clustering at conversion: argmax should reproduce ``labels`` (N,) of the pooled
        ``features`` (N, C) (``centroids`` (2, C) and ``scale`` are for kinds with a closed form). This default
        fits any kind to the labels: full-batch Adam on cross-entropy, seeded, so a conversion stays repeatable."""
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            torch.manual_seed(0)
            for module in self.modules():  # a seeded start: the same conversion gives the same router
                if module is not self and hasattr(module, "reset_parameters"):
                    module.reset_parameters()
            x, y = features.detach().float()[:, :, None], labels.long()
            optimizer = torch.optim.Adam(self.parameters(), lr=1e-2)
            for _ in range(CLUSTER_FIT_STEPS):
                optimizer.zero_grad(set_to_none=True)
                F.cross_entropy(self(x), y).backward()
                optimizer.step()


@dataclass(frozen=True)
class RouterSpec:
    kind: str
    in_channels: int
    settings: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "in_channels": self.in_channels, "settings": self.settings}

    @classmethod
    def from_json(cls, value: Any) -> RouterSpec:
        """A router entry of ``tree.json``; format 1 stored only the input channels (a cosine router)."""
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(DEFAULT_ROUTER, value)
        if not isinstance(value, dict):
            raise CheckpointError(f"a router entry must be an object, got {value!r}")
        return cls(str(value["kind"]), int(value["in_channels"]), dict(value.get("settings") or {}))


class MarginLinear(nn.Module):
    """A router's final two-logit linear layer folded into its margin: (N, C) -> (N, 2) logits ``[0, l1 - l0]``.

    The branch (argmax, ties to branch 0) is the same for every input. It is how routers are quantised: a cosine
    router's rows are scale x two nearly parallel centroids, so its two logits sit far from zero and close to each
    other, their difference under one int8 step of either; this form's one output is the decision itself."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        if linear.out_features != 2:
            raise ValueError(f"a router's last layer has 2 outputs, not {linear.out_features}")
        self.margin = nn.Linear(linear.in_features, 1)
        with torch.no_grad():
            self.margin.weight.copy_(linear.weight[1:] - linear.weight[:1])
            self.margin.bias.copy_(linear.bias[1:] - linear.bias[:1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.margin(x)
        return torch.cat([torch.zeros_like(m), m], dim=1)


def margin_form(router: RouterModule) -> RouterModule:
    """A copy of ``router`` whose last layer, an ``nn.Linear`` with two outputs (every registered kind ends in
    one), is a :class:`MarginLinear`: the same branches, for quantised export."""
    folded = deepcopy(router).eval()
    last = [name for name, m in folded.named_modules() if isinstance(m, nn.Linear) and m.out_features == 2]
    if not last:
        raise ConfigError(f"a {router.kind} router has no two-output linear layer to fold into a margin")
    parent_name, _, child = last[-1].rpartition(".")
    parent = folded.get_submodule(parent_name) if parent_name else folded
    setattr(parent, child, MarginLinear(getattr(parent, child)))
    return folded


def register_router(cls: type[RouterModule]) -> type[RouterModule]:
    """Class decorator: make ``cls`` buildable from a :class:`RouterSpec` of kind ``cls.kind``."""
    return _KINDS.register(cls)


def router_kinds() -> list[str]:
    return _KINDS.names()


def build_router(spec: RouterSpec) -> RouterModule:
    kind = _KINDS.get(spec.kind)
    if spec.in_channels < 1:
        raise CheckpointError(f"a router needs >= 1 input channel, got {spec.in_channels}")
    return kind(spec.in_channels, **spec.settings)


@register_router
class CosineRouter(RouterModule):
    """Pooled features, L2 normalisation, a 2-row linear map; initialised from spherical k-means
    (rows = scale x centroids), so its argmax reproduces the clustering."""

    kind = "cosine"

    def __init__(self, in_channels: int) -> None:
        super().__init__(in_channels)
        self.proj = nn.Linear(in_channels, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.normalize(pooled(x), dim=1))

    @torch.no_grad()
    def init_from_clusters(self, features: torch.Tensor, centroids: torch.Tensor, labels: torch.Tensor,
                           *, scale: float) -> None:
        """Rows = ``scale`` x centroids (2, C); the bias sets the decision threshold so that argmax reproduces
        ``labels`` (N,) of ``features`` (N, C) (a threshold rule on the cosine margin, also under the balance
        constraint)."""
        f = F.normalize(features.double(), dim=1)
        c = centroids.double()
        margin = f @ (c[0] - c[1])
        lo = margin[labels == 1].max() if bool((labels == 1).any()) else margin.min() - 1
        hi = margin[labels == 0].min() if bool((labels == 0).any()) else margin.max() + 1
        threshold = float((lo + hi) / 2) if lo < hi else 0.0
        self.proj.weight.copy_(scale * c.float())
        self.proj.bias.copy_(torch.tensor([-scale * threshold / 2, scale * threshold / 2]))


@register_router
class MLPRouter(RouterModule):
    """Pooled features, L2 normalisation, one hidden ReLU layer, two logits: a router trained to pick the leaf
    that serves an input best (:mod:`sigmab.tree.router_fit`), not initialised from clusters."""

    kind = "mlp"

    def __init__(self, in_channels: int, hidden: int = 64) -> None:
        super().__init__(in_channels)
        if hidden < 1:
            raise ConfigError(f"an mlp router needs hidden >= 1, got {hidden}")
        self.hidden = hidden
        self.net = nn.Sequential(nn.Linear(in_channels, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def settings(self) -> dict[str, Any]:
        return {"hidden": self.hidden}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(F.normalize(pooled(x), dim=1))
