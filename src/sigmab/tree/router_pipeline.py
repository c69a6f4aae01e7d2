"""Refit a tree folder's routers from files: a tree folder in, a new tree folder with trained routers out.

Two kinds of targets (:data:`TARGETS`):

- ``best-leaf``: each training input goes to the leaf with the lowest loss on it
  (:func:`sigmab.tree.router_fit.branch_targets`); after the leaves have specialised, this is the
  E-step of hard EM. Fine-tuning the new folder with hard routing (``sigmab finetune OUT
  --soft-epochs 0 --hard-epochs N``) is the M-step; alternate the two for more rounds.
- ``classes``: each input goes to its class group, the classes split where the tree confuses them
  least on the held-out images (:mod:`sigmab.tree.class_groups`).

The new folder holds the tree's current weights (fine-tuned when present) with the new routers in
``tree.safetensors``, and ``router_fit.json`` (targets, routing scores before and after; with
``classes``, the groups and the routers' group accuracy). The source folder is never changed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from sigmab.config import option
from sigmab.data import load_split
from sigmab.errors import ConfigError, check_settings
from sigmab.inputs import check_classes
from sigmab.models.checkpoint import recorded_data_source
from sigmab.routing import router_kinds
from sigmab.tree.class_groups import class_hierarchy, confusion_counts, group_accuracy, group_targets, leaf_of_class
from sigmab.tree.model import SigmaBTree
from sigmab.tree.router_fit import RoutingData, collect_routing_data, fit_routers, routed_on
from sigmab.tree.spec import SPEC_FILE, TreeSpec, load_tree, save_tree
from sigmab.utils.io import atomic_write_json, building_folder

TARGETS = ("best-leaf", "classes")
REPORT_FILE = "router_fit.json"


@dataclass
class RouterFitConfig:
    targets: str = option(
        "best-leaf",
        "what the routers learn to predict: best-leaf (each input's lowest-loss leaf; the E-step of hard EM) or "
        "classes (each input's class group, split where the tree confuses classes least)")
    kind: str = option("mlp", "router kind to train (a registered kind, e.g. mlp or cosine)")
    settings: dict[str, Any] = option(factory=lambda: {"hidden": 64}, help="the router kind's settings, as YAML")
    epochs: int = option(30, "router training epochs (Adam, on frozen features)")
    lr: float = option(0.01, "router learning rate")
    min_share: float = option(0.3, "classes: the smallest share of a node's classes either group may hold")
    val_fraction: float = option(
        0.1,
        "held-out fraction of the training images (classes: where the confusions are counted); the routers train on "
        "the rest. Use the tree's own fine-tuning value so the held-out images stay unseen")
    batch_size: int = option(256, "batch size of the pass that runs every leaf")
    seed: int = option(0, "seed of the hold-out split and of router training")

    def __post_init__(self) -> None:
        checks = [
            (self.targets in TARGETS, f"targets must be one of {', '.join(TARGETS)}"),
            (self.kind in router_kinds(), f"kind must be one of {', '.join(router_kinds())}"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (0.0 < self.min_share <= 0.5, "min_share must be in (0, 0.5]"),
            (0.0 <= self.val_fraction < 1.0, "val_fraction must be in [0, 1)"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
        ]
        check_settings(checks)
        if self.targets == "classes" and self.val_fraction == 0:
            raise ConfigError("targets 'classes' needs val_fraction > 0: the class groups come from the tree's "
                              "confusions on held-out images")




def class_routing(tree: SigmaBTree, held_out: RoutingData, train: RoutingData, *, num_classes: int,
                  min_share: float) -> tuple[dict[str, list[int]], dict[str, tuple[torch.Tensor, torch.Tensor]],
                                             torch.Tensor]:
    """(class groups, per-router targets on ``train``, confusion (K, K)): the groups split the classes where
    ``tree``'s routed predictions on ``held_out`` confuse them least."""
    rows = torch.arange(held_out.labels.numel())
    predictions = held_out.leaf_predictions[rows, routed_on(tree, held_out)]
    confusion = confusion_counts(predictions, held_out.labels, num_classes)
    groups = class_hierarchy(confusion, tree.depth, min_share=min_share)
    return groups, group_targets(train.labels, groups, tree.depth), confusion


def refit_routers(tree: SigmaBTree, spec: TreeSpec, cfg: RouterFitConfig, *, data_root: str | None = None,
                  dataset: str, progress: bool = False) -> dict[str, Any]:
    """Train new routers for ``tree`` in place (and record them in ``spec``); returns the fit report."""
    common = dict(root=data_root, val_fraction=cfg.val_fraction, seed=cfg.seed)
    splits = {"train": load_split(dataset, "train", **common)}
    if cfg.targets == "classes":  # only class groups read the held-out images (best-leaf targets never do)
        splits["val"] = load_split(dataset, "val", **common)
    meta = spec.dense_meta
    data = {}
    for name, split in splits.items():
        check_classes(meta, split, dataset)
        if len(split) == 0:
            raise ConfigError(f"the {name} split of {dataset} holds no samples")
        loader = split.loader(batch_size=cfg.batch_size, mean=meta.mean, std=meta.std)
        data[name] = collect_routing_data(tree, loader, progress=progress)
    report: dict[str, Any] = {"config": asdict(cfg), "dataset": dataset}
    targets = None
    if cfg.targets == "classes":
        groups, targets, confusion = class_routing(tree, data["val"], data["train"], num_classes=meta.num_classes,
                                                   min_share=cfg.min_share)
        owner = leaf_of_class(groups, tree.depth, meta.num_classes)
        same_group = owner[:, None] == owner[None, :]
        report |= {"groups": groups, "val_confusion": confusion.tolist(),
                   # how often the tree's own prediction lands in the right group: what a router has to match
                   "predicted_group_accuracy_val": 100.0 * float(confusion[same_group].sum() / confusion.sum())}
    fit = fit_routers(tree, spec, data["train"], kind=cfg.kind, settings=cfg.settings, epochs=cfg.epochs,
                      lr=cfg.lr, seed=cfg.seed, targets=targets)
    report["fit_on_train"] = fit
    if cfg.targets == "classes":
        report["group_accuracy"] = {name: group_accuracy(routed_on(tree, d), d.labels, report["groups"],
                                                         tree.depth, meta.num_classes) for name, d in data.items()}
    return report


def fit_routers_folder(tree_dir: str | Path, *, out: str | Path, cfg: RouterFitConfig, progress: bool = False
                       ) -> dict[str, Any]:
    """Load ``tree_dir`` (its fine-tuned weights when present), train new routers, write the tree to ``out``."""
    out = Path(out)
    if (out / SPEC_FILE).exists():
        raise ConfigError(f"{out} already holds a tree; choose another --out")
    tree, spec = load_tree(tree_dir)
    source = recorded_data_source(tree_dir, spec.convert_config.get("source"), purpose="fit the routers on")
    with building_folder(out, what="tree") as folder:
        report = refit_routers(tree, spec, cfg, data_root=source.get("data_root"), dataset=source["dataset"],
                               progress=progress)
        report["from"] = str(Path(tree_dir).resolve())
        spec.convert_config["source"] = source  # absolute: the new folder lives elsewhere
        save_tree(tree, spec, folder)
        atomic_write_json(folder / REPORT_FILE, report)
    return report
