import pytest
import torch

from sigmab.models import point_ops
from sigmab.models.point_ops import ball_query, farthest_point_sample, gather_points


def test_fps_on_a_line_picks_the_ends_then_the_middle() -> None:
    xyz = torch.zeros(1, 3, 10)
    xyz[0, 0] = torch.arange(10.0)
    assert farthest_point_sample(xyz, 4).tolist() == [[0, 9, 4, 2]]  # ties go to the lowest index
    assert farthest_point_sample(xyz, 2, start=torch.tensor([3])).tolist() == [[3, 9]]


def test_fps_is_per_set_over_the_batch_and_a_prefix_of_longer_runs() -> None:
    xyz = torch.randn(3, 3, 50, generator=torch.Generator().manual_seed(0))
    batched = farthest_point_sample(xyz, 12)
    for b in range(3):
        assert torch.equal(batched[b], farthest_point_sample(xyz[b : b + 1], 12)[0])
    assert torch.equal(farthest_point_sample(xyz, 20)[:, :12], batched)
    assert all(len(set(row.tolist())) == 12 for row in batched)
    with pytest.raises(ValueError, match="60 points from sets of 50"):
        farthest_point_sample(xyz, 60)


def _brute_force(xyz: torch.Tensor, centers: torch.Tensor, radius: float, k: int) -> list:
    out = []
    for b in range(xyz.shape[0]):
        rows = []
        for s in range(centers.shape[2]):
            d = ((xyz[b].T - centers[b, :, s]) ** 2).sum(1)
            inside = [i for i in range(xyz.shape[2]) if d[i] <= radius**2][:k]
            rows.append(inside + [inside[0]] * (k - len(inside)))
        out.append(rows)
    return out


def test_ball_query_matches_brute_force_in_any_chunking(monkeypatch) -> None:
    g = torch.Generator().manual_seed(1)
    xyz = torch.rand(2, 3, 80, generator=g)
    centers = gather_points(xyz, farthest_point_sample(xyz, 10))
    expected = _brute_force(xyz, centers, 0.3, 6)
    assert ball_query(xyz, centers, 0.3, 6).tolist() == expected
    sizes = []
    real_cdist = torch.cdist
    monkeypatch.setattr(point_ops.torch, "cdist", lambda a, b: sizes.append(a.shape[1] * b.shape[1] * a.shape[0])
                        or real_cdist(a, b))
    assert ball_query(xyz, centers, 0.3, 6, chunk_elements=2 * 80 * 3).tolist() == expected
    assert max(sizes) <= 2 * 80 * 3 and len(sizes) == 4  # 10 centers in chunks of 3


def test_ball_query_pads_with_the_first_neighbour_and_falls_back_to_the_nearest() -> None:
    xyz = torch.tensor([[[0.0, 0.1, 5.0, 9.0], [0.0] * 4, [0.0] * 4]])
    centers = torch.tensor([[[0.0, 7.5]], [[0.0, 0.0]], [[0.0, 0.0]]]).reshape(1, 3, 2)
    idx = ball_query(xyz, centers, 0.5, 3)
    assert idx.tolist() == [[[0, 1, 0], [3, 3, 3]]]  # the second center has no point in range: nearest is 9.0
    assert ball_query(xyz, centers, 100.0, 6).shape == (1, 2, 6)  # more slots than points


def test_gather_points_shapes() -> None:
    values = torch.arange(24.0).reshape(2, 3, 4)
    index = torch.tensor([[[3, 0]], [[1, 1]]])  # (B, 1, 2)
    out = gather_points(values, index)
    assert out.shape == (2, 3, 1, 2) and out[1, 2, 0].tolist() == [21.0, 21.0] and out[0, 0, 0].tolist() == [3.0, 0.0]
