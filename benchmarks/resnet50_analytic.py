"""Analytic per-path cost of SigmaB trees on the torchvision-layout ResNet-50 (224x224 inputs), for a grid of
split points and widths; picks the conversion default as the widest tree that reaches the published cut.

Costs depend only on the kept channel counts, so the trees are converted from a randomly
initialised ResNet-50 calibrated on random 64x64 images (seeded; the channel counts do not depend
on them), and profiled at 224x224. Shares are uniform over leaves (analytic, no routing).

    python -m benchmarks.resnet50_analytic     # writes benchmarks/results/resnet50_analytic.json
"""

from __future__ import annotations

import time

import torch

from benchmarks.common import write_result
from benchmarks.studies import Result, register_study
from sigmab.eval import profile_model
from sigmab.models import build_model
from sigmab.tree import ConvertConfig, convert, cost_summary

PUBLISHED_CUT = (0.58, 0.60)  # SigmaB paper, ResNet-50 active-parameter reduction
GRID = [
    {"depth": 1, "split_points": ["layer4.0"], "widths": [0.5]},
    {"depth": 1, "split_points": ["layer4.0"], "widths": [0.25]},
    {"depth": 2, "split_points": ["layer3.0", "layer4.0"], "widths": [0.75, 0.5]},
    {"depth": 2, "split_points": ["layer3.0", "layer4.0"], "widths": [0.5, 0.5]},
    {"depth": 2, "split_points": ["layer3.0", "layer4.0"], "widths": [0.5, 0.25]},
    {"depth": 2, "split_points": ["layer3.0", "layer4.0"], "widths": [0.75, 0.5], "residual_widths": [1.0, 0.75]},
    {"depth": 2, "split_points": ["layer3.0", "layer4.0"], "widths": [0.5, 0.5], "residual_widths": [1.0, 0.5]},
    {"depth": 3, "split_points": ["layer3.0", "layer3.3", "layer4.0"], "widths": [0.75, 0.5, 0.5]},
]


REQUIRED = ("model", "input_size", "dense_params", "dense_macs", "published_cut", "rows", "chosen",
                                 "machine", "git_commit")


def resnet50_analytic_section(results: list[Result]) -> list[str]:
    lines = ["## ResNet-50 (torchvision layout): analytic cost of SigmaB trees", ""]
    for r in results:
        lo, hi = r["published_cut"]
        lines += [
            f"Per-path active parameters and MACs at {r['input_size'][0]}x{r['input_size'][1]} against dense "
            f"({r['dense_params']:,} parameters, {r['dense_macs'] / 1e9:.2f} GMACs), uniform leaf shares; the "
            f"published SigmaB cut is {100 * lo:.0f}-{100 * hi:.0f}% of active parameters. Costs depend only on the "
            "kept channel counts (no training, no data).", "",
            "| depth | split points | inner widths | residual widths | stored params | active params (mean) | "
            "params cut | active GMACs | MACs cut |", "|---|---|---|---|---|---|---|---|---|"]
        for row in r["rows"]:
            c = row["config"]
            mark = " **(default)**" if c == r["chosen"] else ""
            lines.append(f"| {c['depth']} | {', '.join(c['split_points'])} | {c['widths']} | "
                         f"{c.get('residual_widths', '1.0')} | {row['stored_params']:,} | "
                         f"{row['active_params_mean']:,.0f} | {100 * row['active_params_cut']:.1f}%{mark} | "
                         f"{row['active_macs_mean'] / 1e9:.2f} | {100 * row['active_macs_cut']:.1f}% |")
        lines += ["", "Default (what `sigmab convert --depth 2` uses for bottleneck ResNets when no widths or split "
                  "points are given): of the trees reaching the published cut, the one keeping the most active "
                  f"parameters. Source: `{r['_file']}`. Regenerate: `python -m benchmarks.resnet50_analytic`.", ""]
    return lines


register_study('resnet50_analytic', REQUIRED, resnet50_analytic_section)


def main() -> None:
    torch.manual_seed(0)
    model = build_model("resnet50")
    dense = profile_model(model, (3, 224, 224))
    calib = torch.randn(128, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    rows = []
    for cfg_kwargs in GRID:
        t0 = time.perf_counter()
        cfg = ConvertConfig(**cfg_kwargs, calib_size=128, min_leaf_samples=4)
        tree = convert(model, calib, cfg).tree
        costs = cost_summary(tree, (3, 224, 224))
        rows.append({"config": cfg_kwargs, "stored_params": costs["stored_params"],
                     "active_params_mean": costs["active_params_mean"], "active_macs_mean": costs["active_macs_mean"],
                     "paths": costs["paths"], "active_params_cut": 1 - costs["active_params_mean"] / dense.params,
                     "active_macs_cut": 1 - costs["active_macs_mean"] / dense.macs})
        print(f"{cfg_kwargs}: cut {100 * rows[-1]['active_params_cut']:.1f}% params, "
              f"{100 * rows[-1]['active_macs_cut']:.1f}% MACs ({time.perf_counter() - t0:.0f} s)", flush=True)
    # The default: of the trees reaching the published cut, the one keeping the most active parameters
    # (the most capacity per leaf); ties go to the shallower tree (fewer routers to train).
    reaching = [r for r in rows if r["active_params_cut"] >= PUBLISHED_CUT[0]]
    chosen = max(reaching, key=lambda r: (r["active_params_mean"], -r["config"]["depth"])) if reaching else None
    write_result("resnet50_analytic", {
        "benchmark": "resnet50_analytic", "model": "resnet50", "input_size": [224, 224],
        "dense_params": dense.params, "dense_macs": dense.macs, "published_cut": list(PUBLISHED_CUT),
        "rows": rows, "chosen": None if chosen is None else chosen["config"],
    })


if __name__ == "__main__":
    main()
