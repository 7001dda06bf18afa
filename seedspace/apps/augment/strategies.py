"""The seed recipes of the strategies: planned as small integer arrays (cheap, fixed up front), turned into seeds
by the geometry when a shard runs, and described per image for the manifest.

A recipe is a dict of per-image numpy arrays of one class (plus the scalar ``t_bits`` for paths):

- ``random``: ``int`` (N,) seed integers, distinct, for ``seeds_from_ints``.
- ``centroid``: ``subset`` (N, k) bool, distinct subsets of >= 2 of the k inversions (row 0: all of them); the
  seed is ``ss.centroid`` of the inversions in the subset.
- ``paths`` (and ``seedselect``, which starts from them): ``source`` (N,) (-1 = the centroid of all k, else an
  inversion), ``target`` (N,) an inversion, ``t_num`` (N,): the seed is the point at t = t_num / 2^t_bits of
  ``ss.interpolate(source, target, steps=2^t_bits + 1)``. Segments (centroid -> each inversion, then every pair
  of inversions) are visited round robin in a seeded order; on each segment t runs through the cells
  j / 2^t_bits of a scrambled Sobol sequence (one coordinate per segment), which visits every cell of the grid
  once in low-discrepancy order, so t never repeats on a segment and is never an endpoint (t = 0 is skipped).
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import torch
from scipy.stats import qmc

from ... import geometry
from ...backends.base import seeds_from_ints

SOBOL_MAX_DIMENSIONS = 21201  # scipy's direction numbers


def class_rng(seed: int, class_position: int, strategy: str) -> np.random.Generator:
    """The random stream of one class: independent of every other class and of the number of classes."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(class_position, _KEYS[strategy])))


_KEYS = {"random": 0, "centroid": 1, "paths": 2, "seedselect": 2}  # seedselect refines the paths' seeds


def max_distinct(strategy: str, k: int) -> float:
    """How many distinct seeds a strategy can give from k references."""
    if strategy == "centroid":
        return 2.0 ** k - k - 1  # subsets of >= 2 references
    return math.inf


def plan_recipe(strategy: str, n: int, k: int, rng: np.random.Generator) -> dict:
    """The recipe arrays of n images of one class with k references (see the module docstring)."""
    if strategy == "random":
        return {"int": rng.choice(2 ** 63 - 1, size=n, replace=False).astype(np.int64)}
    if strategy == "centroid":
        return {"subset": _subsets(n, k, rng)}
    return _path_points(n, k, rng)


def _subsets(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    if n > max_distinct("centroid", k):
        raise ValueError(f"the centroid strategy gives at most {int(max_distinct('centroid', k))} distinct seeds from "
                         f"{k} references (centroids of subsets of >= 2); lower the images per class or use the "
                         "paths strategy")
    rows = np.ones((1, k), dtype=bool)  # row 0: all references
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


def _path_points(n: int, k: int, rng: np.random.Generator) -> dict:
    segs = segments(k)
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
                      interpolation_method: str | None, prior=None) -> torch.Tensor:
    """Seeds (n, *seed_shape) float32 of a recipe slice; every seed depends only on its own recipe entry.
    ``prior``: the norm prior of the centroids and paths (a record; None: chi(d))."""
    if strategy == "random":
        return seeds_from_ints(recipe["int"].tolist(), seed_shape)
    X = inversions.double()
    prior = None if prior is None else geometry.load_prior(prior, math.prod(seed_shape))  # resolved once
    if strategy == "centroid":
        return torch.stack([geometry.centroid(X[torch.from_numpy(mask)], method=centroid_method, prior=prior)
                            for mask in recipe["subset"]]).float()
    centre = geometry.centroid(X, method=centroid_method, prior=prior)
    steps = 2 ** int(recipe["t_bits"]) + 1
    out = torch.empty((recipe_length(recipe), *X.shape[1:]), dtype=torch.float64)
    pairs = np.stack([recipe["source"], recipe["target"]], axis=1)
    for source, target in np.unique(pairs, axis=0):  # one geodesic per segment, its grid points picked out
        rows = np.flatnonzero((pairs[:, 0] == source) & (pairs[:, 1] == target))
        start = centre if source < 0 else X[source]
        path = geometry.interpolate(start, X[target], steps=steps, method=interpolation_method, prior=prior)
        out[torch.from_numpy(rows)] = path[torch.from_numpy(recipe["t_num"][rows])]
    return out.float()


def provenance(strategy: str, recipe: dict, i: int, centroid_method: str, interpolation_method: str | None,
               seedselect_steps: int) -> dict:
    """The manifest's seed record of image i of a recipe slice."""
    if strategy == "random":
        return {"int": int(recipe["int"][i])}
    if strategy == "centroid":
        return {"centroid": centroid_method, "references": np.flatnonzero(recipe["subset"][i]).tolist()}
    source, denominator = int(recipe["source"][i]), 2 ** int(recipe["t_bits"])
    point = {"from": "centroid" if source < 0 else source, "to": int(recipe["target"][i]),
             "t": int(recipe["t_num"][i]) / denominator, "t_grid": [int(recipe["t_num"][i]), denominator],
             "interpolation": interpolation_method, "centroid": centroid_method}
    if strategy == "seedselect":
        return {"init": point, "seedselect_steps": seedselect_steps}
    return point
