"""Spherical k-means: cosine assignment on the unit sphere, with k-means++ seeding and restarts.

The cost minimised is ``sum_i (1 - cos(x_i, c_{label_i}))``. Each Lloyd iteration (assignment,
then centroid = renormalised mean direction) cannot increase it, including under the balance
constraint, whose assignment step is optimal for a fixed set of centroids when k = 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class KMeansResult:
    """``centroids`` (k, D) unit rows; ``labels`` (N,) in [0, k); ``cost`` sum of (1 - cos); ``history``
    the cost after every iteration of the winning restart."""

    centroids: torch.Tensor
    labels: torch.Tensor
    cost: float
    history: tuple[float, ...]
    restart: int


def _kmeanspp(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ on cosine distance: x (N, D) unit rows -> (k, D) seeds drawn from the data."""
    n = x.shape[0]
    first = int(torch.randint(n, (1,), generator=generator))
    centroids = [x[first]]
    dist = (1.0 - x @ x[first]).clamp_min(0)
    for _ in range(1, k):
        total = float(dist.sum())
        if total <= 0:  # every point coincides with a seed: any point will do
            idx = int(torch.randint(n, (1,), generator=generator))
        else:
            idx = int(torch.multinomial(dist / total, 1, generator=generator))
        centroids.append(x[idx])
        dist = torch.minimum(dist, (1.0 - x @ x[idx]).clamp_min(0))
    return torch.stack(centroids)


def assign(sim: torch.Tensor, min_count: int) -> torch.Tensor:
    """Labels (N,) from similarities (N, k), each cluster getting at least ``min_count`` points.

    Points move to an under-filled cluster in order of least loss of similarity; for k = 2 this
    is the optimal constrained assignment, so a balanced Lloyd iteration never raises the cost.
    """
    labels = sim.argmax(1)
    k = sim.shape[1]
    if min_count <= 0:
        return labels
    for c in range(k):
        deficit = min_count - int((labels == c).sum())
        if deficit <= 0:
            continue
        counts = torch.bincount(labels, minlength=k)
        donors = (counts[labels] > min_count) & (labels != c)  # never drain another cluster below the minimum
        loss = sim.gather(1, labels[:, None]).squeeze(1) - sim[:, c]
        loss = torch.where(donors, loss, torch.full_like(loss, float("inf")))
        order = torch.argsort(loss, stable=True)
        moved: list[int] = []
        counts_left = counts.clone()
        for i in order.tolist():
            if len(moved) == deficit or loss[i] == float("inf"):
                break
            if counts_left[labels[i]] > min_count:
                counts_left[labels[i]] -= 1
                moved.append(i)
        labels[moved] = c
    return labels


def _update(x: torch.Tensor, labels: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    sums = torch.zeros_like(centroids).index_add_(0, labels, x)
    norms = sums.norm(dim=1, keepdim=True)
    # An empty cluster keeps its centroid; the caller re-seeds it.
    return torch.where(norms > 0, sums / norms.clamp_min(1e-12), centroids)


def _cost(x: torch.Tensor, centroids: torch.Tensor, labels: torch.Tensor) -> float:
    return float((1.0 - (x * centroids[labels]).sum(1)).sum())


def spherical_kmeans(
    data: torch.Tensor,
    k: int = 2,
    *,
    seed: int = 0,
    restarts: int = 5,
    max_iter: int = 100,
    tol: float = 1e-6,
    min_share: float = 0.0,
    min_cluster_size: int = 1,
    batch_size: int | None = None,
) -> KMeansResult:
    """Cluster the directions of ``data`` (N, D) into ``k`` groups; the lowest-cost restart wins.

    ``min_share``: each cluster gets at least this fraction of the points (0 = unconstrained).
    ``min_cluster_size``: a cluster below this size after an iteration is re-seeded at the point
    farthest from its centroid. ``batch_size``: mini-batch mode for large N (Sculley-style
    updates with per-centroid learning rates), followed by one full assignment.
    """
    if data.dim() != 2:
        raise ValueError(f"data must be (N, D), got shape {tuple(data.shape)}")
    n = data.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k={k} needs 1 <= k <= N={n}")
    if not 0.0 <= min_share <= 1.0 / k:
        raise ValueError(f"min_share must be in [0, 1/k], got {min_share}")
    x = F.normalize(data.double(), dim=1)
    min_count = int(min_share * n)
    generator = torch.Generator().manual_seed(seed)
    best: KMeansResult | None = None
    for restart in range(max(1, restarts)):
        centroids = _kmeanspp(x, k, generator)
        history: list[float] = []
        minibatch = batch_size is not None and batch_size < n
        if minibatch:
            centroids = _minibatch(x, centroids, generator, batch_size=batch_size, iters=max_iter)
        labels = assign(x @ centroids.T, min_count)
        if minibatch:
            history.append(_cost(x, centroids, labels))
        for _ in range(0 if minibatch else max_iter):
            centroids = _update(x, labels, centroids)
            centroids = _reseed_small(x, centroids, labels, min_cluster_size)
            labels = assign(x @ centroids.T, min_count)
            history.append(_cost(x, centroids, labels))
            if len(history) > 1 and history[-2] - history[-1] <= tol * max(1.0, abs(history[-2])):
                break
        result = KMeansResult(centroids.float(), labels, history[-1], tuple(history), restart)
        if best is None or result.cost < best.cost:
            best = result
    assert best is not None
    return best


def _reseed_small(x: torch.Tensor, centroids: torch.Tensor, labels: torch.Tensor, min_size: int) -> torch.Tensor:
    counts = torch.bincount(labels, minlength=centroids.shape[0])
    small = (counts < min_size).nonzero().flatten().tolist()
    if not small:
        return centroids
    centroids = centroids.clone()
    fit = (x * centroids[labels]).sum(1)
    taken: set[int] = set()
    for c in small:
        for i in torch.argsort(fit).tolist():  # worst-fitting points first
            if i not in taken:
                centroids[c] = x[i]
                taken.add(i)
                break
    return centroids


def _minibatch(x: torch.Tensor, centroids: torch.Tensor, generator: torch.Generator, *, batch_size: int,
               iters: int) -> torch.Tensor:
    counts = torch.zeros(centroids.shape[0], dtype=x.dtype)
    for _ in range(iters):
        batch = x[torch.randint(x.shape[0], (batch_size,), generator=generator)]
        labels = (batch @ centroids.T).argmax(1)
        for c in labels.unique().tolist():
            members = batch[labels == c]
            counts[c] += members.shape[0]
            eta = members.shape[0] / counts[c]
            centroids[c] = F.normalize((1 - eta) * centroids[c] + eta * members.mean(0), dim=0)
    return centroids
