"""Training throughput (samples/s) per {model, phase, amp, memory_format, compile}, all measured side by side.

Each row times SGD steps (forward under the row's autocast, loss, backward, step) on one fixed batch of random
inputs, after warm-up steps; the rows of a model alternate over ``--repeats`` rounds and each reports the median,
so a machine's drift hits every row alike. The ratio that matters is each row's samples/s over the fp32 NCHW row
of the same model and phase. On a CPU without fast bf16 (no AMX, no AVX512-BF16) bf16 is emulated and several
times slower, so there only the first model gets a bf16 row, enough to show why ``--amp auto`` means fp32.

``--compile`` adds, per model, ``torch.compile`` at the setting ``--amp auto`` trains with (channels-last for
conv nets): the compile time (the first two compiled steps beyond two steady eager steps), the steady speed, and
after how many steps the compile pays back, against one epoch of the model's training set. ``--loader`` also
times a ResNet-20 epoch slice with the real CIFAR loader and augmentation against the same steps on a synthetic
batch (the data path's share of the step).

    python -m benchmarks.train_speed --compile --loader
    # writes benchmarks/results/train_speed/train_speed-<cpu>-<isa>.json, one file per kind of CPU
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.common import RESULTS, SHARED, git_commit, machine, per_cpu_name
from benchmarks.pointnet_speed import FASHION_POINTS
from benchmarks.studies import Result, machine_summary, register_study, verdict
from sigmab import __version__
from sigmab.models import build_model
from sigmab.train.precision import auto_amp_for_model, cpu_has_fast_bf16, cpu_isa, cpu_model
from sigmab.utils.io import atomic_write_json

REQUIRED = ("rows", "batch_size", "steps", "repeats", "cpu_model", "bf16_fast", "machine", "git_commit")
SETTINGS = (("off", "contiguous"), ("off", "channels_last"), ("bf16", "channels_last"))
CIFAR_EPOCH = 45_000  # CIFAR training images less the 10% every study holds out
FASHION_POINTS_EPOCH = 54_000  # Fashion-MNIST's 60,000 training images as point sets, less 10%


def out_path(cpu: str, isa: str) -> Path:
    """One results file per kind of CPU: ``train_speed-intel-xeon-processor-amx.json``."""
    return RESULTS / "train_speed" / f"{per_cpu_name('train_speed', cpu, isa)}.json"


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


@dataclass(frozen=True)
class Case:
    """One model and training phase to time. ``input_shape`` excludes the batch; ``batch_size`` overrides the
    run's batch where the model's own training uses another (the point-set grid trains on 64 clouds)."""

    build: Callable[[], nn.Module]
    phase: str
    loss: Callable[..., torch.Tensor]
    classes: int
    input_shape: tuple[int, ...] = (3, 32, 32)
    epoch_samples: int = CIFAR_EPOCH
    batch_size: int | None = None

    @property
    def image(self) -> bool:
        return len(self.input_shape) == 3


CASES: dict[str, Case] = {
    "resnet20": Case(lambda: build_model("resnet20", num_classes=100, shortcut="B"), "dense", _plain_loss, 100),
    "resnet56": Case(lambda: build_model("resnet56", num_classes=100, shortcut="B"), "dense", _plain_loss, 100),
    "mobilenet_v2_cifar-0.5": Case(lambda: build_model("mobilenet_v2_cifar", width_mult=0.5, stage2_stride=2),
                                   "dense", _plain_loss, 10),
    # the PointNet++ the point-set grid trains (benchmarks/configs/fashion_points.yaml), at its batch
    "pointnet2_ssg-fashion": Case(lambda: build_model("pointnet2_ssg", num_classes=10, in_channels=4,
                                                      mean=(0.0,) * 4, std=(1.0,) * 4, **FASHION_POINTS),
                                  "dense", _plain_loss, 10,
                                  input_shape=(4, 256), epoch_samples=FASHION_POINTS_EPOCH, batch_size=64),
    "resnet56-fpgm-60": Case(lambda: _static_prune(100), "dense", _plain_loss, 100),
    "resnet56-tree-d2/soft": Case(lambda: _tree(100), "soft", _soft_loss, 100),
    "resnet56-tree-d2/hard": Case(lambda: _tree(100), "hard", _hard_loss, 100),
}


def settings_for(case: Case, *, with_bf16: bool) -> list[tuple[str, str]]:
    """(amp, memory format) rows of a case: channels-last only for image models, bf16 only where asked."""
    formats = ("contiguous", "channels_last") if case.image else ("contiguous",)
    return [("off", fmt) for fmt in formats] + ([("bf16", formats[-1])] if with_bf16 else [])


def auto_setting(case: Case, model: nn.Module, bf16_fast: bool) -> tuple[str, str]:
    """The (amp, memory format) ``--amp auto`` and the trainers pick for this model on this CPU."""
    amp = auto_amp_for_model("bf16" if bf16_fast else "off", torch.device("cpu"), model)
    return amp, "channels_last" if case.image else "contiguous"


def _step_fn(model: nn.Module, loss_fn: Callable[..., torch.Tensor], *, amp: str,
             compiled: bool) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if amp == "bf16" else contextlib.nullcontext

    def loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with ctx():
            return loss_fn(model, x, y)

    return torch.compile(loss) if compiled else loss


def _sgd_step(loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], opt: torch.optim.Optimizer,
              x: torch.Tensor, y: torch.Tensor) -> None:
    loss = loss_of(x, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _step_times(model: nn.Module, loss_fn: Callable[..., torch.Tensor], x: torch.Tensor, y: torch.Tensor, *,
                amp: str, memory_format: str, steps: int, compiled: bool = False) -> tuple[float, float]:
    """(median seconds per SGD step over ``steps``, wall of the 2 warm-up steps before them)."""
    fmt = torch.channels_last if memory_format == "channels_last" else torch.contiguous_format
    model.to(memory_format=fmt).train()
    x = x.contiguous(memory_format=fmt) if x.dim() == 4 else x
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    step = _step_fn(model, loss_fn, amp=amp, compiled=compiled)
    times = []
    for _ in range(steps + 2):
        t0 = time.perf_counter()
        _sgd_step(step, opt, x, y)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[2:]), sum(times[:2])


def _compile_row(name: str, case: Case, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, amp: str, fmt: str,
                 eager_sec: float, steps: int, batch: int) -> dict[str, Any]:
    """torch.compile at one setting: its compile seconds, steady speed and payback against one epoch."""
    import torch._dynamo

    torch._dynamo.reset()
    row: dict[str, Any] = {"model": name, "phase": case.phase, "amp": amp, "memory_format": fmt, "compile": True}
    try:
        sec, warmup = _step_times(model, case.loss, x, y, amp=amp, memory_format=fmt, steps=steps, compiled=True)
    except Exception as exc:  # a model the compiler cannot take is a result, not a crash of the benchmark
        return {**row, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
    compile_s = max(warmup - 2 * sec, 0.0)
    epoch_steps = math.ceil(case.epoch_samples / batch)
    saved = eager_sec - sec
    payback = math.ceil(compile_s / saved) if saved > 0 else None
    return {**row, "seconds_per_step": round(sec, 5), "samples_per_s": round(batch / sec, 1),
            "speedup_vs_eager": round(eager_sec / sec, 3), "compile_seconds": round(compile_s, 1),
            "payback_steps": payback, "epoch_steps": epoch_steps,
            "pays_back_in_one_epoch": payback is not None and payback <= epoch_steps}


def measure_models(names: list[str], *, batch_size: int, steps: int, repeats: int, compile_: bool = False,
                   bf16_fast: bool | None = None) -> list[dict[str, Any]]:
    bf16_fast = cpu_has_fast_bf16() if bf16_fast is None else bf16_fast
    rows = []
    g = torch.Generator().manual_seed(0)
    for i, name in enumerate(names):
        case = CASES[name]
        batch = case.batch_size or batch_size
        torch.manual_seed(0)
        model = case.build()
        x = torch.randn(batch, *case.input_shape, generator=g)
        y = torch.randint(0, case.classes, (batch,), generator=g)
        settings = settings_for(case, with_bf16=bf16_fast or i == 0)
        samples: dict[tuple[str, str], list[float]] = {s: [] for s in settings}
        for _ in range(repeats):
            for amp, fmt in settings:
                samples[(amp, fmt)].append(_step_times(model, case.loss, x, y, amp=amp, memory_format=fmt,
                                                       steps=steps)[0])
        base = statistics.median(samples[("off", "contiguous")])
        auto = auto_setting(case, model, bf16_fast)
        for (amp, fmt), values in samples.items():
            sec = statistics.median(values)
            rows.append({"model": name, "phase": case.phase, "amp": amp, "memory_format": fmt, "compile": False,
                         "batch_size": batch, "seconds_per_step": round(sec, 5),
                         "samples_per_s": round(batch / sec, 1), "speedup_vs_fp32_nchw": round(base / sec, 3),
                         "auto": (amp, fmt) == auto, "runs": [round(v, 5) for v in values]})
            print(f"{name:26s} {case.phase:5s} {amp:4s} {fmt:13s} {batch / sec:8.1f} samples/s "
                  f"({base / sec:.2f}x)", flush=True)
        if compile_:
            amp, fmt = auto
            eager = statistics.median(samples[(amp, fmt)])
            row = _compile_row(name, case, model, x, y, amp=amp, fmt=fmt, eager_sec=eager, steps=steps,
                               batch=batch)
            rows.append({**row, "batch_size": batch})
            print(f"{name:26s} {case.phase:5s} {amp:4s} {fmt:13s} compiled: "
                  + (row["error"] if "error" in row else f"{row['samples_per_s']:8.1f} samples/s "
                     f"({row['speedup_vs_eager']:.2f}x eager), compile {row['compile_seconds']:.0f} s, "
                     f"payback {row['payback_steps']} steps"), flush=True)
    return rows


def measure_loader(*, batch_size: int, steps: int, data: Path, amp: str) -> dict[str, Any]:
    """ResNet-20 channels-last steps at ``amp`` fed by the real CIFAR-100 loader (augmentation included) against
    the same steps on one synthetic batch."""
    from sigmab.data import get_dataset_info, load_split

    info = get_dataset_info("cifar100")
    train = load_split("cifar100", "train", root=data)
    loader = train.loader(batch_size=batch_size, mean=info.mean, std=info.std, shuffle=True,
                          augment_spec=info.augment, drop_last=True)
    model = build_model("resnet20", num_classes=100, shortcut="B").to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    loss_of = _step_fn(model, _plain_loss, amp=amp, compiled=False)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        _sgd_step(loss_of, opt, x.contiguous(memory_format=torch.channels_last), y)

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
    return {"model": "resnet20", "dataset": "cifar100", "batch_size": batch_size, "steps": steps, "amp": amp,
            "real_samples_per_s": round(steps * batch_size / real, 1),
            "synthetic_samples_per_s": round(steps * batch_size / synthetic, 1),
            "ratio": round(synthetic / real, 3)}


def _setting_name(amp: str, fmt: str) -> str:
    return f"{'bf16' if amp == 'bf16' else 'fp32'} {'channels-last' if fmt == 'channels_last' else 'NCHW'}"


def _is_auto(r: Result, row: dict[str, Any]) -> bool:
    """Whether ``--amp auto`` trains ``row``'s model at its setting; files written before rows carried the flag
    get it from the rule the flag records (bf16 on a fast-bf16 CPU unless depthwise, channels-last)."""
    if "auto" in row:
        return bool(row["auto"])
    amp = "bf16" if r["bf16_fast"] and not row["model"].startswith("mobilenet") else "off"
    return row["amp"] == amp and row["memory_format"] == "channels_last"


def _eager_lines(r: Result) -> list[str]:
    lines = ["| model | phase | batch | amp | memory format | samples/s | speed-up | `--amp auto` |",
             "|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        if not row.get("compile"):
            lines.append(f"| {row['model']} | {row['phase']} | {row.get('batch_size', r['batch_size'])} | "
                         f"{row['amp']} | {row['memory_format']} | {row['samples_per_s']:.0f} | "
                         f"{row['speedup_vs_fp32_nchw']:.2f}x | {'yes' if _is_auto(r, row) else ''} |")
    targets = [row for row in r["rows"] if not row.get("compile") and _is_auto(r, row)
               and row["model"] in ("resnet56", "mobilenet_v2_cifar-0.5")]
    if targets:
        lines += ["", "Target (issue 29): ResNet-56 and MobileNetV2 steps at the `--amp auto` setting >= 1.8x fp32 "
                  "NCHW: " + "; ".join(f"{row['model']} {row['speedup_vs_fp32_nchw']:.2f}x, "
                                         f"{verdict(row['speedup_vs_fp32_nchw'] >= 1.8)}" for row in targets) + "."]
    return lines


def _compile_lines(r: Result) -> list[str]:
    rows = [row for row in r["rows"] if row.get("compile")]
    if not rows:
        return []
    lines = ["", "`torch.compile` (inductor) at the `--amp auto` setting of each model, against the same setting "
             "eager: compile seconds are the first two compiled steps beyond two steady ones; the compile pays back "
             "when the steps it saves have repaid it, counted against one epoch (45,000 CIFAR images or 54,000 "
             "Fashion-MNIST point sets at the row's batch).", "",
             "| model | phase | setting | compile | eager samples/s | compiled samples/s | speed-up | pays back after "
             "| within one epoch |", "|---|---|---|---|---|---|---|---|---|"]
    eager = {(row["model"], row["amp"], row["memory_format"]): row for row in r["rows"] if not row.get("compile")}
    for row in rows:
        setting = _setting_name(row["amp"], row["memory_format"])
        if "error" in row:
            lines.append(f"| {row['model']} | {row['phase']} | {setting} | failed: {row['error']} | | | | | no |")
            continue
        base = eager[(row["model"], row["amp"], row["memory_format"])]
        payback = f"{row['payback_steps']} steps" if row["payback_steps"] is not None else "never (slower)"
        lines.append(f"| {row['model']} | {row['phase']} | {setting} | {row['compile_seconds']:.0f} s | "
                     f"{base['samples_per_s']:.0f} | {row['samples_per_s']:.0f} | {row['speedup_vs_eager']:.2f}x | "
                     f"{payback} | {'yes' if row['pays_back_in_one_epoch'] else 'no'} of {row['epoch_steps']} |")
    return lines


def train_speed_section(results: list[Result]) -> list[str]:
    lines = ["## Training speed: bf16 autocast, channels-last and torch.compile against fp32 NCHW "
             "(`benchmarks.train_speed`)", "",
             "One results file per kind of CPU: what `--amp auto` picks, and what it gains, depends on the CPU.", ""]
    for r in results:
        isa = f"{r['cpu_isa']}, " if r.get("cpu_isa") else ""
        auto = ("bf16 on this CPU (fp32 for models with depthwise convolutions)" if r["bf16_fast"] else
                "fp32 on this CPU: without AMX or AVX512-BF16, bf16 is emulated, so only the first model has a bf16 "
                "row, to show what it would cost")
        lines += [f"### {r['cpu_model']} ({isa}fast bf16: {'yes' if r['bf16_fast'] else 'no'})", "",
                  f"SGD steps on one fixed batch (median of {r['steps']} steps per round, rounds alternated "
                  f"{r['repeats']} times, the median round), {machine_summary(r)}. `--amp auto` picks {auto}; the "
                  "speed-up is over fp32 NCHW of the same model and phase.", ""]
        lines += _eager_lines(r) + _compile_lines(r)
        loader = r.get("loader")
        if loader:
            precision = "bf16" if loader.get("amp", "bf16") == "bf16" else "fp32"
            lines += ["", f"Data path: {loader['model']} on {loader['dataset']} ({precision}, channels-last) fed by "
                      f"the real loader with augmentation runs at {loader['real_samples_per_s']:.0f} samples/s, "
                      f"{loader['ratio']:.2f} of the same steps on a synthetic batch "
                      f"({loader['synthetic_samples_per_s']:.0f}/s): target >= 0.9, "
                      f"{verdict(loader['ratio'] >= 0.9)}."]
        lines += ["", f"Source: `{r['_file']}`. Regenerate (on such a CPU): "
                  "`python -m benchmarks.train_speed --compile --loader`.", ""]
    return lines


register_study('train_speed', REQUIRED, train_speed_section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile at the auto setting")
    parser.add_argument("--loader", action="store_true", help="also time the real CIFAR-100 loader (needs ../shared)")
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "cifar100.npz.xz")
    parser.add_argument("--out", type=Path, default=None, help="results file (default: one per kind of CPU)")
    args = parser.parse_args()
    bf16_fast = cpu_has_fast_bf16()
    rows = measure_models(args.models, batch_size=args.batch_size, steps=args.steps, repeats=args.repeats,
                          compile_=args.compile, bf16_fast=bf16_fast)
    payload: dict[str, Any] = {"benchmark": "train_speed", "rows": rows, "batch_size": args.batch_size,
                               "steps": args.steps, "repeats": args.repeats, "cpu_model": cpu_model(),
                               "cpu_isa": cpu_isa(), "bf16_fast": bf16_fast, "threads": torch.get_num_threads()}
    if args.loader:
        payload["loader"] = measure_loader(batch_size=args.batch_size, steps=30, data=args.data,
                                           amp="bf16" if bf16_fast else "off")
        print(f"loader: {payload['loader']}")
    out = args.out or out_path(cpu_model(), cpu_isa())
    atomic_write_json(out, {**payload, "git_commit": git_commit(), "sigmab_version": __version__,
                            "machine": machine()})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
