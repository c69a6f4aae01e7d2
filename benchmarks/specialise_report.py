"""BENCHMARKS.md section "Does routing beat static pruning?" from ``benchmarks/results/specialise/*.json``."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from benchmarks.c100_report import c100_specialise_section, is_c100
from benchmarks.leaf_fit import fit_cells
from benchmarks.studies import register_study

Result = dict[str, Any]
REQUIRED = ("model", "dataset", "run_id", "config", "static_epochs", "extra_epochs", "static_top1",
            "tree_start_top1", "static_continued_top1", "tree_top1", "tree_minus_static_pp", "best_single_leaf_top1",
            "specialisation_gain_pp", "oracle_top1", "leaves", "split_points", "static_params", "active_params_mean",
            "stored_params", "device", "wall_seconds", "git_commit", "machine")
#: Fields the study added later: results written before them show a dash until re-evaluated (rerunning a grid
#: re-evaluates its cached folders without training).
LATER = ("confident_top1", "leaf_disagreement", "tree_train_seconds", "static_train_seconds")


def _num(r: Result, key: str, fmt: str, scale: float = 1.0, unit: str = "") -> str:
    value = r.get(key)
    return "–" if value is None else format(value * scale, fmt) + unit


def _soft(r: Result) -> int:
    return int(r["config"]["specialise"].get("soft_epochs", 0))


def _sliced(r: Result) -> bool:
    """Whether both arms started from the prune's sliced weights (no static start) rather than the fine-tuned
    prune."""
    return r.get("start_weights") == "sliced"


def _extra(r: Result) -> str:
    shared = r["config"]["specialise"].get("shared_gradient", 0)
    return (f"{r['extra_epochs']}" + (" from the sliced prune" if _sliced(r) else "")
            + (f" ({_soft(r)} soft)" if _soft(r) else "") + (f", gradient shared {shared:g}" if shared else ""))


def _total(r: Result) -> int:
    """Fine-tuning epochs in all, the static start included: the budget both arms spent."""
    return int(r["static_epochs"]) + int(r["extra_epochs"])


def _leaf_channels(r: Result) -> str:
    return "own cluster's" if r["config"]["tree"].get("from_pruned_channels") == "cluster" else "the prune's"


def _routing(r: Result) -> str:
    start = "class groups" if r["config"].get("route_by") == "classes" else "k-means"
    trained = r["config"]["specialise"].get("router_gradient", "none") != "none"
    return f"{start}, then trained end to end (straight-through)" if trained else start


def _backbone(r: Result) -> str:
    return "trained" if r["config"]["specialise"].get("train_backbone") else "frozen"


def _setting(r: Result) -> str:
    """Everything a run sets apart from its seed (runs that differ only in the seed are repeats)."""
    config = {**r["config"], "static": {k: v for k, v in r["config"]["static"].items() if k != "seed"}}
    return json.dumps([r["model"], r["static_epochs"], r["extra_epochs"], config], sort_keys=True)


def _row(r: Result) -> str:
    shares = " / ".join(f"{100 * leaf['share']:.0f}%" for leaf in r["leaves"])
    return (f"| `{r['run_id']}` | {', '.join(r['split_points'])} | {_leaf_channels(r)} | {_routing(r)} | "
            f"{_backbone(r)} | {_extra(r)} | "
            f"{r['static_top1']:.2f}% | "
            f"{r['tree_start_top1']:.2f}% | {r['static_continued_top1']:.2f}% | **{r['tree_top1']:.2f}%** | "
            f"{r['tree_minus_static_pp']:+.2f} | {r['best_single_leaf_top1']:.2f}% | "
            f"{r['specialisation_gain_pp']:+.2f} | {_num(r, 'leaf_disagreement', '.1f', unit='%')} | "
            f"{_num(r, 'confident_top1', '.2f', unit='%')} | {r['oracle_top1']:.2f}% | {shares} | "
            f"{r['active_params_mean']:,.0f} / {r['static_params']:,.0f} | {r['stored_params']:,} | "
            f"{r['device']}, {_num(r, 'tree_train_seconds', '.0f', 1 / 60)} / "
            f"{_num(r, 'static_train_seconds', '.0f', 1 / 60)} min |")


def _router_row(r: Result) -> str:
    t = r["trained_routers"]
    fit = t["fit_on_train"]
    shares = " / ".join(f"{100 * s:.0f}%" for s in t["leaf_shares"])
    kind = t["settings"].get("kind", "mlp")
    return (f"| `{r['run_id']}` | {kind} {t['settings'].get('settings', {})} | {t['respecialised_epochs']} | "
            f"{t['static_matched_top1']:.2f}% | **{t['top1']:.2f}%** | {t['tree_minus_static_pp']:+.2f} | "
            f"{t['specialisation_gain_pp']:+.2f} | {t['oracle_top1']:.2f}% | "
            f"{fit['before']['best_leaf_agreement']:.1f}% -> {fit['after']['best_leaf_agreement']:.1f}% | "
            f"{shares} | {t['active_params_mean']:,.0f} |")


def _scale(results: list[Result]) -> str:
    """How far one more static epoch moves the static arm: the yardstick for the tree's lead."""
    steps = sorted({(r["extra_epochs"], r["extra_epochs"] + r["trained_routers"]["respecialised_epochs"],
                     r["static_continued_top1"], r["trained_routers"]["static_matched_top1"])
                    for r in results if r.get("trained_routers")})
    if not steps:
        return ""
    moves = ", ".join(f"{x:.2f}% -> {y:.2f}% ({y - x:+.2f} pp)" for _, _, x, y in steps)
    return f" For scale, one more epoch of the static prune ({steps[0][0]} -> {steps[0][1]} extra) moves it {moves}."


