"""BENCHMARKS.md section "Does routing beat static pruning?" from ``benchmarks/results/specialise/*.json``."""

from __future__ import annotations

import statistics
from typing import Any

Result = dict[str, Any]
REQUIRED = ("model", "dataset", "run_id", "config", "static_epochs", "extra_epochs", "static_top1",
            "tree_start_top1", "static_continued_top1", "tree_top1", "tree_minus_static_pp", "best_single_leaf_top1",
            "specialisation_gain_pp", "oracle_top1", "leaves", "split_points", "static_params", "active_params_mean",
            "stored_params", "device", "wall_seconds", "git_commit", "machine")


def _soft(r: Result) -> int:
    return int(r["config"]["specialise"].get("soft_epochs", 0))


def _extra(r: Result) -> str:
    return f"{r['extra_epochs']}" + (f" ({_soft(r)} soft)" if _soft(r) else "")


def _row(r: Result) -> str:
    shares = " / ".join(f"{100 * leaf['share']:.0f}%" for leaf in r["leaves"])
    return (f"| `{r['run_id']}` | {', '.join(r['split_points'])} | {_extra(r)} | {r['static_top1']:.2f}% | "
            f"{r['tree_start_top1']:.2f}% | {r['static_continued_top1']:.2f}% | **{r['tree_top1']:.2f}%** | "
            f"{r['tree_minus_static_pp']:+.2f} | {r['best_single_leaf_top1']:.2f}% | "
            f"{r['specialisation_gain_pp']:+.2f} | {r['oracle_top1']:.2f}% | {shares} | "
            f"{r['active_params_mean']:,.0f} / {r['static_params']:,.0f} | {r['stored_params']:,} | "
            f"{r['device']}, {r['wall_seconds'] / 60:.0f} min |")


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
    """Runs of one setting (split points, extra epochs) over several seeds: the lead's mean and spread."""
    groups: dict[tuple[str, str], list[Result]] = {}
    for r in results:
        groups.setdefault((", ".join(r["split_points"]), _extra(r)), []).append(r)
    lines = []
    for (split, extra), runs in sorted(groups.items()):
        if len(runs) < 2:
            continue
        lead = [r["tree_minus_static_pp"] for r in runs]
        gain = [r["specialisation_gain_pp"] for r in runs]
        single = [r["best_single_leaf_top1"] - r["static_continued_top1"] for r in runs]
        lines.append(f"- split before {split}, +{extra} epochs, {len(runs)} seeds: tree - static "
                     f"**{statistics.fmean(lead):+.2f} ± {statistics.stdev(lead):.2f} pp**; specialisation gain "
                     f"{statistics.fmean(gain):+.2f} pp, but the best single leaf trails the static arm by "
                     f"{-statistics.fmean(single):.2f} pp (each leaf trained on its share of the inputs only).")
    return (["", "Over seeds:", *lines] if lines else [])


def specialise_section(results: list[Result]) -> list[str]:
    results = sorted(results, key=lambda r: (r["model"], r["run_id"]))
    wins = [f"`{r['run_id']}`" for r in results if r["tree_minus_static_pp"] > 0]
    lines = [
        "## Does routing beat static pruning?", "",
        "Rungs (a), (b) and (f) of the study (issue 19): the static budget first, specialisation on top, at 2 "
        "and 6 extra epochs. A static prune "
        "is fine-tuned (the committed recipe), then split into a tree whose every path *is* that prune "
        "(`sigmab.tree.from_pruned`: its backbone shared, a copy of the rest per leaf, spherical k-means routers); "
        "each leaf then trains only on the training inputs routed to it (hard routing, distillation from the dense "
        "model). The static arm gives the same prune the same extra epochs on all inputs. Active parameters match "
        "(a path is the prune plus its router); the tree stores a copy of the split-off part per leaf. *Start* is "
        "the tree before specialisation, which must equal the prune (sanity rung a). *Gain* is routed minus the "
        "best single leaf used for every input; *oracle* counts an input right when any leaf is. Test split; "
        "the fine-tuning reported on a held-out 10% of the training images.", "",
        "| run | split before | extra epochs | static (start) | tree start | static + extra | tree + extra | "
        "tree - static (pp) | best single leaf | gain (pp) | oracle | leaf shares | active params (tree / static) | "
        "stored params | device, wall |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *[_row(r) for r in results], "",
        "![Static prune against the tree split from it](benchmarks/plots/specialise.png)", "",
        f"Verdict: the tree beats the equally trained static prune in {len(wins)} of {len(results)} runs"
        + (f" ({', '.join(wins)})." if wins else ".") + _scale(results),
        *_over_seeds(results),
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
        "Regenerate: `python -m benchmarks.specialise --config benchmarks/configs/specialise_resnet20.yaml`, then "
        "`python -m benchmarks.report`.", "",
    ]
    return lines


def write_specialise_plot(results: list[Result], path: Any) -> None:
    """One panel per run: test Top-1 of every arm as dots (not bars, since the axis does not start at 0)."""
    from sigmab.plots.figure import pyplot
    from sigmab.utils.io import atomic_path

    plt = pyplot()
    results = sorted(results, key=lambda r: (r["model"], r["run_id"]))
    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.8), squeeze=False)
    for ax, r in zip(axes[0], results):
        arms = [("static\n(start)", r["static_top1"], "tab:red"),
                (f"static\n+{r['extra_epochs']} ep", r["static_continued_top1"], "tab:red"),
                (f"tree\n+{r['extra_epochs']} ep", r["tree_top1"], "tab:blue")]
        t = r.get("trained_routers")
        if t:
            extra = r["extra_epochs"] + t["respecialised_epochs"]
            arms += [(f"static\n+{extra} ep", t["static_matched_top1"], "tab:red"),
                     (f"tree, trained\nrouters +{extra} ep", t["top1"], "tab:blue")]
        names = [a[0] for a in arms]
        ax.scatter(names, [a[1] for a in arms], c=[a[2] for a in arms], s=40, zorder=3)
        for name, value, _ in arms:
            ax.annotate(f"{value:.2f}", (name, value), textcoords="offset points", xytext=(0, 6), ha="center",
                        fontsize=7)
        values = [a[1] for a in arms]
        ax.set_ylim(min(values) - 0.4, max(values) + 0.4)
        ax.set_title(f"{r['run_id']}: split before {', '.join(r['split_points'])} (dense {r['dense_top1']:.2f}%)",
                     fontsize=8)
        ax.set_ylabel("CIFAR-10 test top-1 (%)")
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle("Same active parameters, same epochs: static prune (red) against the tree split from it (blue)",
                 fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
