"""pymoo's NSGA-II behind genetic_search's interface: the same budget and result type, seeded."""

import pytest

from sigmab.dispatch import nsga2
from sigmab.dispatch.genetic import Gene, genetic_search, hypervolume
from sigmab.dispatch.nsga2 import nsga2_search
from sigmab.errors import ConfigError

pytest.importorskip("pymoo", reason="the [search] extra (installed by `make test`) is needed")


def test_same_budget_as_the_hand_written_search_and_seeded() -> None:
    genes = [Gene("x", -2.0, 2.0), Gene("n", 0, 10, integer=True)]
    fitness = lambda g: (-((g["x"] - 0.7) ** 2) - (g["n"] - 4) ** 2, -abs(g["x"]))  # noqa: E731
    ours = genetic_search(genes, fitness, population=8, generations=6, seed=1)
    theirs = nsga2_search(genes, fitness, population=8, generations=6, seed=1)
    assert len(theirs.evaluated) == len(ours.evaluated) == 8 + 5 * 4
    assert len(theirs.best_per_generation) == 6
    assert all(float(g["n"]).is_integer() and -2.0 <= g["x"] <= 2.0 for g, _ in theirs.evaluated)
    assert nsga2_search(genes, fitness, population=8, generations=6, seed=1).evaluated == theirs.evaluated
    assert nsga2_search(genes, fitness, population=8, generations=6, seed=2).evaluated != theirs.evaluated


def test_the_search_finds_a_known_trade_off_curve() -> None:
    genes = [Gene("t", 0.0, 1.0)]
    result = nsga2_search(genes, lambda g: (g["t"], 1.0 - g["t"] ** 2), population=8, generations=6, seed=0)
    front = [f for _, f in result.front()]
    assert len(front) >= 5
    assert hypervolume(front, (0.0, 0.0)) > 0.6  # the whole curve's area is 2/3
    best = result.best_per_generation
    assert all(b[0] >= a[0] for a, b in zip(best, best[1:]))


def test_without_pymoo_one_clear_error(monkeypatch) -> None:
    from sigmab.dispatch.pipeline import DispatchConfig

    monkeypatch.setattr(nsga2, "pymoo_available", lambda: False)
    with pytest.raises(ConfigError, match=r"pip install 'sigmab\[search\]'"):
        nsga2_search([Gene("t", 0.0, 1.0)], lambda g: (g["t"], 0.0))
    monkeypatch.setattr("sigmab.dispatch.pipeline.pymoo_available", lambda: False)
    with pytest.raises(ConfigError, match="needs pymoo"):
        DispatchConfig(search="nsga2")
    with pytest.raises(ConfigError, match="search must be one of"):
        DispatchConfig(search="random")