def _over_seeds(results: list[Result]) -> list[str]:
    """Runs that differ only in their seed (:func:`_setting`): the lead's mean and spread."""
    groups: dict[str, list[Result]] = {}
    for r in results:
        groups.setdefault(_setting(r), []).append(r)
    lines = []
    for runs in sorted(groups.values(), key=lambda runs: (runs[0]["model"], runs[0]["run_id"])):
        if len(runs) < 2:
            continue
        r = runs[0]
        ids = ", ".join(f"`{x['run_id']}`" for x in runs)
        lead = [r["tree_minus_static_pp"] for r in runs]
        gain = [r["specialisation_gain_pp"] for r in runs]
        single = [r["best_single_leaf_top1"] - r["static_continued_top1"] for r in runs]
        lines.append(f"- {r['model']}, split before {', '.join(r['split_points'])}, {_routing(r)} routing, backbone "
                     f"{_backbone(r)}, +{_extra(r)} epochs ({ids}), "
                     f"{len(runs)} seeds: tree - static **{statistics.fmean(lead):+.2f} ± {statistics.stdev(lead):.2f} "
                     f"pp** = best single leaf - static {statistics.fmean(single):+.2f} pp + specialisation gain "
                     f"{statistics.fmean(gain):+.2f} pp.")
    return (["", "Over seeds:", *lines] if lines else [])


def _decomposition(results: list[Result]) -> list[str]:
    """tree - static = (best single leaf - static) + (routed - best single leaf), averaged over the runs."""
    if len(results) < 2:
        return []
    cost = [r["best_single_leaf_top1"] - r["static_continued_top1"] for r in results]
    gain = [r["specialisation_gain_pp"] for r in results]
    lead = [r["tree_minus_static_pp"] for r in results]
    bound = [r["confident_top1"] - r["tree_top1"] for r in results if r.get("confident_top1") is not None]
    return ["", f"Where the difference comes from, over all {len(results)} runs: tree - static = (best single leaf - "
            f"static) + (routed - best single leaf) = {statistics.fmean(cost):+.2f} {statistics.fmean(gain):+.2f} = "
            f"**{statistics.fmean(lead):+.2f} pp** on average (range {min(lead):+.2f} to {max(lead):+.2f})."
            + (f" Running every leaf and keeping each input's most confident answer would change Top-1 by "
               f"{statistics.fmean(bound):+.2f} pp on average ({len(bound)} runs): "
               + ("even a selector that has seen every leaf's output does no better than the k-means routers."
                  if statistics.fmean(bound) <= 0 else "that is the most a better router could hope to add.")
               if bound else "")]


