"""Dense model -> SigmaB-Net: calibration, recursive spherical k-means, routers and per-branch channels.

Built top-down: a child's channels come from the dense statistics of its own cluster, and the
router at the end of an inner node is fitted on the outputs of the node as sliced, so that at
initialisation hard routing reproduces the k-means assignment exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from sigmab.cluster import spherical_kmeans
from sigmab.config import option
from sigmab.errors import ConfigError, check_settings
from sigmab.graph import BlockChannels, Decomposition, block_handler, decompose, get_adapter
from sigmab.importance import get_importance, top_channels
from sigmab.importance.calibrate import CalibrationStats, calibrate
from sigmab.models.meta import meta_of
from sigmab.routing import (
    DEFAULT_ROUTER,
    RouterModule,
    RouterSpec,
    build_router,
    node_key,
    pooled,
    router_key,
    router_kinds,
)
from sigmab.tree.model import SigmaBTree
from sigmab.tree.spec import NodeSpec, TreeSpec, build_backbone, build_node

DEFAULT_CALIB_SIZE = 2000
FROM_PRUNED_CHANNELS = ("prune", "cluster")
FROM_PRUNED_WEIGHTS = ("finetuned", "sliced")


MAX_ROUTER_SCALE = 1e4


@dataclass
class ConvertConfig:
    depth: int = option(2, "tree depth (1-3): 2^depth leaves")
    split_points: list[str] | None = option(
        None, "block names the tree splits before, as YAML, e.g. '[layer2.0, layer3.0]' (default per arch)")
    widths: list[float] | None = option(
        None, "inner-channel keep ratio per depth, as YAML, e.g. '[0.5, 0.25]' (default: per arch, else 0.5 each)")
    residual_widths: list[float] | None = option(
        None, "residual-stream keep ratio per depth, as YAML (default 1.0 each)")
    calib_size: int | None = option(
        None, "calibration images drawn from the training split (default: 2000, or the whole training set when it is "
        "smaller)")
    importance: str = option("mean_abs", "channel statistic: mean_abs or rms")
    min_share: float = option(0.2, "k-means balance: each child gets at least this share of its parent's samples")
    kmeans_restarts: int = option(5, "k-means restarts (best cost wins)")
    router_scale: float = option(10.0, "router logit scale (the rows are scale x centroid)")
    router_kind: str = option(
        DEFAULT_ROUTER,
        "router kind (a registered kind: cosine, set from the centroids; mlp, fitted to the k-means split)")
    min_leaf_samples: int = option(16, "fewest calibration samples a node may receive")
    batch_size: int = option(256, "calibration batch size")
    seed: int = option(0, "seed of calibration sampling and k-means")
    # Only read when splitting a pruned folder (sigmab.tree.from_pruned):
    from_pruned_channels: str = option(
        "prune",
        "with --from-pruned: 'prune' keeps the prune's channels (and weights) on every node; 'cluster' re-selects "
        "each node's inner channels, as many per unit as the prune keeps, by --importance on the node's own "
        "calibration inputs through the dense model (those nodes take the dense checkpoint's weights)")
    from_pruned_weights: str = option(
        "finetuned",
        "with --from-pruned: the prune's 'finetuned' weights (default) or its 'sliced' ones (the dense weights, "
        "before fine-tuning)")

    def __post_init__(self) -> None:
        if not 1 <= self.depth <= 3:
            raise ConfigError(f"depth must be 1, 2 or 3, got {self.depth}")
        check_settings((getattr(self, name) in choices,
                        f"{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")
                       for name, choices in (("from_pruned_channels", FROM_PRUNED_CHANNELS),
                                             ("from_pruned_weights", FROM_PRUNED_WEIGHTS)))
        for name in ("widths", "residual_widths"):
            values = getattr(self, name)
            if values is None:
                continue
            if not isinstance(values, list) or not all(isinstance(w, (int, float)) for w in values):
                raise ConfigError(f"{name} must be a list of numbers, got {values!r}")
            if len(values) != self.depth:
                raise ConfigError(f"{name} needs one ratio per depth ({self.depth}), got {values}")
            bad = [w for w in values if not 0.0 < float(w) <= 1.0]
            if bad:
                raise ConfigError(f"{name}: every width must be in (0, 1], got {bad}")
        if self.split_points is not None and (not isinstance(self.split_points, list)
                                              or len(self.split_points) != self.depth):
            raise ConfigError(f"split_points needs {self.depth} entries for depth {self.depth}, got "
                              f"{self.split_points}")
        if not 0 < self.router_scale <= MAX_ROUTER_SCALE:
            # Beyond this the routers' softmax is a hard argmax in float32 and their gradients vanish; far beyond
            # it (1e300) the rows overflow to infinity.
            raise ConfigError(f"router_scale must be in (0, {MAX_ROUTER_SCALE:g}] (it scales the centroid rows), "
                              f"got {self.router_scale}")
        if self.router_kind not in router_kinds():
            raise ConfigError(f"router_kind must be one of {', '.join(router_kinds())}, got {self.router_kind!r}")
        if not 0.0 <= self.min_share <= 0.5:
            raise ConfigError(f"min_share must be in [0, 0.5], got {self.min_share}")
        small = [name for name in ("calib_size", "batch_size", "min_leaf_samples", "kmeans_restarts")
                 if getattr(self, name) is not None and getattr(self, name) < 1]
        if small:
            raise ConfigError(f"{', '.join(small)} must be >= 1, got "
                              + ", ".join(str(getattr(self, name)) for name in small))
        if self.calib_size is not None and self.calib_size < 2**self.depth * self.min_leaf_samples:
            raise ConfigError(f"a depth-{self.depth} tree needs at least {2**self.depth * self.min_leaf_samples} "
                              f"calibration samples ({2**self.depth} leaves x {self.min_leaf_samples}); "
                              f"calib_size is {self.calib_size}")

    def inner_width(self, depth: int, default: list[float] | None = None) -> float:
        """Keep ratio of inner channels at ``depth``: the configured one, else the architecture's
        measured ``default`` (see ``ArchAdapter.default_widths``), else 0.5."""
        if self.widths is not None:
            return float(self.widths[depth - 1])
        return 0.5 if default is None else float(default[depth - 1])

    def residual_width(self, depth: int) -> float:
        return 1.0 if self.residual_widths is None else float(self.residual_widths[depth - 1])




@dataclass
class Conversion:
    tree: SigmaBTree
    spec: TreeSpec
    calib_leaves: torch.Tensor  # (N,) k-means leaf of every calibration sample
    cluster_sizes: dict[str, int] = field(default_factory=dict)


def resolve_split_points(dec: Decomposition, model: nn.Module, cfg: ConvertConfig) -> list[int]:
    """Block indices of the split points, validated: strictly increasing and inside the model."""
    if len(dec.blocks) <= cfg.depth:
        raise ConfigError(f"a model with {len(dec.blocks)} blocks cannot hold a depth-{cfg.depth} tree")
    names = cfg.split_points or get_adapter(model).default_split_points(dec, cfg.depth)
    indices = [dec.split_index(n) for n in names]
    if any(b <= a for a, b in zip(indices, indices[1:])):
        raise ConfigError(f"split points must be in forward order and distinct, got {names}")
    return indices


def _node_channels(dec: Decomposition, stats: CalibrationStats, samples: torch.Tensor, start: int, end: int,
                   in_idx: torch.Tensor, *, inner_width: float, residual_width: float) -> list[BlockChannels]:
    stage_sets: dict[int, torch.Tensor] = {}
    for stage in sorted({dec.stages[b] for b in range(start, end)}):
        members = [b for b in range(start, end) if dec.stages[b] == stage]
        scores = torch.stack([stats.out_importance[b][samples].mean(0) for b in members]).mean(0)
        # Pinned channels (point coordinates) are kept on every branch; the ratio applies to the others.
        pinned = torch.tensor(sorted({c for b in members for c in block_handler(dec.blocks[b]).pinned_out(
            dec.blocks[b])}), dtype=torch.long)
        free = torch.ones(scores.numel(), dtype=torch.bool)
        free[pinned] = False
        free_ids = free.nonzero().flatten()
        kept = free_ids[top_channels(scores[free_ids], residual_width)]
        stage_sets[stage] = torch.cat([kept, pinned]).sort().values
    channels, inp = [], in_idx
    for b in range(start, end):
        handler = block_handler(dec.blocks[b])
        divisions = handler.inner_divisions(dec.blocks[b])
        inner = {g: top_channels(stats.inner_importance[b][g][samples].mean(0), inner_width, divisions.get(g, 1))
                 for g in handler.inner_groups(dec.blocks[b])}
        channels.append(BlockChannels(inp, stage_sets[dec.stages[b]], inner))
        inp = channels[-1].out
    return channels


def calibration_stats(dec: Decomposition, images: torch.Tensor, cfg: ConvertConfig, *, progress: bool = False
                      ) -> CalibrationStats:
    """The dense model's statistics (``cfg.importance``) on calibration ``images`` (N, C, H, W), in batches of
    ``cfg.batch_size``."""
    batches = [images[i : i + cfg.batch_size] for i in range(0, images.shape[0], cfg.batch_size)]
    return calibrate(dec, batches, get_importance(cfg.importance), progress=progress)


@torch.no_grad()
def path_features(tree_parts: list[nn.Module], images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Pooled output (N, C) of the modules in ``tree_parts`` run in sequence on ``images`` (N, C, H, W)."""
    out = []
    for i in range(0, images.shape[0], batch_size):
        h = images[i : i + batch_size]
        for m in tree_parts:
            h = m.eval()(h)
        out.append(pooled(h))
    return torch.cat(out)


