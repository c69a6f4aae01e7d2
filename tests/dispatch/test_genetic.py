from sigmab.dispatch.genetic import Gene, crowding, dominates, genetic_search, hypervolume, pareto_ranks


def test_pareto_ranks_and_crowding_on_known_points() -> None:
    points = [(1.0, 5.0), (2.0, 4.0), (1.5, 3.0), (3.0, 1.0), (0.5, 0.5)]
    assert dominates((2.0, 4.0), (1.5, 3.0)) and not dominates((1.0, 5.0), (2.0, 4.0))
    assert pareto_ranks(points) == [0, 0, 1, 0, 2]
    distance = crowding(points, [0, 1, 3])
    assert distance[0] == distance[3] == float("inf") and distance[1] == (3.0 - 1.0) / 2.0 + (5.0 - 1.0) / 4.0


def test_the_search_improves_a_known_fitness_and_is_seeded() -> None:
    genes = [Gene("x", -2.0, 2.0), Gene("n", 0, 10, integer=True)]
    fitness = lambda g: (-((g["x"] - 0.7) ** 2) - (g["n"] - 4) ** 2,)  # noqa: E731  (maximum 0 at x=0.7, n=4)
    result = genetic_search(genes, fitness, population=10, generations=12, seed=3)
    best = result.best_per_generation
    assert all(b >= a for a, b in zip(best, best[1:])) and best[-1][0] > best[0][0]
    assert best[-1][0] > -0.1  # n found exactly, x within 0.3 of its optimum
    assert all(float(g["n"]).is_integer() and -2.0 <= g["x"] <= 2.0 for g, _ in result.evaluated)
    again = genetic_search(genes, fitness, population=10, generations=12, seed=3)
    assert again.evaluated == result.evaluated


def test_two_objectives_give_a_front_of_trade_offs() -> None:
    genes = [Gene("t", 0.0, 1.0)]
    result = genetic_search(genes, lambda g: (g["t"], 1.0 - g["t"] ** 2), population=8, generations=4, seed=0)
    front = result.front()
    assert len(front) == len(result.evaluated) - sum(1 for r in pareto_ranks([f for _, f in result.evaluated]) if r)
    firsts = [f[0] for _, f in front]
    seconds = [f[1] for _, f in front]
    assert firsts == sorted(firsts) and seconds == sorted(seconds, reverse=True)  # a true trade-off curve


def test_hypervolume_of_known_fronts() -> None:
    assert hypervolume([(2.0, 1.0)], (0.0, 0.0)) == 2.0
    # an L-shape: 3x1 + 1x(2-1)
    assert hypervolume([(3.0, 1.0), (1.0, 2.0)], (0.0, 0.0)) == 4.0
    # a dominated point and points below the reference add nothing
    assert hypervolume([(3.0, 1.0), (1.0, 2.0), (0.5, 0.5), (-1.0, 5.0)], (0.0, 0.0)) == 4.0
    assert hypervolume([], (0.0, 0.0)) == 0.0
