"""Training throughput (samples/s) per {model, phase, amp, memory_format}, all measured side by side in one run.

Each row times SGD steps (forward under the row's autocast, cross-entropy, backward, step) on one fixed batch of
random images, after warm-up steps; the rows of a model alternate over ``--repeats`` rounds and each reports the
median, so a machine's drift hits every row alike. The ratio that matters is each row's samples/s over the
fp32 NCHW row of the same model and phase. ``--loader`` also times a ResNet-20 epoch slice with the real CIFAR
loader and augmentation against the same steps on a synthetic batch (the data path's share of the step).

    python -m benchmarks.train_speed              # writes benchmarks/results/train_speed/train_speed.json
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.common import RESULTS, SHARED, git_commit, machine
from benchmarks.studies import Result, machine_summary, register_study, verdict
from sigmab import __version__
from sigmab.models import build_model
from sigmab.train.precision import cpu_has_fast_bf16, cpu_model
from sigmab.utils.io import atomic_write_json

OUT = RESULTS / "train_speed" / "train_speed.json"
REQUIRED = ("rows", "batch_size", "steps", "repeats", "cpu_model", "bf16_fast", "machine", "git_commit")
SETTINGS = (("off", "contiguous"), ("off", "channels_last"), ("bf16", "channels_last"))


def _tree(num_classes: int) -> nn.Module:
    """A depth-2 SigmaB tree converted from a ResNet-56 (inner widths 1/2, 1/4), routers at their k-means start."""
    from sigmab.tree import ConvertConfig, convert

    dense = build_model("resnet56", num_classes=num_classes, shortcut="B").eval()
    calib = torch.randn(256, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    return convert(dense, calib, ConvertConfig(depth=2, widths=[0.5, 0.25], calib_size=256,
                                               min_leaf_samples=16)).tree


def _static_prune(num_classes: int) -> nn.Module:
    from sigmab.prune import PruneConfig, prune

    dense = build_model("resnet56", num_classes=num_classes, shortcut="B").eval()
    return prune(dense, PruneConfig(criterion="fpgm", target_reduction=0.6, scope="inner"))[0]


def _soft_loss(tree: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.nll_loss(tree.forward_soft(x).mixture_log_probs(), y)


def _hard_loss(tree: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(tree.forward_hard(x)[0], y)


def _plain_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(x), y)


CASES: dict[str, tuple[Callable[[], nn.Module], str, Callable[..., torch.Tensor]]] = {
    "resnet20": (lambda: build_model("resnet20", num_classes=100, shortcut="B"), "dense", _plain_loss),
    "resnet56": (lambda: build_model("resnet56", num_classes=100, shortcut="B"), "dense", _plain_loss),
    "mobilenet_v2_cifar-0.5": (lambda: build_model("mobilenet_v2_cifar", width_mult=0.5, stage2_stride=2), "dense",
                               _plain_loss),
    "resnet56-fpgm-60": (lambda: _static_prune(100), "dense", _plain_loss),
    "resnet56-tree-d2/soft": (lambda: _tree(100), "soft", _soft_loss),
    "resnet56-tree-d2/hard": (lambda: _tree(100), "hard", _hard_loss),
}


def _step_time(model: nn.Module, loss_fn: Callable[..., torch.Tensor], x: torch.Tensor, y: torch.Tensor, *,
               amp: str, memory_format: str, steps: int) -> float:
    """Seconds per SGD step (median of ``steps``, after 2 warm-up steps)."""
    fmt = torch.channels_last if memory_format == "channels_last" else torch.contiguous_format
    model.to(memory_format=fmt).train()
    x = x.contiguous(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if amp == "bf16" else contextlib.nullcontext
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        with ctx():
            loss = loss_fn(model, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure_models(names: list[str], *, batch_size: int, steps: int, repeats: int) -> list[dict[str, Any]]:
    rows = []
    g = torch.Generator().manual_seed(0)
    for name in names:
        build, phase, loss_fn = CASES[name]
        torch.manual_seed(0)
        model = build()
        classes = 10 if name.startswith("mobilenet") else 100
        x = torch.randn(batch_size, 3, 32, 32, generator=g)
        y = torch.randint(0, classes, (batch_size,), generator=g)
        samples: dict[tuple[str, str], list[float]] = {s: [] for s in SETTINGS}
        for _ in range(repeats):
            for amp, fmt in SETTINGS:
                samples[(amp, fmt)].append(_step_time(model, loss_fn, x, y, amp=amp, memory_format=fmt, steps=steps))
        base = statistics.median(samples[("off", "contiguous")])
        for (amp, fmt), values in samples.items():
            sec = statistics.median(values)
            rows.append({"model": name, "phase": phase, "amp": amp, "memory_format": fmt, "compile": False,
                         "seconds_per_step": round(sec, 5), "samples_per_s": round(batch_size / sec, 1),
                         "speedup_vs_fp32_nchw": round(base / sec, 3), "runs": [round(v, 5) for v in values]})
            print(f"{name:26s} {phase:5s} {amp:4s} {fmt:13s} {batch_size / sec:8.1f} samples/s "
                  f"({base / sec:.2f}x)", flush=True)
    return rows


def measure_loader(*, batch_size: int, steps: int, data: Path) -> dict[str, Any]:
    """ResNet-20 bf16 channels-last steps fed by the real CIFAR-100 loader (augmentation included) against the
    same steps on one synthetic batch."""
    from sigmab.data import get_dataset_info, load_split

    info = get_dataset_info("cifar100")
    train = load_split("cifar100", "train", root=data)
    loader = train.loader(batch_size=batch_size, mean=info.mean, std=info.std, shuffle=True,
                          augment_spec=info.augment, drop_last=True)
    model = build_model("resnet20", num_classes=100, shortcut="B").to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x.contiguous(memory_format=torch.channels_last)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    batches = iter(loader)
    x0, y0 = next(batches)
    step(x0, y0)
    t0 = time.perf_counter()
    for _ in range(steps):
        x, y = next(batches)
        step(x, y)
    real = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        step(x0, y0)
    synthetic = time.perf_counter() - t0
    return {"model": "resnet20", "dataset": "cifar100", "batch_size": batch_size, "steps": steps,
            "real_samples_per_s": round(steps * batch_size / real, 1),
            "synthetic_samples_per_s": round(steps * batch_size / synthetic, 1),
            "ratio": round(synthetic / real, 3)}


def train_speed_section(results: list[Result]) -> list[str]:
    lines = ["## Training speed: bf16 autocast and channels-last against fp32 NCHW (`benchmarks.train_speed`)", ""]
    for r in results:
        lines += [f"SGD steps of batch {r['batch_size']} on one fixed batch (median of {r['steps']} steps per round, "
                  f"rounds alternated {r['repeats']} times, the median round), CPU: {r['cpu_model']} "
                  f"(fast bf16: {'yes' if r['bf16_fast'] else 'no'}), {machine_summary(r)}. `--amp auto` picks bf16 on "
                  "this CPU; the speed-up is over fp32 NCHW of the same model and phase.", "",
                  "| model | phase | amp | memory format | samples/s | speed-up |", "|---|---|---|---|---|---|"]
        for row in r["rows"]:
            lines.append(f"| {row['model']} | {row['phase']} | {row['amp']} | {row['memory_format']} | "
                         f"{row['samples_per_s']:.0f} | {row['speedup_vs_fp32_nchw']:.2f}x |")
        loader = r.get("loader")
        if loader:
            lines += ["", f"Data path: {loader['model']} on {loader['dataset']} (bf16, channels-last) fed by the real "
                      f"loader with augmentation runs at {loader['real_samples_per_s']:.0f} samples/s, "
                      f"{loader['ratio']:.2f} of the same steps on a synthetic batch "
                      f"({loader['synthetic_samples_per_s']:.0f}/s): target >= 0.9, "
                      f"{verdict(loader['ratio'] >= 0.9)}."]
        lines += ["", f"Source: `{r['_file']}`. Regenerate: `python -m benchmarks.train_speed --loader`.", ""]
    return lines


register_study('train_speed', REQUIRED, train_speed_section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loader", action="store_true", help="also time the real CIFAR-100 loader (needs ../shared)")
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "cifar100.npz.xz")
    args = parser.parse_args()
    rows = measure_models(args.models, batch_size=args.batch_size, steps=args.steps, repeats=args.repeats)
    payload: dict[str, Any] = {"benchmark": "train_speed", "rows": rows, "batch_size": args.batch_size,
                               "steps": args.steps, "repeats": args.repeats, "cpu_model": cpu_model(),
                               "bf16_fast": cpu_has_fast_bf16(), "threads": torch.get_num_threads()}
    if args.loader:
        payload["loader"] = measure_loader(batch_size=args.batch_size, steps=30, data=args.data)
        print(f"loader: {payload['loader']}")
    atomic_write_json(OUT, {**payload, "git_commit": git_commit(), "sigmab_version": __version__,
                            "machine": machine()})
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
