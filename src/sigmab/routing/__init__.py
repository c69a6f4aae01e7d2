"""Routing: unit names, router kinds (a registry) and the one walk from router logits to paths."""

from sigmab.routing.names import leaf_index, leaf_names, node_key, path_keys, router_bits, router_key
from sigmab.routing.routers import (
    DEFAULT_ROUTER,
    CosineRouter,
    MarginLinear,
    MLPRouter,
    RouterModule,
    RouterSpec,
    build_router,
    margin_form,
    pooled,
    register_router,
    router_kinds,
)
from sigmab.routing.walk import (
    choose_branch,
    chosen_path_log_prob,
    path_log_probs,
    reach_masks,
    routed_leaves,
    takes_branch_one,
    walk_all,
    walk_hard,
)

__all__ = [
    "DEFAULT_ROUTER",
    "CosineRouter",
    "MLPRouter",
    "MarginLinear",
    "RouterModule",
    "RouterSpec",
    "build_router",
    "choose_branch",
    "chosen_path_log_prob",
    "leaf_index",
    "leaf_names",
    "margin_form",
    "node_key",
    "path_keys",
    "path_log_probs",
    "pooled",
    "reach_masks",
    "register_router",
    "routed_leaves",
    "router_bits",
    "router_key",
    "router_kinds",
    "takes_branch_one",
    "walk_all",
    "walk_hard",
]