def cluster_router(cfg: ConvertConfig, features: torch.Tensor, km: Any) -> RouterModule:
    """A router of ``cfg.router_kind`` that starts as the k-means split ``km`` of the pooled ``features`` (N, C)."""
    router = build_router(RouterSpec(cfg.router_kind, features.shape[1]))
    router.init_from_clusters(features, km.centroids, km.labels, scale=cfg.router_scale)
    return router


def convert(model: nn.Module, images: torch.Tensor, cfg: ConvertConfig, *, progress: bool = False) -> Conversion:
    """Convert ``model`` (left untouched) using normalised calibration ``images`` (N, C, H, W)."""
    dec = decompose(model)
    splits = resolve_split_points(dec, model, cfg)
    n = images.shape[0]
    if n < 2**cfg.depth * cfg.min_leaf_samples:
        raise ConfigError(f"{n} calibration samples are too few for {2**cfg.depth} leaves "
                          f"(need {2**cfg.depth * cfg.min_leaf_samples})")
    stats = calibration_stats(dec, images, cfg, progress=progress)

    default_widths = get_adapter(model).default_widths(dec, cfg.depth) if cfg.split_points is None else None
    bounds = splits + [len(dec.blocks)]
    backbone = build_backbone(dec, splits[0])
    nodes: dict[str, nn.Module] = {}
    routers: dict[str, RouterModule] = {}
    node_specs: dict[str, NodeSpec] = {}
    leaves = torch.full((n,), -1, dtype=torch.long)
    sizes: dict[str, int] = {}
    all_channels = torch.arange(dec.width_before(splits[0]))

    def fit_router(bits: str, samples: torch.Tensor, features: torch.Tensor, path: list[nn.Module],
                   out_idx: torch.Tensor, depth: int) -> None:
        km = spherical_kmeans(features, 2, seed=cfg.seed + len(bits), restarts=cfg.kmeans_restarts,
                              min_share=cfg.min_share)
        routers[router_key(bits)] = cluster_router(cfg, features, km)
        for branch in (0, 1):
            child = f"{bits}{branch}"
            child_samples = samples[km.labels == branch]
            sizes[node_key(child)] = int(child_samples.numel())
            if child_samples.numel() < cfg.min_leaf_samples:
                raise ConfigError(f"node {node_key(child)} received {child_samples.numel()} calibration samples, "
                                  f"fewer than min_leaf_samples={cfg.min_leaf_samples}; raise calib_size or min_share")
            build(child, child_samples, path, out_idx, depth + 1)

    def build(bits: str, samples: torch.Tensor, path: list[nn.Module], in_idx: torch.Tensor, depth: int) -> None:
        start, end = bounds[depth - 1], bounds[depth]
        channels = _node_channels(dec, stats, samples, start, end, in_idx,
                                  inner_width=cfg.inner_width(depth, default_widths),
                                  residual_width=cfg.residual_width(depth))
        is_leaf = depth == cfg.depth
        spec = NodeSpec(start, end, channels, channels[-1].out.tolist() if is_leaf else None)
        node = build_node(dec, spec)
        nodes[node_key(bits)], node_specs[node_key(bits)] = node, spec
        if is_leaf:
            leaves[samples] = int(bits, 2)
            return
        features = path_features([*path, node], images[samples], cfg.batch_size)
        fit_router(bits, samples, features, [*path, node], channels[-1].out, depth)

    # The backbone is a dense copy, so its pooled output equals the dense calibration features.
    fit_router("", torch.arange(n), stats.pooled[splits[0] - 1], [backbone], all_channels, 0)

    tree = SigmaBTree(backbone, nodes, routers, cfg.depth)
    tree.meta = meta_of(model, images)
    config: dict[str, Any] = dict(vars(cfg))
    spec = TreeSpec(tree.meta, cfg.depth, [dec.block_names[i] for i in splits], node_specs,
                    {key: router.spec() for key, router in routers.items()}, config,
                    sizes)
    return Conversion(tree.eval(), spec, leaves, sizes)
