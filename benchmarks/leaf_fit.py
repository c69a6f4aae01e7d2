"""Per leaf: does a tree's leaf beat a static network on the inputs routed to it? (issue 30)

The tree's Top-1 is the share-weighted sum of each leaf's Top-1 on the inputs routed to it, and the static net's is
the same sum over the same inputs, so ``tree - static = sum over leaves of share x (leaf - static on that leaf's
inputs)``: this splits a grid's tree-against-static difference by leaf, on the images both arms trained on (the
training split less the held-out part, no augmentation) and on the test split. A specialist that wins on its own
inputs but loses overall points at routing; one that loses on its own inputs lacks what the static net gained from
training on every image. Reads the run folders a grid left (``benchmarks/runs/{id}-s{seed}/tree`` and
``.../pruned``), so it runs where the grid ran.

    python -m benchmarks.leaf_fit --config benchmarks/configs/c100_resnet20_sweep.yaml \\
        --pair c100-r20-d2-w20-08 c100-r20-shape-w20-08 --seeds 0
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks.common import RESULTS, RUNS, git_commit, machine
from benchmarks.studies import Result, register_study
from sigmab.data import load_split
from sigmab.errors import ConfigError
from sigmab.prune.spec import load_pruned
from sigmab.tree import load_tree
from sigmab.utils.io import atomic_write_json

ARMS = ("static", "tree")
OUT = RESULTS / "leaf_fit"
REQUIRED = ("tree", "static", "seed", "model", "dataset", "fit", "git_commit", "machine")


def _fit_summary(mask: torch.Tensor, loss: dict[str, torch.Tensor], right: dict[str, torch.Tensor]
                 ) -> dict[str, float]:
    """Share, and each arm's mean cross-entropy and Top-1, over the inputs in ``mask`` (N,)."""
    out = {"share": round(float(mask.double().mean()), 4)}
    for arm in ARMS:
        out[f"{arm}_loss"] = round(float(loss[arm][mask].mean()), 4)
        out[f"{arm}_top1"] = round(100 * float(right[arm][mask].double().mean()), 2)
    return out


@torch.no_grad()
def fit_by_leaf(tree_dir: Path, static_dir: Path, *, val_fraction: float, seed: int) -> dict[str, Any]:
    """Per leaf of the tree in ``tree_dir``, on the training images less the held-out ``val_fraction`` (split by
    ``seed``, as the arms trained) and on the test split: the tree's cross-entropy and Top-1 on the inputs routed
    to that leaf, and the static net's (``static_dir``, a pruned-run folder) on the same inputs.

    Returns ``{split: {"all": summary, "leaves": [summary per leaf]}}``, each summary ``share``,
    ``{tree,static}_loss`` and ``{tree,static}_top1`` (%)."""
    tree, spec = load_tree(tree_dir)
    net, _ = load_pruned(static_dir)
    tree.eval(), net.eval()
    source, meta = dict(spec.convert_config.get("source") or {}), spec.dense_meta
    out: dict[str, Any] = {}
    for split in ("train", "test"):
        data = load_split(source["dataset"], split, root=source.get("data_root"),
                          val_fraction=val_fraction if split == "train" else 0.0, seed=seed)
        leaves, loss, right = [], {arm: [] for arm in ARMS}, {arm: [] for arm in ARMS}
        for x, y in data.loader(batch_size=500, mean=meta.mean, std=meta.std):
            z_tree, leaf = tree.forward_hard(x)  # (N, classes), (N,) leaf index
            leaves.append(leaf)
            for arm, z in (("tree", z_tree), ("static", net(x))):
                loss[arm].append(F.cross_entropy(z, y, reduction="none"))
                right[arm].append(z.argmax(1) == y)
        leaf = torch.cat(leaves)
        loss_all = {arm: torch.cat(v) for arm, v in loss.items()}
        right_all = {arm: torch.cat(v) for arm, v in right.items()}
        out[split] = {"all": _fit_summary(torch.ones_like(leaf, dtype=torch.bool), loss_all, right_all),
                      "leaves": [_fit_summary(leaf == i, loss_all, right_all) for i in range(len(tree.leaves))]}
    return out


