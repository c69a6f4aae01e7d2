"""The other dynamic-inference systems of the CIFAR grids (nested sparse networks, the input dispatcher),
each beside its paper's published figures, from their ``cifar_run`` results."""

from __future__ import annotations

from typing import Any

Result = dict[str, Any]
# Sun et al., arXiv 2112.10930 (abstract): dense accuracy at 13.38% of the weights; the nested sparser level at
# 5.38% of the weights within 3.25% relative accuracy loss.
PUBLISHED_NESTED = "13.38% of weights at dense accuracy; nested level at 5.38% of weights, 3.25% relative loss"
# Shende et al., arXiv 2507.01695 (abstract): up to 36% fewer operations at comparable accuracy on CIFAR CNNs.
PUBLISHED_DISPATCH = "up to 36% fewer operations at comparable accuracy (CIFAR CNNs)"


def _nested(results: list[Result]) -> list[str]:
    lines = [f"**Nested sparse networks** (`sigmab nested`; published: {PUBLISHED_NESTED}). Relative loss is "
             "(dense - route) / dense Top-1; weights are the route's non-zero parameters over dense; storage holds "
             "every level at once (values, positions, level tags, the BatchNorm statistics of each level and "
             "calibrated rerouting), beside the dense model's fp32 weights. A rerouting `La->Lb@k` runs masked "
             "layers before the k-th at level a, the rest at b.", "",
             "| model | route | test top-1 | relative loss | weights kept | active MACs | storage of all levels | "
             "source |", "|---|---|---|---|---|---|---|---|"]
    for r in sorted(results, key=lambda r: (r["model"], -r["active_params_mean"])):
        loss = 100 * (r["dense_top1"] - r["top1"]) / r["dense_top1"]
        lines.append(f"| {r['model']} | {r['route']} | {r['top1']:.2f}% | {loss:.2f}% | "
                     f"{100 * r['active_params_mean'] / r['dense_params']:.2f}% | {r['active_macs_mean']:,.0f} | "
                     f"{r['storage_bytes']:,} bytes ({100 * r['storage_bytes'] / (4 * r['dense_params']):.1f}% of "
                     f"dense) | `{r['_file']}` |")
    return lines + [""]


def _dispatch(results: list[Result]) -> list[str]:
    lines = [f"**Input dispatcher** (`sigmab dispatch`; published: {PUBLISHED_DISPATCH}). Each row is one point "
             "of the searched front; costs include the dispatcher's own. *Fewer ops* compares the mean MACs with "
             "the most expensive model alone, whose Top-1 is on the same inputs.", "",
             "| model | front point | models (cheapest first) | test top-1 | largest model alone | oracle | "
             "mean MACs | fewer ops than the largest | shares | source |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(results, key=lambda r: (r["model"], r["run_id"])):
        d = r["dispatch"]
        largest = max(d["models"], key=lambda m: m["mean_macs"])
        fewer = 100 * (1 - r["active_macs_mean"] / largest["mean_macs"])
        lines.append(f"| {r['model']} | {r['run_id']} | {', '.join(m['name'] for m in d['models'])} | "
                     f"{r['top1']:.2f}% | {largest['top1']:.2f}% | {d['oracle_top1']:.2f}% | "
                     f"{r['active_macs_mean']:,.0f} | {fewer:.1f}% | "
                     f"{' / '.join(f'{s:.2f}' for s in d['shares'])} | `{r['_file']}` |")
    return lines + [""]


def dynamic_section(results: list[Result]) -> list[str]:
    """Nested and dispatcher tables for whichever of the two has results; nothing when neither has."""
    nested = [r for r in results if r.get("method") == "nested"]
    dispatch = [r for r in results if r.get("method") == "dispatch"]
    if not nested and not dispatch:
        return []
    lines = ["", "### The other dynamic-inference systems", ""]
    return lines + (_nested(nested) if nested else []) + (_dispatch(dispatch) if dispatch else [])
