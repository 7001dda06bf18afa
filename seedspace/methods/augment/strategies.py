"""The seed recipes of the strategies: planned as small integer arrays (cheap, fixed up front), turned into seeds
by the geometry when a shard runs, and described per image for the manifest.

A recipe is a dict of per-image numpy arrays of one class (plus the scalar ``t_bits`` for paths):

- ``random``: ``int`` (N,) seed integers, distinct, for ``seeds_from_ints``.
- ``centroid``: ``subset`` (N, k) bool, distinct subsets of >= 2 of the k inversions (row 0: all of them); the
  seed is ``ss.centroid`` of the inversions in the subset.
- ``clusters``: the k inversions split into M clusters by ``ss.cluster`` in the NAO metric (with the run's prior;
  the best of ``CLUSTER_RESTARTS`` seeded k-means++ starts), ``labels`` (a tuple, kept whole in slices) the
  partition; ``cluster`` (N,) the image's cluster, ``subset`` (N, k) bool as for ``centroid`` but within that
  cluster. Images go round robin over the clusters (0, 1, ..., M-1, 0, ...; a cluster whose distinct subsets are
  used up is skipped), so images 0..M-1 are the M clusters' own centroids; within a cluster the subsets are drawn
  as the centroid strategy draws them. A singleton cluster gives one seed, its inversion itself (a centroid of one
  point is that point). With M = 1 the recipe is the centroid strategy's.
- ``paths`` (and ``seedselect``, which starts from them): ``source`` (N,) (-1 = the centroid of all k, else an
  inversion), ``target`` (N,) an inversion, ``t_num`` (N,): the seed is the point at t = t_num / 2^t_bits of
  ``ss.interpolate(source, target, steps=2^t_bits + 1)``. Segments (centroid -> each inversion, then every pair
  of inversions) are visited round robin in a seeded order; on each segment t runs through the cells
  j / 2^t_bits of a scrambled Sobol sequence (one coordinate per segment), which visits every cell of the grid
  once in low-discrepancy order, so t never repeats on a segment and is never an endpoint (t = 0 is skipped).
- ``seedselect`` with ``seedselect_start='centroid'``: the paths recipe with image 0 at t = 0 of centroid ->
  inversion 0 (the centroid of all k itself), the others on the segments centroid -> inversion only, at half the
  paths' t (t in (0, 1/2): the centroid's neighbourhood); with ``seedselect_start='random'``: ``int`` as for
  ``random``.
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import torch
from scipy.stats import qmc

from ... import geometry
from ...checks import SEED_INT_LIMIT
from ...backends.base import seeds_from_ints

SOBOL_MAX_DIMENSIONS = 21201  # scipy's direction numbers


def class_rng(seed: int, class_position: int, strategy: str) -> np.random.Generator:
    """The random stream of one class: independent of every other class and of the number of classes."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(class_position, _KEYS[strategy])))


# seedselect refines the paths' seeds; clusters draws its subsets from the centroid's stream (M = 1: the same recipe)
_KEYS = {"random": 0, "centroid": 1, "paths": 2, "seedselect": 2, "clusters": 1}
_CLUSTER_KEY = 3  # the clusterings' own stream
CLUSTER_RESTARTS = 4  # k-means++ starts of the clusters strategy; the lowest NAO objective wins
PLANNED_FROM_INVERSIONS = ("clusters",)  # strategies whose plan needs the references' inversions


def cluster_seed(seed: int, class_position: int) -> int:
    """The integer the clusterings of one class start from (its own stream, apart from the subsets')."""
    state = np.random.SeedSequence(seed, spawn_key=(class_position, _CLUSTER_KEY)).generate_state(1, np.uint32)
    return int(state[0])