def _class_lines(results: list[Result]) -> list[str]:
    """Class-group routing: the groups, and how often the routers find an input's group against how often the
    prune's own prediction lands in the right group (what a router would have to match)."""
    lines = []
    for r in results:
        c = r.get("class_groups")
        if not c:
            continue
        depth = max(map(len, c["groups"]))
        leaves = sorted((bits, classes) for bits, classes in c["groups"].items() if len(bits) == depth)
        lines.append(f"- `{r['run_id']}`: groups " + "; ".join(f"n{b} = classes {classes}" for b, classes in leaves)
                     + f". The routers (on the split point's pooled features) find an input's group "
                     f"{c['group_accuracy']['val']:.1f}% of the time on held-out images; the prune's own prediction "
                     f"is in the right group {_num(c, 'predicted_group_accuracy_val', '.1f', unit='%')} of the time. "
                     f"Routed minus best single leaf: {r['specialisation_gain_pp']:+.2f} pp.")
    return (["", "Class-group routing (`sigmab fit-routers --targets classes`: the classes split where the prune "
             "confuses them least on the held-out images, an `mlp` router trained to predict the group, applied "
             "before specialisation):", *lines] if lines else [])


def _fit_lines(results: list[Result]) -> list[str]:
    """How each arm fits the images it trained on against the test split, per leaf (runs measured with --fit)."""
    rows = []
    for r in (r for r in results if r.get("fit")):
        for split, label in (("train", "trained on"), ("test", "test")):
            loss, top1, leaves = fit_cells(r["fit"][split])
            rows.append(f"| `{r['run_id']}` | {_total(r)} | {label} | {loss} | {top1} | {leaves} |")
    if not rows:
        return []
    return ["", "Fit or generalisation? (`--fit`) Each arm on the images both trained on (the training split less "
            "the held-out 10%, no augmentation) and on the test split; per leaf, the tree on the inputs routed to it "
            "against the static arm on the same inputs (Top-1 tree / static, difference in pp).", "",
            "| run | epochs in all | images | cross-entropy (tree / static) | Top-1 (tree / static) | "
            "per leaf (share: tree / static) |", "|---|---|---|---|---|---|", *rows]


