"""k-means-style clustering of seeds in the NAO metric (or the Euclidean / angular one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from . import planar
from ._tensors import as_tensor, check_choice, check_grid, flat_seeds64, restore
from .centroids import centroid
from .distances import pairwise_distances
from .prior_io import resolve_prior

CLUSTER_METRICS = ("nao", "euclidean", "angular")
_CENTROID_OF = {"nao": "nao", "euclidean": "euclidean", "angular": "spherical"}


@dataclass
class ClusterResult:
    """``labels[i]`` in 0..k-1 (clusters numbered by their smallest member), ``centroids`` (k, *seed_shape) in the
    input's kind, ``objective`` (see :func:`cluster`) and the number of alternations run."""

    labels: np.ndarray
    centroids: Any
    objective: float
    iterations: int

    def members(self, j: int) -> np.ndarray:
        """Indices of the seeds in cluster ``j``."""
        return np.flatnonzero(self.labels == j)


def _kmeans_pp(X: torch.Tensor, k: int, dist, rng: np.random.Generator) -> list:
    """k-means++ (Arthur & Vassilvitskii): first centre uniform, each next one with probability ~ D(x)^2."""
    n = X.shape[0]
    chosen = [int(rng.integers(n))]
    nearest = dist(X, X[chosen[0]:chosen[0] + 1])[:, 0]
    for _ in range(1, k):
        p = nearest**2
        total = p.sum()
        pick = int(rng.choice(n, p=p / total)) if total > 0 else int(np.flatnonzero(~np.isin(np.arange(n), chosen))[0])
        chosen.append(pick)
        nearest = np.minimum(nearest, dist(X, X[pick:pick + 1])[:, 0])
    return chosen


def _relabel(labels: np.ndarray, k: int) -> np.ndarray:
    """Number clusters by their smallest member, so equal partitions give equal labels."""
    order = np.argsort([np.flatnonzero(labels == j).min() for j in range(k)])
    return np.argsort(order)[labels]


def cluster(seeds, k: int, metric: str = "nao", *, prior=None, seed: int = 0, max_iter: int = 20,
            grid: int = planar.DEFAULT_GRID) -> ClusterResult:
    """Partition seeds ``(n, *seed_shape)`` into ``k`` clusters: k-means++ initialisation in ``metric`` (drawn with
    ``numpy.random.default_rng(seed)``), then alternate assigning each seed to its nearest centroid and replacing
    each centroid by its cluster's centre (``nao``: :func:`centroid` with ``prior``; ``euclidean``: the mean;
    ``angular``: the spherical mean) until the labels stop changing.

    ``objective = sum_i dist(x_i, c_{label_i})`` (+ ``sum_j w(|c_j|)`` for nao, the sum of the NAO centroid
    objectives, which both steps lower).  An emptied cluster is re-seeded with the seed farthest from its centroid.
    """
    check_choice(metric, CLUSTER_METRICS, "cluster metric")
    grid = check_grid(grid)
    t, spec = as_tensor(seeds, "seeds")
    X = flat_seeds64(t, "seeds", batched=True)
    n = X.shape[0]
    if isinstance(k, bool) or int(k) != k or not 1 <= k <= n:
        raise ValueError(f"k must be an integer from 1 to the number of seeds ({n}), got {k!r}")
    k = int(k)
    if isinstance(max_iter, bool) or int(max_iter) != max_iter or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    distinct = torch.unique(X, dim=0).shape[0]
    if distinct < k:
        raise ValueError(f"k = {k} clusters need k distinct seeds; the {n} seeds hold {distinct} distinct ones")
    prior = resolve_prior(prior, X.shape[1]) if metric == "nao" else None

    def dist(A, B):
        return pairwise_distances(A, B, metric, grid=grid, prior=prior).cpu().numpy()

    def centre(members):
        return centroid(X[members], _CENTROID_OF[metric], grid=grid, prior=prior)

    rng = np.random.default_rng(seed)
    C = X[_kmeans_pp(X, k, dist, rng)].clone()
    labels, it = None, 0
    for it in range(1, max_iter + 1):
        D = dist(X, C)
        new = np.argmin(D, axis=1)
        for j in range(k):  # an empty cluster takes the seed farthest from its centroid
            if not np.any(new == j):
                far = int(np.argmax(D[np.arange(n), new]))
                new[far] = j
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        C = torch.stack([centre(np.flatnonzero(labels == j)) for j in range(k)])
    D = dist(X, C)
    objective = float(D[np.arange(n), labels].sum())
    if metric == "nao":
        objective += float(np.sum(prior.weight(torch.linalg.vector_norm(C, dim=1).cpu().numpy())))
    relabeled = _relabel(labels, k)
    order = np.array([labels[np.flatnonzero(relabeled == j)[0]] for j in range(k)])
    centroids = C[torch.from_numpy(order)].reshape((k, *t.shape[1:]))
    return ClusterResult(relabeled, restore(centroids, spec), objective, it)