def fit_cells(f: dict[str, Any]) -> tuple[str, str, str]:
    """Table cells of one split of :func:`fit_by_leaf`: cross-entropy (tree / static), Top-1 (tree / static,
    difference) and per leaf (share: tree / static, difference; one cell, so the table keeps its columns)."""
    a = f["all"]
    leaves = "; ".join(f"{100 * leaf['share']:.0f}%: {leaf['tree_top1']:.2f}% / {leaf['static_top1']:.2f}% "
                        f"({leaf['tree_top1'] - leaf['static_top1']:+.2f})" for leaf in f["leaves"])
    return (f"{a['tree_loss']:.3f} / {a['static_loss']:.3f}",
            f"{a['tree_top1']:.2f}% / {a['static_top1']:.2f}% ({a['tree_top1'] - a['static_top1']:+.2f})", leaves)


def run_pair(grid: dict[str, Any], tree_id: str, static_id: str, seed: int, *, runs_dir: Path = RUNS,
             results_dir: Path = OUT) -> Path:
    """:func:`fit_by_leaf` for one seed of a grid's tree run and static run; writes and returns the result file."""
    tree_dir, static_dir = runs_dir / f"{tree_id}-s{seed}" / "tree", runs_dir / f"{static_id}-s{seed}" / "pruned"
    for folder, what in ((tree_dir, "a tree run"), (static_dir, "a pruned run")):
        if not folder.is_dir():
            raise ConfigError(f"{folder} does not exist: it must be {what} of the grid, seed {seed} (run "
                              f"python -m benchmarks.cifar --config ... --only ID --seeds {seed} first, here)")
    fit = fit_by_leaf(tree_dir, static_dir, val_fraction=float(grid.get("val_fraction", 0.0)), seed=seed)
    result = {"benchmark": "leaf_fit", "tree": tree_id, "static": static_id, "seed": seed, "model": grid["model"],
              "dataset": grid.get("dataset"), "val_fraction": grid.get("val_fraction", 0.0), "fit": fit,
              "git_commit": git_commit(), "machine": machine()}
    path = results_dir / f"{tree_id}-vs-{static_id}-s{seed}.json"
    atomic_write_json(path, result)
    return path


def leaf_fit_section(results: list[Result]) -> list[str]:
    rows = []
    for r in sorted(results, key=lambda r: (r["model"], r["tree"], r["static"], r["seed"])):
        for split, label in (("train", "trained on"), ("test", "test")):
            loss, top1, leaves = fit_cells(r["fit"][split])
            rows.append(f"| {r['model']} | `{r['tree']}` | `{r['static']}` | {r['seed']} | {label} | {loss} | {top1} "
                        f"| {leaves} |")
    wins = [leaf for r in results for leaf in r["fit"]["test"]["leaves"] if leaf["tree_top1"] > leaf["static_top1"]]
    n_leaves = sum(len(r["fit"]["test"]["leaves"]) for r in results)
    return ["## Per leaf: the tree against a static net on each leaf's own inputs (issue 30)", "",
            "tree - static = the sum over leaves of share x (leaf Top-1 - static Top-1, both on the inputs routed to "
            "that leaf). Each arm on the images both trained on (the training split less the held-out part, no "
            "augmentation) and on the test split; per leaf, the tree on the inputs routed to it against the static "
            "net on the same inputs (Top-1 tree / static, difference in pp). A leaf that loses even on its own "
            "inputs lacks what the static net gained from every image; one that wins there but not overall points "
            "at routing.", "",
            f"On the test split, {len(wins)} of {n_leaves} leaves beat the static net on their own inputs.", "",
            "| model | tree | static | seed | images | cross-entropy (tree / static) | Top-1 (tree / static) | "
            "per leaf (share: tree / static) |", "|---|---|---|---|---|---|---|---|", *rows, "",
            "Source: " + ", ".join(f"`{r['_file']}`" for r in results) + ". Regenerate (where the grid's run folders "
            "are): `python -m benchmarks.leaf_fit --config GRID --pair TREE_ID STATIC_ID --seeds N`.", ""]


register_study("leaf_fit", REQUIRED, leaf_fit_section)


def main() -> None:
    from benchmarks.cifar import load_grid

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="the grid both runs come from")
    parser.add_argument("--pair", nargs=2, action="append", required=True, metavar=("TREE_ID", "STATIC_ID"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--runs-dir", type=Path, default=RUNS)
    args = parser.parse_args()
    grid = load_grid(args.config)
    for tree_id, static_id in args.pair:
        for seed in args.seeds:
            print(f"wrote {run_pair(grid, tree_id, static_id, seed, runs_dir=args.runs_dir)}")


if __name__ == "__main__":
    main()
