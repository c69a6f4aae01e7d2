"""A dispatcher over real models, end to end (``sigmab dispatch``): score every model on the held-out split and
the test split, search the dispatcher's training space with the genetic algorithm on the held-out split, and
report the front on the test split.

The held-out split (``val_fraction`` of the training set) is cut in two: the dispatcher trains on one
half and the search scores (Top-1, -mean MACs) on the other; the test split is used once, at the end.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from sigmab.baselines.dispatch import DispatchSettings, evaluate_dispatch, train_dispatcher
from sigmab.baselines.genetic import Gene, genetic_search
from sigmab.data import load_split
from sigmab.errors import ConfigError
from sigmab.eval import profile_model
from sigmab.inputs import check_classes, load_model_or_folder
from sigmab.tree.metrics import path_costs
from sigmab.tree.model import SigmaBTree
from sigmab.utils.io import atomic_write_json
from sigmab.utils.progress import progress_bar

SEARCH_SPACE = (Gene("under", 1.0, 10.0), Gene("over", 0.1, 2.0), Gene("penalty_weight", 0.0, 3.0),
                Gene("threshold", 0.3, 1.0), Gene("hidden", 8, 64, integer=True))


@dataclass
class DispatchConfig:
    dataset: str | None = None
    data_root: str | None = None
    val_fraction: float = 0.1
    seed: int = 0
    batch_size: int = 256
    epochs: int = 30
    population: int = 8
    generations: int = 6

    def __post_init__(self) -> None:
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError("val_fraction must be in (0, 1): the dispatcher trains on the held-out split")
        if self.population < 2 or self.generations < 1 or self.epochs < 1:
            raise ConfigError("population >= 2, generations >= 1 and epochs >= 1")


@dataclass
class Scored:
    """Every model on one split: inputs (N, C, H, W) as the first model expects them, correctness (N, M),
    MACs and active parameters per input and model (N, M)."""

    inputs: torch.Tensor
    correct: torch.Tensor
    macs: torch.Tensor
    params: torch.Tensor
    labels: torch.Tensor = field(repr=False)


@torch.no_grad()
def score_models(models: list[tuple[str, torch.nn.Module]], split: Any, meta: Any, *, batch_size: int,
                 progress: bool = False) -> Scored:
    loader = split.loader(batch_size=batch_size, mean=meta.mean, std=meta.std)
    shape = split.input_shape
    costs = []
    for _, model in models:
        if isinstance(model, SigmaBTree):
            paths = path_costs(model, shape)
            costs.append((torch.tensor([c.macs for c in paths], dtype=torch.float64),
                          torch.tensor([c.params for c in paths], dtype=torch.float64)))
        else:
            profile = profile_model(model, shape)
            costs.append((torch.tensor([float(profile.macs)]), torch.tensor([float(profile.params)])))
    inputs, labels, correct, macs, params = [], [], [], [], []
    for x, y in progress_bar(loader, enabled=progress, desc="scoring models"):
        inputs.append(x)
        labels.append(y)
        row_ok, row_macs, row_params = [], [], []
        for (_, model), (m_cost, p_cost) in zip(models, costs):
            if isinstance(model, SigmaBTree):
                logits, leaves = model.forward_hard(x)
                row_macs.append(m_cost[leaves])
                row_params.append(p_cost[leaves])
            else:
                logits = model(x)
                row_macs.append(m_cost.expand(len(y)))
                row_params.append(p_cost.expand(len(y)))
            row_ok.append(logits.argmax(1) == y)
        correct.append(torch.stack(row_ok, 1))
        macs.append(torch.stack(row_macs, 1))
        params.append(torch.stack(row_params, 1))
    return Scored(torch.cat(inputs), torch.cat(correct), torch.cat(macs), torch.cat(params), torch.cat(labels))


def _settings(genome: dict[str, float], cfg: DispatchConfig) -> DispatchSettings:
    return DispatchSettings(under=genome["under"], over=genome["over"], penalty_weight=genome["penalty_weight"],
                            threshold=genome["threshold"], hidden=int(genome["hidden"]), epochs=cfg.epochs)


def run_dispatch(model_paths: list[str | os.PathLike[str]], cfg: DispatchConfig, out: str | Path, *,
                 arch: str | None = None, progress: bool = False) -> dict[str, Any]:
    """Dispatch over ``model_paths`` (dense checkpoints, tree or pruned folders); writes ``out/report.json``."""
    out = Path(out)
    if len(model_paths) < 2:
        raise ConfigError("a dispatcher needs at least two models")
    if cfg.dataset is None:
        raise ConfigError("--dataset is required")
    if (out / "report.json").exists():
        raise ConfigError(f"{out} already holds a dispatch report; choose another --out")
    loaded = []
    for path in model_paths:
        p = Path(path)
        kind, model, meta = (load_model_or_folder(None, p, arch=arch) if p.is_file()
                             else load_model_or_folder(p))
        # A run folder's weights are usually model.safetensors: name those by their folder.
        loaded.append((p.name if p.is_dir() or p.stem != "model" else p.parent.name, kind, model, meta))
    meta = loaded[0][3]
    if any((m.mean, m.std, m.input_size) != (meta.mean, meta.std, meta.input_size) for *_, m in loaded):
        raise ConfigError("every model must take the same inputs (normalisation and size)")
    held = load_split(cfg.dataset, "val", root=cfg.data_root, val_fraction=cfg.val_fraction, seed=cfg.seed)
    test = load_split(cfg.dataset, "test", root=cfg.data_root)
    check_classes(meta, held, cfg.dataset)
    models = [(name, model) for name, _, model, _ in loaded]
    val = score_models(models, held, meta, batch_size=cfg.batch_size, progress=progress)
    order = torch.argsort(val.macs.mean(0), stable=True).tolist()  # cheapest first
    models = [models[i] for i in order]
    pick = lambda s: Scored(s.inputs, s.correct[:, order], s.macs[:, order], s.params[:, order], s.labels)  # noqa: E731
    val = pick(val)
    tested = score_models(models, test, meta, batch_size=cfg.batch_size, progress=progress)
    half = torch.randperm(len(val.labels), generator=torch.Generator().manual_seed(cfg.seed))
    fit, score = half[: len(half) // 2], half[len(half) // 2:]

    def fitness(genome: dict[str, float]) -> tuple[float, float]:
        settings = _settings(genome, cfg)
        net = train_dispatcher(val.inputs[fit], val.correct[fit], settings, seed=cfg.seed)
        r = evaluate_dispatch(net, val.inputs[score], val.correct[score], val.macs[score], val.params[score],
                              settings.threshold)
        return r.top1, -r.mean_macs

    search = genetic_search(SEARCH_SPACE, fitness, population=cfg.population, generations=cfg.generations,
                            seed=cfg.seed)
    rows = []
    for genome, (val_top1, neg_macs) in search.front():
        settings = _settings(genome, cfg)
        net = train_dispatcher(val.inputs[fit], val.correct[fit], settings, seed=cfg.seed)
        r = evaluate_dispatch(net, tested.inputs, tested.correct, tested.macs, tested.params, settings.threshold)
        rows.append({"settings": asdict(settings), "val_top1": round(val_top1, 4), "val_macs": -neg_macs,
                     "top1": round(r.top1, 4), "mean_macs": r.mean_macs, "mean_params": r.mean_params,
                     "shares": r.shares, "dispatcher_macs": net.macs()})
    stored = sum(sum(p.numel() for p in model.parameters()) for _, model in models)
    report = {
        "method": "dispatch", "dataset": cfg.dataset, "config": asdict(cfg),
        "models": [{"name": name, "top1": round(100.0 * float(tested.correct[:, j].double().mean()), 4),
                    "mean_macs": float(tested.macs[:, j].mean()), "mean_params": float(tested.params[:, j].mean())}
                   for j, (name, _) in enumerate(models)],
        "oracle_top1": round(100.0 * float(tested.correct.any(1).double().mean()), 4),
        "stored_params_models": stored, "front": rows,
        "search": [{"genome": g, "val_top1": f[0], "val_macs": -f[1]} for g, f in search.evaluated],
        "best_val_top1_per_generation": [f[0] for f in search.best_per_generation],
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "report.json", report)
    return report
