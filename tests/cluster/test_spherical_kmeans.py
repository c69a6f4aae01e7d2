import math

import pytest
import torch
import torch.nn.functional as F

from sigmab.cluster import assign, spherical_kmeans


def _two_cones(n: int = 60, noise: float = 0.05, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Points around +e0 and around +e1 (scaled randomly: only directions matter)."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.eye(3)[:2]
    labels = torch.arange(n) % 2
    x = centers[labels] + noise * torch.randn(n, 3, generator=g)
    return x * torch.rand(n, 1, generator=g).add(0.5) * 10, labels


def test_recovers_the_known_partition_and_centroids() -> None:
    x, truth = _two_cones()
    result = spherical_kmeans(x, 2, seed=0)
    agree = (result.labels == truth).float().mean().item()
    assert agree in (0.0, 1.0)  # identical partition up to label swap
    expected = F.normalize(torch.stack([F.normalize(x[truth == c], dim=1).mean(0) for c in (0, 1)]), dim=1)
    order = [0, 1] if agree == 1.0 else [1, 0]
    torch.testing.assert_close(result.centroids, expected[order], atol=1e-5, rtol=0)
    assert torch.allclose(result.centroids.norm(dim=1), torch.ones(2))


def test_exact_optimum_on_a_tiny_set() -> None:
    # Four directions at 0, 10, 80, 90 degrees: the optimum pairs the near ones, cost known in closed form.
    angles = torch.tensor([0.0, 10.0, 80.0, 90.0]) * math.pi / 180
    x = torch.stack([angles.cos(), angles.sin()], 1)
    result = spherical_kmeans(x, 2, seed=3, restarts=4)
    assert result.labels[0] == result.labels[1] != result.labels[2] == result.labels[3]
    assert result.cost == pytest.approx(4 * (1 - math.cos(5 * math.pi / 180)), abs=1e-7)  # float32 input


def test_deterministic_for_a_seed_and_cost_never_increases() -> None:
    x = torch.randn(300, 8, generator=torch.Generator().manual_seed(1))
    a = spherical_kmeans(x, 3, seed=7, restarts=3)
    b = spherical_kmeans(x, 3, seed=7, restarts=3)
    assert torch.equal(a.labels, b.labels) and torch.equal(a.centroids, b.centroids)
    assert all(later <= earlier + 1e-9 for earlier, later in zip(a.history, a.history[1:]))
    balanced = spherical_kmeans(x, 2, seed=7, min_share=0.45)
    assert all(later <= earlier + 1e-9 for earlier, later in zip(balanced.history, balanced.history[1:]))


def test_balance_constraint_gives_every_cluster_its_minimum_share() -> None:
    # 90 points near e0, 10 near e1: unconstrained k=2 splits 90/10; min_share=0.3 forces >= 30.
    near_e0 = torch.tensor([1.0, 0.0]) + 0.1 * torch.randn(90, 2)
    x = torch.cat([near_e0, torch.tensor([0.0, 1.0]) + 0.1 * torch.randn(10, 2)])
    free = spherical_kmeans(x, 2, seed=0)
    assert sorted(torch.bincount(free.labels).tolist()) == [10, 90]
    balanced = spherical_kmeans(x, 2, seed=0, min_share=0.3)
    assert min(torch.bincount(balanced.labels, minlength=2).tolist()) >= 30


def test_balanced_assignment_is_a_threshold_on_the_similarity_margin() -> None:
    sim = torch.tensor([[0.9, 0.1], [0.8, 0.3], [0.7, 0.6], [0.95, 0.0], [0.2, 0.9], [0.6, 0.3]])
    labels = assign(sim, min_count=3)
    assert labels.tolist() == [0, 0, 1, 0, 1, 1]  # moved the two with the smallest margin (rows 2, 5)


def test_empty_clusters_are_reseeded_and_duplicates_handled() -> None:
    x = torch.tensor([[1.0, 0.0]] * 10 + [[0.0, 1.0]] * 2)
    result = spherical_kmeans(x, 2, seed=0, restarts=3)
    assert sorted(torch.bincount(result.labels, minlength=2).tolist()) == [2, 10]
    assert result.cost == pytest.approx(0.0, abs=1e-9)


def test_minibatch_mode_finds_the_same_partition_on_separated_data() -> None:
    x, truth = _two_cones(n=2000, noise=0.05)
    result = spherical_kmeans(x, 2, seed=0, batch_size=64, max_iter=30)
    assert (result.labels == truth).float().mean().item() in (0.0, 1.0)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="k=3 needs"):
        spherical_kmeans(torch.randn(2, 3), 3)
    with pytest.raises(ValueError, match="min_share"):
        spherical_kmeans(torch.randn(10, 3), 2, min_share=0.6)
