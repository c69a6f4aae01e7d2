"""pymoo's NSGA-II over the same box, budget and result type as :func:`sigmab.dispatch.genetic.genetic_search`,
so the dispatcher's search can use either (``search: nsga2`` needs the ``[search]`` extra).

The budget matches the hand-written GA's: ``population`` genomes, then ``generations - 1`` rounds of
``population - elite`` children each. pymoo searches the box in floats; an integer gene is rounded (and every
gene clipped) before its genome is evaluated, and the evaluated genome is the rounded one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sigmab.dispatch.genetic import Fitness, Gene, Genome, SearchResult
from sigmab.errors import ConfigError


def pymoo_available() -> bool:
    try:
        import pymoo  # noqa: F401
    except ImportError:
        return False
    return True


def nsga2_search(genes: Sequence[Gene], evaluate: Callable[[Genome], Fitness], *, population: int = 8,
                 generations: int = 5, elite: int | None = None, seed: int = 0, initial: Sequence[Genome] = (),
                 objectives: int = 2) -> SearchResult:
    """Maximise the ``objectives`` values of ``evaluate`` over the box ``genes`` with pymoo's NSGA-II; returns
    every evaluation and, per generation, the best value of the first objective seen so far."""
    if population < 2 or generations < 1:
        raise ValueError("a search needs population >= 2 and generations >= 1")
    if not pymoo_available():
        raise ConfigError("the nsga2 search needs pymoo: pip install 'sigmab[search]'")
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.callback import Callback
    from pymoo.core.problem import ElementwiseProblem
    from pymoo.optimize import minimize

    result = SearchResult()
    offspring = population - (elite if elite is not None else population // 2)

    class Dispatch(ElementwiseProblem):
        def __init__(self) -> None:
            super().__init__(n_var=len(genes), n_obj=objectives, xl=np.array([g.low for g in genes], dtype=float),
                             xu=np.array([g.high for g in genes], dtype=float))

        def _evaluate(self, x: np.ndarray, out: dict[str, Any], *args: Any, **kwargs: Any) -> None:
            genome = {g.name: g.clip(float(v)) for g, v in zip(genes, x)}
            fitness = tuple(float(v) for v in evaluate(genome))
            result.evaluated.append((genome, fitness))
            out["F"] = [-v for v in fitness]  # pymoo minimises

    class Best(Callback):
        def notify(self, algorithm: Any) -> None:
            result.best_per_generation.append(max(result.evaluated, key=lambda e: e[1][0])[1])

    kwargs: dict[str, Any] = {"pop_size": population, "n_offsprings": max(1, offspring)}
    if initial:  # the given genomes first, then uniform draws, as genetic_search starts
        rng = np.random.default_rng(seed)
        start = [[g.clip(float(genome[g.name])) for g in genes] for genome in list(initial)[:population]]
        start += [[rng.uniform(g.low, g.high) for g in genes] for _ in range(population - len(start))]
        kwargs["sampling"] = np.array(start, dtype=float)
    minimize(Dispatch(), NSGA2(**kwargs), ("n_gen", generations), seed=seed, callback=Best(), verbose=False)
    return result
