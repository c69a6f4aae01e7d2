"""A tree whose every path is a static prune: static pruning as a special case of a SigmaB-Net.

The backbone and every node take the pruned network's channel sets *and its weights* (fine-tuned or
not); routers are fitted by spherical k-means on the pruned backbone's (and inner nodes') pooled
features, as in :func:`sigmab.tree.convert.convert`. Before any specialisation every path computes
the pruned network exactly, so "tree >= static" is reachable by construction: what routing adds
comes from training the leaves on their own inputs afterwards.

With ``from_pruned_channels="cluster"`` (issue 19, rung b) the shared backbone stays the prune's, but every node
after a split re-selects its inner channels, as many per unit as the prune keeps, by an activation statistic of
the *dense* model averaged over the calibration inputs routed to that node, and takes the dense weights of those
channels: the same active parameters, with channels specific to each cluster.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from sigmab.cluster import spherical_kmeans
from sigmab.errors import ConfigError
from sigmab.graph import BlockChannels, Decomposition, block_handler, decompose
from sigmab.importance import top_channels
from sigmab.importance.calibrate import CalibrationStats
from sigmab.models import build_from_meta
from sigmab.prune.spec import PrunedNet, PrunedSpec
from sigmab.routing import RouterModule, node_key, router_key
from sigmab.routing.names import children
from sigmab.tree.convert import (
    Conversion,
    ConvertConfig,
    calibration_stats,
    cluster_router,
    path_features,
    resolve_split_points,
)
from sigmab.tree.model import SigmaBTree
from sigmab.tree.spec import BackboneSpec, NodeSpec, TreeSpec, build_node


def cluster_channels(dec: Decomposition, stats: CalibrationStats, samples: torch.Tensor,
                     pruned: list[BlockChannels], start: int) -> list[BlockChannels]:
    """Blocks ``start``.. of a node whose calibration inputs are ``samples`` (indices into ``stats``): the
    residual channels of ``pruned`` (the prune's blocks there), and in every inner group as many channels as the
    prune keeps, the highest by ``stats``' mean importance over ``samples``."""
    out = []
    for b, kept in enumerate(pruned, start):
        inner = {}
        divisions = block_handler(dec.blocks[b]).inner_divisions(dec.blocks[b])
        for group, ids in kept.inner.items():
            scores = stats.inner_importance[b][group][samples].mean(0)
            inner[group] = top_channels(scores, ids.numel() / scores.numel(), divisions.get(group, 1))
        out.append(BlockChannels(kept.inp, kept.out, inner))
    return out


def tree_from_pruned(net: PrunedNet, spec: PrunedSpec, images: torch.Tensor, cfg: ConvertConfig, *,
                     dense: nn.Module | None = None) -> Conversion:
    """A depth-``cfg.depth`` tree splitting ``net`` (left untouched) at ``cfg.split_points`` (default: the
    architecture's); ``images`` (N, C, H, W) are normalised calibration inputs for the routers. Channel widths in
    ``cfg`` are ignored: every node keeps the prune's channel counts, and with the default
    ``cfg.from_pruned_channels="prune"`` its channels and weights. ``"cluster"`` needs the ``dense`` model the
    prune was cut from (its statistics and weights build the nodes)."""
    cluster = cfg.from_pruned_channels == "cluster"
    if cluster and dense is None:
        raise ConfigError("from_pruned_channels='cluster' needs the dense model the prune was cut from")
    model = dense if dense is not None else build_from_meta(spec.dense_meta)
    dec = decompose(model)
    splits = resolve_split_points(dec, model, cfg)
    if len(net.blocks) != len(dec.blocks):
        raise ConfigError(f"the pruned network has {len(net.blocks)} blocks; its {spec.dense_meta.arch} has "
                          f"{len(dec.blocks)}")
    n = images.shape[0]
    if n < 2**cfg.depth * cfg.min_leaf_samples:
        raise ConfigError(f"{n} calibration samples are too few for {2**cfg.depth} leaves "
                          f"(need {2**cfg.depth * cfg.min_leaf_samples})")
    bounds = splits + [len(dec.blocks)]
    stats = calibration_stats(dec, images, cfg) if cluster else None
    backbone = nn.Sequential(copy.deepcopy(net.stem), *copy.deepcopy(list(net.blocks[: splits[0]])))
    nodes: dict[str, nn.Module] = {}
    node_specs: dict[str, NodeSpec] = {}
    routers: dict[str, RouterModule] = {}
    sizes: dict[str, int] = {}
    leaves = torch.full((n,), -1, dtype=torch.long)

    def grow(bits: str, samples: torch.Tensor, path: list[nn.Module]) -> None:
        """Fit router ``r<bits>`` on the pooled output of ``path`` for the inputs ``samples`` reaching it, and
        build its children."""
        features = path_features(path, images[samples], cfg.batch_size)
        km = spherical_kmeans(features, 2, seed=cfg.seed + len(bits), restarts=cfg.kmeans_restarts,
                              min_share=cfg.min_share)
        routers[router_key(bits)] = cluster_router(cfg, features, km)
        depth = len(bits) + 1
        start, end = bounds[depth - 1], bounds[depth]
        is_leaf = depth == cfg.depth
        for branch, child in enumerate(children(bits)):
            chosen = km.labels == branch
            sizes[node_key(child)] = int(chosen.sum())
            if int(chosen.sum()) < cfg.min_leaf_samples:
                raise ConfigError(f"node {node_key(child)} received {int(chosen.sum())} calibration samples, "
                                  f"fewer than min_leaf_samples={cfg.min_leaf_samples}")
            head_in = list(spec.head_in) if is_leaf else None
            if stats is not None:
                node_spec = NodeSpec(start, end, cluster_channels(dec, stats, samples[chosen],
                                                                  spec.blocks[start:end], start), head_in)
                node = build_node(dec, node_spec)
            else:
                node_spec = NodeSpec(start, end, spec.blocks[start:end], head_in)
                layers = copy.deepcopy(list(net.blocks[start:end])) + ([copy.deepcopy(net.head)] if is_leaf else [])
                node = nn.Sequential(*layers)
            nodes[node_key(child)], node_specs[node_key(child)] = node, node_spec
            if is_leaf:
                leaves[samples[chosen]] = int(child, 2)
            else:
                grow(child, samples[chosen], [*path, node])

    grow("", torch.arange(n), [backbone])
    tree = SigmaBTree(backbone, nodes, routers, cfg.depth)
    tree.meta = spec.dense_meta
    config: dict[str, Any] = {**vars(cfg), "from_pruned": dict(spec.prune_config)}
    tree_spec = TreeSpec(spec.dense_meta, cfg.depth, [dec.block_names[i] for i in splits], node_specs,
                         {key: r.spec() for key, r in routers.items()}, config, sizes,
                         BackboneSpec(list(spec.stem_out), spec.blocks[: splits[0]]))
    return Conversion(tree.eval(), tree_spec, leaves, sizes)
