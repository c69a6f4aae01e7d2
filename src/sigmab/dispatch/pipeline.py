"""A dispatcher over real models, end to end (``sigmab dispatch``): score every model on the held-out split and
the test split, search the dispatcher's training space with a multi-objective evolutionary search on the
held-out split (sigmab's own GA by default, or pymoo's NSGA-II: ``search``), and report the front on the test
split.

The held-out split (``val_fraction`` of the training set) is cut in two: the dispatcher trains on one
half and the search scores (Top-1, -mean MACs) on the other; the test split is used once, at the end.

Models trained on the whole training set (the shared pretrained ResNets are) are right on nearly every
held-out training image, so every input's target would be the cheapest model. ``learn_on="test-half"``
is for them: the dispatcher learns and is searched on a seeded half of the test split, and the front
and every model are reported on the other half, which neither ever saw.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from sigmab.config import option
from sigmab.data import load_split
from sigmab.dispatch.dispatcher import DispatchSettings, evaluate_dispatch, train_dispatcher
from sigmab.dispatch.genetic import Gene, genetic_search
from sigmab.dispatch.nsga2 import nsga2_search, pymoo_available
from sigmab.errors import ConfigError
from sigmab.eval import profile_model
from sigmab.folders import load_model_or_folder
from sigmab.inputs import check_classes
from sigmab.tree.metrics import path_costs
from sigmab.tree.model import SigmaBTree
from sigmab.utils.io import atomic_write_json, check_only_own_files, check_writable
from sigmab.utils.progress import progress_bar

SEARCH_SPACE = (Gene("under", 1.0, 10.0), Gene("over", 0.1, 2.0), Gene("penalty_weight", 0.0, 3.0),
                Gene("threshold", 0.3, 1.0), Gene("hidden", 8, 64, integer=True))


LEARN_ON = ("val", "test-half")
SEARCHES = ("ga", "nsga2")  # sigmab's own GA (genetic.py), or pymoo's NSGA-II (nsga2.py, the [search] extra)


@dataclass
class DispatchConfig:
    dataset: str | None = option(None, "dataset name")
    data_root: str | None = option(None, "dataset location")
    val_fraction: float = option(0.1, "held-out part of the training set the dispatcher learns from")
    seed: int = option(0, "seed of the split, the search and the dispatcher")
    batch_size: int = option(256, "scoring batch size")
    epochs: int = option(30, "dispatcher training epochs")
    population: int = option(8, "GA population")
    generations: int = option(6, "GA generations")
    learn_on: str = option(
        "val",
        "what the dispatcher learns from: 'val' (held-out training images) or 'test-half' (for models trained on the "
        "whole training set: learn on a seeded half of the test split, report on the other)")
    search: str = option(
        "ga",
        "the search over the dispatcher's training settings: 'ga' (sigmab's own, default) or 'nsga2' (pymoo's "
        "NSGA-II, same budget; pip install 'sigmab[search]')")

    def __post_init__(self) -> None:
        if self.learn_on not in LEARN_ON:
            raise ConfigError(f"learn_on must be one of {', '.join(LEARN_ON)}, got {self.learn_on!r}")
        if self.search not in SEARCHES:
            raise ConfigError(f"search must be one of {', '.join(SEARCHES)}, got {self.search!r}")
        if self.search == "nsga2" and not pymoo_available():
            raise ConfigError("search 'nsga2' needs pymoo: pip install 'sigmab[search]'")
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


ModelSource = str | os.PathLike[str]


def load_models(model_paths: Sequence[ModelSource], *, arch: str | Sequence[str | None] | None = None
                ) -> tuple[list[tuple[str, torch.nn.Module]], Any]:
    """([(name, model)], dense meta) of dense checkpoints, tree folders or pruned-model folders that take the same
    inputs. ``arch``: one architecture for every checkpoint without metadata, or one per path (None where the
    path needs none)."""
    archs = list(arch) if isinstance(arch, (list, tuple)) else [arch] * len(model_paths)
    if len(archs) != len(model_paths):
        raise ConfigError(f"{len(archs)} architectures for {len(model_paths)} models")
    loaded = []
    for path, model_arch in zip(model_paths, archs):
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"model {p} does not exist")
        _, model, meta = load_model_or_folder(None, p, arch=model_arch) if p.is_file() else load_model_or_folder(p)
        # A run folder's weights are usually model.safetensors: name those by their folder.
        loaded.append((p.name if p.is_dir() or p.stem != "model" else p.parent.name, model, meta))
    meta = loaded[0][2]
    if any((m.mean, m.std, m.input_size) != (meta.mean, meta.std, meta.input_size) for *_, m in loaded):
        raise ConfigError("every model must take the same inputs (normalisation and size)")
    return [(name, model) for name, model, _ in loaded], meta


def dispatch_splits(cfg: DispatchConfig) -> tuple[Any, Any]:
    """(split the dispatcher learns and is searched on, split its front is reported on), per ``cfg.learn_on``."""
    if cfg.dataset is None:
        raise ConfigError("--dataset is required")
    test = load_split(cfg.dataset, "test", root=cfg.data_root)
    if cfg.learn_on == "val":
        return load_split(cfg.dataset, "val", root=cfg.data_root, val_fraction=cfg.val_fraction, seed=cfg.seed), test
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(cfg.seed))
    half = len(test) // 2
    return (test.subset(order[:half].sort().values, tag="dispatch-learn"),
            test.subset(order[half:].sort().values, tag="dispatch-report"))


def dispatch_models(models: list[tuple[str, torch.nn.Module]], meta: Any, cfg: DispatchConfig, *,
                    progress: bool = False) -> dict[str, Any]:
    """Score ``models`` on the held-out and test splits, search the dispatcher's settings on the held-out split,
    and return the report (the front evaluated on the test split)."""
    if len(models) < 2:
        raise ConfigError("a dispatcher needs at least two models")
    held, test = dispatch_splits(cfg)
    check_classes(meta, held, cfg.dataset)
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

    searcher = nsga2_search if cfg.search == "nsga2" else genetic_search
    search = searcher(SEARCH_SPACE, fitness, population=cfg.population, generations=cfg.generations, seed=cfg.seed)
    rows = []
    for genome, (val_top1, neg_macs) in search.front():
        settings = _settings(genome, cfg)
        net = train_dispatcher(val.inputs[fit], val.correct[fit], settings, seed=cfg.seed)
        r = evaluate_dispatch(net, tested.inputs, tested.correct, tested.macs, tested.params, settings.threshold)
        rows.append({"settings": asdict(settings), "val_top1": round(val_top1, 4), "val_macs": -neg_macs,
                     "top1": round(r.top1, 4), "mean_macs": r.mean_macs, "mean_params": r.mean_params,
                     "shares": r.shares, "dispatcher_macs": net.macs(),
                     "dispatcher_params": sum(p.numel() for p in net.parameters())})
    return {
        "method": "dispatch", "dataset": cfg.dataset, "config": asdict(cfg),
        "models": [{"name": name, "top1": round(100.0 * float(tested.correct[:, j].double().mean()), 4),
                    "mean_macs": float(tested.macs[:, j].mean()), "mean_params": float(tested.params[:, j].mean()),
                    "max_params": float(tested.params[:, j].max()),
                    "stored_params": sum(p.numel() for p in model.parameters())}
                   for j, (name, model) in enumerate(models)],
        "oracle_top1": round(100.0 * float(tested.correct.any(1).double().mean()), 4),
        "stored_params_models": sum(sum(p.numel() for p in model.parameters()) for _, model in models),
        "front": rows,
        "search": [{"genome": g, "val_top1": f[0], "val_macs": -f[1]} for g, f in search.evaluated],
        "best_val_top1_per_generation": [f[0] for f in search.best_per_generation],
    }


def run_dispatch(model_paths: Sequence[ModelSource], cfg: DispatchConfig, out: str | Path, *,
                 arch: str | Sequence[str | None] | None = None, progress: bool = False) -> dict[str, Any]:
    """Dispatch over ``model_paths`` (dense checkpoints, tree or pruned folders); writes ``out/report.json``."""
    out = Path(out)
    if len(model_paths) < 2:
        raise ConfigError("a dispatcher needs at least two models")
    if cfg.dataset is None:
        raise ConfigError("--dataset is required")
    if (out / "report.json").exists():
        raise ConfigError(f"{out} already holds a dispatch report; choose another --out")
    check_writable(out / "report.json", what="dispatch report")
    check_only_own_files(out, ("report.json",), what="dispatch run")
    models, meta = load_models(model_paths, arch=arch)
    report = dispatch_models(models, meta, cfg, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "report.json", report)
    return report
