"""A small multi-objective genetic algorithm over a box of real and integer parameters.

Each generation ranks the population by Pareto dominance (every objective is maximised), keeps the
best ``elite`` by (rank, crowding distance), and fills the rest with children of binary tournaments:
uniform crossover, then Gaussian mutation (``mutation`` x the range) clipped to the box. Seeded, so a
search is reproducible; every evaluation is kept, so the front is over all points ever scored.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Gene:
    name: str
    low: float
    high: float
    integer: bool = False

    def clip(self, value: float) -> float:
        value = min(self.high, max(self.low, value))
        return float(round(value)) if self.integer else value


Genome = dict[str, float]
Fitness = tuple[float, ...]


def dominates(a: Fitness, b: Fitness) -> bool:
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


def pareto_ranks(fitness: Sequence[Fitness]) -> list[int]:
    """0 for the non-dominated points, 1 for those dominated only by rank-0 points, ..."""
    ranks = [-1] * len(fitness)
    rank, remaining = 0, set(range(len(fitness)))
    while remaining:
        front = {i for i in remaining if not any(dominates(fitness[j], fitness[i]) for j in remaining if j != i)}
        for i in front:
            ranks[i] = rank
        remaining -= front
        rank += 1
    return ranks


def crowding(fitness: Sequence[Fitness], members: Sequence[int]) -> dict[int, float]:
    """NSGA-II crowding distance of ``members`` (one front): boundary points get infinity."""
    distance = {i: 0.0 for i in members}
    for k in range(len(fitness[members[0]]) if members else 0):
        order = sorted(members, key=lambda i: fitness[i][k])
        span = fitness[order[-1]][k] - fitness[order[0]][k] or 1.0
        distance[order[0]] = distance[order[-1]] = float("inf")
        for a, b, c in zip(order, order[1:], order[2:]):
            distance[b] += (fitness[c][k] - fitness[a][k]) / span
    return distance


def hypervolume(points: Sequence[tuple[float, float]], reference: tuple[float, float]) -> float:
    """Area dominated by ``points`` (two objectives, both maximised) and bounded below by ``reference``: the
    standard way to compare two fronts with one number (larger is better). Points not above the reference in both
    objectives add nothing."""
    inside = sorted((p for p in points if p[0] > reference[0] and p[1] > reference[1]), key=lambda p: -p[0])
    area, best_second = 0.0, reference[1]
    for first, second in inside:  # sweep from the largest first objective down
        if second > best_second:
            area += (first - reference[0]) * (second - best_second)
            best_second = second
    return area


def _tournament(rng: random.Random, keys: Sequence[tuple[int, float]]) -> int:
    """The better (lower rank, then larger crowding distance) of two random members."""
    a, b = rng.sample(range(len(keys)), 2)
    return a if keys[a] <= keys[b] else b


@dataclass
class SearchResult:
    evaluated: list[tuple[Genome, Fitness]] = field(default_factory=list)
    best_per_generation: list[Fitness] = field(default_factory=list)

    def front(self) -> list[tuple[Genome, Fitness]]:
        """The non-dominated evaluations, sorted by the first objective."""
        ranks = pareto_ranks([f for _, f in self.evaluated])
        return sorted((e for e, r in zip(self.evaluated, ranks) if r == 0), key=lambda e: e[1][0])


def genetic_search(genes: Sequence[Gene], evaluate: Callable[[Genome], Fitness], *, population: int = 8,
                   generations: int = 5, elite: int | None = None, mutation: float = 0.15, seed: int = 0,
                   initial: Sequence[Genome] = ()) -> SearchResult:
    """Maximise every objective of ``evaluate`` over the box ``genes``; returns every evaluation and, per
    generation, the best value of the first objective seen so far."""
    if population < 2 or generations < 1:
        raise ValueError("a search needs population >= 2 and generations >= 1")
    rng = random.Random(seed)
    elite = elite if elite is not None else population // 2
    result = SearchResult()

    def random_genome() -> Genome:
        return {g.name: g.clip(rng.uniform(g.low, g.high)) for g in genes}

    def score(genomes: list[Genome]) -> list[Fitness]:
        out = [tuple(float(v) for v in evaluate(g)) for g in genomes]
        result.evaluated += list(zip(genomes, out))
        return out

    pool = [dict(g) for g in initial][:population]
    pool += [random_genome() for _ in range(population - len(pool))]
    fitness = score(pool)
    for generation in range(generations):
        best = max(result.evaluated, key=lambda e: e[1][0])[1]
        result.best_per_generation.append(best)
        if generation == generations - 1:
            break
        ranks = pareto_ranks(fitness)
        crowd: dict[int, float] = {}
        for r in set(ranks):
            crowd.update(crowding(fitness, [i for i in range(len(pool)) if ranks[i] == r]))
        keys = [(ranks[i], -crowd[i]) for i in range(len(pool))]
        order = sorted(range(len(pool)), key=keys.__getitem__)
        survivors = [pool[i] for i in order[:elite]]
        children = []
        while len(survivors) + len(children) < population:
            mother, father = pool[_tournament(rng, keys)], pool[_tournament(rng, keys)]
            child = {g.name: (mother if rng.random() < 0.5 else father)[g.name] for g in genes}
            children.append({g.name: g.clip(child[g.name] + rng.gauss(0.0, mutation * (g.high - g.low)))
                             for g in genes})
        pool = survivors + children
        fitness = [fitness[i] for i in order[:elite]] + score(children)
    return result