def default_clusters(k: int) -> int:
    """The clusters strategy's M when none is given: min(3, k // 2), at least 1."""
    return max(1, min(3, k // 2))


def cluster_capacity(size: int) -> int:
    """Distinct seeds of one cluster of ``size`` inversions: 2^s - s - 1 subsets of >= 2, or 1 (the inversion)."""
    return 1 if size == 1 else 2 ** size - size - 1


def check_clusters(k: int, clusters: int | None) -> int:
    """M for k references (None: :func:`default_clusters`); ValueError unless 1 <= M <= k."""
    m = default_clusters(k) if clusters is None else clusters
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or not 1 <= m <= k:
        raise ValueError(f"the clusters strategy needs 1 <= clusters <= the number of references ({k}), got {m!r}")
    return int(m)


def max_distinct(strategy: str, k: int, clusters: int | None = None) -> float:
    """How many distinct seeds a strategy can give from k references (``clusters``: at best, over the partitions
    into M clusters: one cluster of k - M + 1 and M - 1 singletons, cluster_capacity(k - M + 1) + M - 1)."""
    if strategy == "centroid":
        return 2.0 ** k - k - 1  # subsets of >= 2 references
    if strategy == "clusters":
        m = check_clusters(k, clusters)
        return float(cluster_capacity(k - m + 1) + m - 1)
    return math.inf


def check_capacity(strategy: str, n: int, k: int, clusters: int | None = None) -> None:
    """ValueError when ``strategy`` cannot give n distinct seeds from k references (or M is out of range)."""
    most = max_distinct(strategy, k, clusters)
    if n <= most:
        return
    if strategy == "centroid":
        raise ValueError(f"the centroid strategy gives at most {int(most)} distinct seeds from {k} references "
                         "(centroids of subsets of >= 2); lower the images per class or use the paths strategy")
    raise ValueError(f"the clusters strategy gives at most {int(most)} distinct seeds from {k} references in "
                     f"{check_clusters(k, clusters)} clusters; lower the images per class or the clusters")


def plan_recipe(strategy: str, n: int, k: int, rng: np.random.Generator, *, inversions: torch.Tensor | None = None,
                clusters: int | None = None, prior=None, cluster_seed: int = 0, start: str = "paths") -> dict:
    """The recipe arrays of n images of one class with k references (see the module docstring). The clusters
    strategy also needs the class's ``inversions`` (k, *seed_shape), ``clusters`` (M; None: the default),
    ``prior`` (the NAO metric's) and ``cluster_seed`` (its k-means++ starts); ``start``: the seedselect
    strategy's ``seedselect_start``."""
    check_capacity(strategy, n, k, clusters)
    if strategy == "seedselect" and start == "centroid":
        return _centroid_neighbourhood(n, k, rng)
    if strategy == "random" or (strategy == "seedselect" and start == "random"):
        return {"int": rng.choice(SEED_INT_LIMIT - 1, size=n, replace=False).astype(np.int64)}
    if strategy == "centroid":
        return {"subset": _subsets(n, k, rng)}
    if strategy == "clusters":
        if inversions is None or len(inversions) != k:
            raise ValueError("the clusters strategy plans from the class's k inversions; none (or a wrong number) given")
        labels = cluster_labels(inversions, check_clusters(k, clusters), prior, cluster_seed)
        return _cluster_subsets(n, labels, rng)
    return _path_points(n, k, rng)


def cluster_labels(inversions: torch.Tensor, m: int, prior=None, seed: int = 0) -> np.ndarray:
    """(k,) cluster labels of the inversions in the NAO metric: of ``CLUSTER_RESTARTS`` runs of ``ss.cluster``
    (k-means++ drawn from seed + r), the one with the lowest objective sum_i d_NAO(x_i, c_l(i)) + sum_j w(|c_j|)
    (the first on ties); clusters numbered by their smallest member."""
    if m == 1:
        return np.zeros(len(inversions), dtype=np.int64)
    X = inversions.double()
    runs = [geometry.cluster(X, m, metric="nao", prior=prior, seed=seed + r) for r in range(CLUSTER_RESTARTS)]
    return np.asarray(min(runs, key=lambda run: run.objective).labels, dtype=np.int64)


def _cluster_subsets(n: int, labels: np.ndarray, rng: np.random.Generator) -> dict:
    k, m = len(labels), int(labels.max()) + 1
    members = [np.flatnonzero(labels == j) for j in range(m)]
    capacity = [cluster_capacity(len(g)) for g in members]
    if n > sum(capacity):
        sizes = ", ".join(str(len(g)) for g in members)
        raise ValueError(f"the clusters strategy gives at most {sum(capacity)} distinct seeds from clusters of "
                         f"{sizes} references; lower the images per class or the clusters")
    order, counts = [], [0] * m
    while len(order) < n:  # round robin, skipping used-up clusters
        for j in range(m):
            if counts[j] < capacity[j] and len(order) < n:
                order.append(j)
                counts[j] += 1
    order = np.asarray(order, dtype=np.int64)
    subset = np.zeros((n, k), dtype=bool)
    for j, group in enumerate(members):  # each cluster's subsets from the shared stream, in cluster order
        rows = np.ones((1, 1), dtype=bool) if len(group) == 1 else _subsets(counts[j], len(group), rng)
        picked = np.zeros((counts[j], k), dtype=bool)
        picked[:, group] = rows[:counts[j]]
        subset[order == j] = picked
    return {"cluster": order, "subset": subset, "labels": tuple(int(v) for v in labels)}


def _subsets(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    rows = np.ones((1, k), dtype=bool)  # row 0: all references (n <= 2^k - k - 1: see check_capacity)
    while True:  # rounds of candidates (a size uniform in [2, k], then a uniform subset of it); the first of equals kept
        sizes = rng.integers(2, k + 1, size=2 * n)
        ranks = rng.random((2 * n, k)).argsort(axis=1).argsort(axis=1)
        rows = np.concatenate([rows, ranks < sizes[:, None]])
        rows = rows[first_of_equal_rows(np.packbits(rows, axis=1))]
        if len(rows) >= n:
            return rows[:n]


def first_of_equal_rows(rows: np.ndarray) -> np.ndarray:
    """Sorted indices of the first occurrence of each distinct row of a 2-D array."""
    rows = np.ascontiguousarray(rows)
    as_bytes = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()  # 1-D: a fast unique
    return np.sort(np.unique(as_bytes, return_index=True)[1])


def segments(k: int) -> np.ndarray:
    """(S, 2) geodesic endpoints: (-1, i) centroid -> inversion i, then (i, j), i < j, between inversions."""
    return np.array([(-1, i) for i in range(k)] + list(combinations(range(k), 2)), dtype=np.int64).reshape(-1, 2)


def _centroid_neighbourhood(n: int, k: int, rng: np.random.Generator) -> dict:
    """Image 0 the centroid (t = 0 of centroid -> inversion 0), the others the paths' points on the segments
    centroid -> inversion at half their t."""
    first = {"source": np.array([-1]), "target": np.array([0]), "t_num": np.array([0])}
    if n == 1:
        return {**first, "t_bits": 1}
    rest = _path_points(n - 1, k, rng, segments(k)[:k])
    return {**{key: np.concatenate([first[key], rest[key]]).astype(np.int64) for key in first},
            "t_bits": rest["t_bits"] + 1}


def _path_points(n: int, k: int, rng: np.random.Generator, segs: np.ndarray | None = None) -> dict:
    segs = segments(k) if segs is None else segs
    used = min(len(segs), n)  # a Sobol dimension per segment that gets points
    if used > SOBOL_MAX_DIMENSIONS:
        raise ValueError(f"the paths strategy supports at most {SOBOL_MAX_DIMENSIONS} geodesics per class; use "
                         "fewer references or images per class")
    order = rng.permutation(len(segs))[:used]
    per_segment = -(-n // used)
    bits = max(1, math.ceil(math.log2(per_segment + 1)))  # 2^bits - 1 interior grid points >= per_segment
    # the first 2^bits points of a scrambled Sobol sequence put exactly one point in each interval
    # [j, j + 1) / 2^bits of every coordinate, so their cells j are a permutation of the grid
    points = qmc.Sobol(d=used, scramble=True, seed=rng).random_base2(bits)
    grid = np.floor(points * 2 ** bits).astype(np.int64).T
    t_num = grid[grid != 0].reshape(used, 2 ** bits - 1)  # each column holds 0 exactly once: drop it
    index = np.arange(n)
    column, rank = index % used, index // used
    chosen = segs[order[column]]
    return {"source": chosen[:, 0], "target": chosen[:, 1], "t_num": t_num[column, rank], "t_bits": bits}


def recipe_slice(recipe: dict, start: int, stop: int) -> dict:
    """The recipe of images start..stop-1 (scalars kept)."""
    return {key: (value[start:stop] if isinstance(value, np.ndarray) else value) for key, value in recipe.items()}


def recipe_length(recipe: dict) -> int:
    return next(len(v) for v in recipe.values() if isinstance(v, np.ndarray))


def seeds_from_recipe(strategy: str, recipe: dict, inversions: torch.Tensor | None, seed_shape, centroid_method: str,
                      interpolation_method: str | None, prior=None, centre: torch.Tensor | None = None) -> torch.Tensor:
    """Seeds (n, *seed_shape) float32 of a recipe slice; every seed depends only on its own recipe entry.
    ``prior``: the norm prior of the centroids and paths (a record; None: chi(d)). ``centre``: the paths' start,
    :func:`paths_centre` of the same inversions, where the caller keeps it across slices (computed here otherwise)."""
    if "int" in recipe:  # random, and seedselect from random starts
        return seeds_from_ints(recipe["int"].tolist(), seed_shape)
    X = inversions.double()
    prior = None if prior is None else geometry.load_prior(prior, math.prod(seed_shape))  # resolved once
    if strategy in ("centroid", "clusters"):  # a one-member subset (a singleton cluster) is that inversion
        return torch.stack([X[torch.from_numpy(mask)][0] if mask.sum() == 1 else
                            geometry.centroid(X[torch.from_numpy(mask)], method=centroid_method, prior=prior)
                            for mask in recipe["subset"]]).float()
    if centre is None and starts_at_centre(recipe):
        centre = paths_centre(X, centroid_method, prior)
    steps = 2 ** int(recipe["t_bits"]) + 1
    out = torch.empty((recipe_length(recipe), *X.shape[1:]), dtype=torch.float64)
    pairs = np.stack([recipe["source"], recipe["target"]], axis=1)
    for source, target in np.unique(pairs, axis=0):  # one geodesic per segment, its grid points picked out
        rows = np.flatnonzero((pairs[:, 0] == source) & (pairs[:, 1] == target))
        start = centre if source < 0 else X[source]
        path = geometry.interpolate(start, X[target], steps=steps, method=interpolation_method, prior=prior)
        out[torch.from_numpy(rows)] = path[torch.from_numpy(recipe["t_num"][rows])]
    return out.float()


def starts_at_centre(recipe: dict) -> bool:
    """Whether some path of a recipe slice starts at the class's centroid (:func:`paths_centre`)."""
    return "source" in recipe and bool((recipe["source"] < 0).any())


def paths_centre(inversions: torch.Tensor, centroid_method: str, prior=None) -> torch.Tensor:
    """The centroid of a class's inversions (float64) that the paths' first segments start from. ``prior``: a
    record or a loaded prior (None: chi(d))."""
    return geometry.centroid(inversions.double(), method=centroid_method, prior=prior)


def provenance(strategy: str, recipe: dict, i: int, centroid_method: str, interpolation_method: str | None,
               seedselect_steps: int) -> dict:
    """The manifest's seed record of image i of a recipe slice."""
    if "int" in recipe:
        point = {"int": int(recipe["int"][i])}
        return point if strategy == "random" else {"init": point, "seedselect_steps": seedselect_steps}
    if strategy == "centroid":
        return {"centroid": centroid_method, "references": np.flatnonzero(recipe["subset"][i]).tolist()}
    if strategy == "clusters":
        j, used = int(recipe["cluster"][i]), np.flatnonzero(recipe["subset"][i]).tolist()
        return {"centroid": centroid_method if len(used) > 1 else None, "references": used, "cluster": j,
                "clusters": max(recipe["labels"]) + 1,
                "members": [r for r, label in enumerate(recipe["labels"]) if label == j]}
    source, denominator = int(recipe["source"][i]), 2 ** int(recipe["t_bits"])
    point = {"from": "centroid" if source < 0 else source, "to": int(recipe["target"][i]),
             "t": int(recipe["t_num"][i]) / denominator, "t_grid": [int(recipe["t_num"][i]), denominator],
             "interpolation": interpolation_method, "centroid": centroid_method}
    if strategy == "seedselect":
        return {"init": point, "seedselect_steps": seedselect_steps}
    return point
