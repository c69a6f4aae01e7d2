"""Point-set kernels of PointNet++ in pure torch: farthest-point sampling, ball query, gathering.

Coordinates are channels-first, ``xyz`` (B, 3, N), as the rest of sigmab's streams are. No kernel
holds a (B, S, N) distance matrix for more than ``chunk_elements`` entries at once, so memory
stays bounded for any number of points.
"""

from __future__ import annotations

import torch

# Distances held at once by ball_query: 2^19 floats = 2 MiB (16 centers of a batch of 32 sets of 1,024
# points); smaller chunks were also faster than larger ones on 2 cores (benchmarks/pointnet_speed.py).
DEFAULT_CHUNK_ELEMENTS = 1 << 19


def farthest_point_sample(xyz: torch.Tensor, num_samples: int, *, start: torch.Tensor | None = None) -> torch.Tensor:
    """Indices (B, S) of ``num_samples`` points chosen by iterative farthest-point sampling.

    ``xyz``: (B, 3, N). The first pick is ``start`` (B,) or point 0 of every set (with a shuffled
    point order, point 0 is a random start). Each later pick is the point farthest from all
    picked so far; ties go to the lowest index. O(S * N) time, O(B * N) memory.
    """
    b, _, n = xyz.shape
    if not 1 <= num_samples <= n:
        raise ValueError(f"farthest-point sampling of {num_samples} points from sets of {n}")
    points = xyz.transpose(1, 2)  # (B, N, 3)
    batch = torch.arange(b, device=xyz.device)
    picks = torch.empty(b, num_samples, dtype=torch.long, device=xyz.device)
    current = torch.zeros(b, dtype=torch.long, device=xyz.device) if start is None else start.long()
    nearest = torch.full((b, n), float("inf"), dtype=xyz.dtype, device=xyz.device)
    for i in range(num_samples):
        picks[:, i] = current
        d = (points - points[batch, current][:, None, :]).square().sum(-1)
        nearest = torch.minimum(nearest, d)
        current = nearest.argmax(dim=1)
    return picks


def ball_query(xyz: torch.Tensor, centers: torch.Tensor, radius: float, max_neighbors: int, *,
               chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> torch.Tensor:
    """Indices (B, S, K) of up to ``K = max_neighbors`` points within ``radius`` of each center.

    ``xyz``: (B, 3, N); ``centers``: (B, 3, S). Neighbours are the K lowest-index points inside the
    ball (the reference PointNet++ rule); a center with fewer repeats its first neighbour. A center
    with none (possible only if centers are not drawn from ``xyz``) takes its nearest point.
    Centers are processed in chunks so at most ``chunk_elements`` distances exist at once.
    """
    b, _, n = xyz.shape
    s = centers.shape[2]
    k = min(max_neighbors, n)
    points, queries = xyz.transpose(1, 2), centers.transpose(1, 2)  # (B, N, 3), (B, S, 3)
    step = max(1, chunk_elements // max(1, b * n))
    order = torch.arange(n, device=xyz.device)
    out = []
    for lo in range(0, s, step):
        d = torch.cdist(queries[:, lo : lo + step], points).square_()  # (B, s', N)
        inside = d <= radius * radius
        # Inside points keep their index as the key, outside ones sort after every inside one.
        key = torch.where(inside, order, order + n)
        idx = key.topk(k, dim=2, largest=False, sorted=True).indices  # lowest keys first
        found = inside.gather(2, idx)
        first = torch.where(found[..., :1], idx[..., :1], d.argmin(dim=2, keepdim=True))
        out.append(torch.where(found, idx, first))
    result = torch.cat(out, dim=1)
    if max_neighbors > n:  # fewer points than neighbour slots: pad with the first neighbour
        result = torch.cat([result, result[..., :1].expand(b, s, max_neighbors - n)], dim=2)
    return result


def gather_points(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values`` (B, C, N) at ``index`` (B, *I): (B, C, *I)."""
    b, c, _ = values.shape
    flat = index.reshape(b, 1, -1).expand(b, c, -1)
    return values.gather(2, flat).reshape(b, c, *index.shape[1:])