def specialise_section(results: list[Result]) -> list[str]:
    results = sorted(results, key=lambda r: (r["model"], r["run_id"]))
    wins = [f"`{r['run_id']}`" for r in results if r["tree_minus_static_pp"] > 0]
    lines = [
        "## Does routing beat static pruning?", "",
        "The study of issue 19, rung by rung: (a) a tree split from a static prune starts as that prune (*tree "
        "start* = *static (start)*); (b) the static budget first, then each leaf trains only on its routed inputs "
        "(hard routing, distillation from the dense model), with the shared backbone frozen or trained; or, "
        "*from the sliced prune*, no static start: the tree splits the prune before fine-tuning, each leaf keeps "
        "the prune's channels or re-selects its *own cluster's* (as many per block, the top ones by the dense "
        "model's mean activation over the calibration images routed to it), and both arms train the whole budget "
        "from the same sliced weights; (c) soft "
        "routing for part of the budget, and hard EM (below); (d) trained routers: best-leaf targets (below), class "
        "groups, straight-through end to end; (e) the split point (before layer2.0, layer3.0 or layer3.2); (f) the "
        "budget: 2, 6 and 30 extra epochs. A static prune is fine-tuned (the committed recipe), then split into a "
        "tree whose every path *is* that prune (`sigmab convert --from-pruned`: its backbone shared, a copy of the "
        "rest per leaf, spherical k-means routers). The static arm gives the same prune the same extra epochs on "
        "all inputs. Active parameters match (a path is the prune plus its router); the tree stores a copy of the "
        "split-off part per leaf. *Gain* is routed minus the "
        "best single leaf used for every input; *leaves disagree* is the share of test inputs on which the leaves "
        "predict different classes (only there can routing matter); *most confident leaf* runs every leaf and "
        "keeps the surest answer (a selector that has seen every leaf's output: an optimistic bound for a router "
        "that decides first); *oracle* counts an input right when any leaf is. Test split; "
        "the fine-tuning reported on a held-out 10% of the training images.", "",
        "| run | split before | leaf channels | routing | backbone | extra epochs | static (start) | tree start | "
        "static + extra | "
        "tree + extra | tree - static (pp) | best single leaf | gain (pp) | leaves disagree | most confident leaf | "
        "oracle | leaf shares | active params (tree / static) | stored params | device, training (tree / static) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *[_row(r) for r in results], "",
        "![Static prune against the tree split from it](benchmarks/plots/specialise.png)", "",
        f"Verdict: the tree beats the equally trained static prune in {len(wins)} of {len(results)} runs"
        + (f" ({', '.join(wins)})." if wins else ".") + _scale(results),
        *_over_seeds(results),
        *_decomposition(results),
        *_class_lines(results),
        *_fit_lines(results),
        *(["", "Rungs (d) and (c): the specialised tree's routers retrained to send each training input to its "
            "lowest-loss leaf (`sigmab.tree.router_fit`: targets from every leaf's loss on the training images, "
            "weighted by the loss gap; an `mlp` router on the pooled stream), then, where *re-specialised* > 0, "
            "the leaves trained again for that many epochs on the inputs the new routers send them (one hard-EM "
            "step; the static arm gets those epochs too, in *static, same epochs*). *Best-leaf agreement* is "
            "measured on the training images the routers were fitted on.", "",
            "| run | router | re-specialised epochs | static, same epochs | tree | tree - static (pp) | gain (pp) "
            "| oracle | best-leaf agreement (train) | leaf shares | active params |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
            *[_router_row(r) for r in results if r.get("trained_routers")]]
          if any(r.get("trained_routers") for r in results) else []), "",
        "Regenerate: `python -m benchmarks.specialise --config benchmarks/configs/specialise_<grid>.yaml` for each "
        "grid (`specialise_resnet20*.yaml` on the CPU; `specialise_resnet56.yaml`; `specialise_resnet56_30ep.yaml` "
        "needs a CUDA GPU), then `python -m benchmarks.report`. Work folders are resumable and shared by grids "
        "with the same `name`; the two arms of a long run train in parallel with `--arm static` / `--arm tree`.", "",
    ]
    return lines


BUDGET_MARKERS = ("o", "s", "^", "D", "v", "P")


def write_specialise_plot(results: list[Result], path: Any) -> None:
    """Per model, two panels. Left: Top-1 against mean active parameters (% of dense) for the dense model, every
    static arm and every tree, marker shape = fine-tuning epochs in all (the budget). Right: the same Top-1
    against the budget, static arm as a line, each tree setting as its own series (seeds averaged)."""
    from sigmab.plots.figure import pyplot
    from sigmab.utils.io import atomic_path

    plt = pyplot()
    models = sorted({r["model"] for r in results})
    fig, axes = plt.subplots(len(models), 2, figsize=(11, 6.0 * len(models)), squeeze=False)
    for row, model in zip(axes, models):
        runs = [r for r in results if r["model"] == model]
        budgets = sorted({_total(r) for r in runs})
        marker = {b: BUDGET_MARKERS[i % len(BUDGET_MARKERS)] for i, b in enumerate(budgets)}
        dense = runs[0]
        left, right = row
        left.scatter([100.0], [dense["dense_top1"]], c="black", marker="*", s=80, label="dense", zorder=3)
        for r in runs:
            scale = 100.0 / r["dense_params"]
            left.scatter([r["static_params"] * scale], [r["static_continued_top1"]], c="tab:red", s=36,
                         marker=marker[_total(r)], zorder=3)
            left.scatter([r["active_params_mean"] * scale], [r["tree_top1"]], facecolors="none", s=36,
                         edgecolors="tab:blue", marker=marker[_total(r)], zorder=3)
        for b in budgets:
            left.scatter([], [], c="gray", marker=marker[b], label=f"{b} epochs")
        left.plot([], [], c="tab:red", lw=5, label="static prune (filled)")
        left.plot([], [], c="tab:blue", lw=5, label="tree (hollow)")
        left.set_xlabel("mean active parameters per input (% of dense)")
        left.set_ylabel("CIFAR-10 test top-1 (%)")
        left.set_title(f"{model}: top-1 against active parameters", fontsize=9)
        left.legend(fontsize=7, loc="lower right")
        left.grid(alpha=0.3)
        for sliced, style, label in ((False, "s-", "static prune (seed mean)"),
                                     (True, "x", "static prune, one schedule from the sliced prune")):
            static = sorted({(_total(r), r["static_continued_top1"], r["config"]["static"].get("seed", 0))
                             for r in runs if _sliced(r) == sliced})
            by_budget: dict[int, list[float]] = {}
            for b, top1, _ in static:
                by_budget.setdefault(b, []).append(top1)
            if by_budget:
                right.plot(list(by_budget), [statistics.fmean(v) for v in by_budget.values()], style, c="tab:red",
                           label=label, ms=9 if sliced else 6)
        series: dict[str, dict[int, list[float]]] = {}
        for r in runs:
            name = f"tree: {_routing(r)}, backbone {_backbone(r)}, split {', '.join(r['split_points'])}"
            name += f", {_soft(r)} soft" if _soft(r) else ""
            name += f", from the sliced prune, {_leaf_channels(r)} channels" if _sliced(r) else ""
            shared = r["config"]["specialise"].get("shared_gradient", 0)
            name += f", gradient shared {shared:g}" if shared else ""
            balance = r["config"]["specialise"].get("balance_weight")
            name += f", balance {balance:g}" if _routing(r) != "k-means" and balance is not None else ""
            warm = r["config"]["specialise"].get("balance_temperature")
            name += f" at temperature {warm:g}" if warm else ""
            series.setdefault(name, {}).setdefault(_total(r), []).append(r["tree_top1"])
        palette = [c for j, c in enumerate(plt.cm.tab20.colors) if j not in (6, 7)]  # the reds mark static
        for i, (name, points) in enumerate(sorted(series.items())):
            xs = sorted(points)
            right.plot(xs, [statistics.fmean(points[x]) for x in xs], marker="o", ls="--" if len(xs) > 1 else "",
                       c=palette[i % len(palette)], label=name)
        right.set_xscale("log")
        right.set_xticks(budgets, [str(b) for b in budgets])
        right.minorticks_off()
        right.set_xlabel("fine-tuning epochs in all, the static start included (budget)")
        right.set_ylabel("CIFAR-10 test top-1 (%)")
        right.set_title(f"{model}: same active parameters, each budget", fontsize=9)
        right.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1, frameon=False)
        right.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def specialise_sections(results: list[Result]) -> list[str]:
    """The CIFAR-10 split-from-prune study, and its CIFAR-100 runs in a section of their own."""
    c10, c100 = [r for r in results if not is_c100(r)], [r for r in results if is_c100(r)]
    return (specialise_section(c10) if c10 else []) + (c100_specialise_section(c100) if c100 else [])


def write_specialise_plots(results: list[Result], folder: Path) -> None:
    c10 = [r for r in results if not is_c100(r)]
    if c10:
        write_specialise_plot(c10, folder / "specialise.png")


register_study("specialise", REQUIRED, specialise_sections, write_specialise_plots)
