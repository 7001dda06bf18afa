"""Distances between seeds: Euclidean, angular and the NAO geodesic distance."""

from __future__ import annotations

import numpy as np
import torch

from . import planar
from ._frame import angle_from_chord, pair_stats
from ._tensors import as_tensor, check_choice, check_grid, check_same_shape, flat_seeds, flat_seeds64, restore_values
from .energy import segment_energies
from .prior import ChiPrior

DISTANCE_METRICS = ("nao", "euclidean", "angular")


def nao_distances(norm_a: np.ndarray, norm_b: np.ndarray, phi: np.ndarray, dim: int, grid: int = planar.DEFAULT_GRID,
                  dot: np.ndarray = None) -> np.ndarray:
    """NAO distances of B pairs from their norms and angles (one batched 2-D solve).

    For ``dim == 1`` the geodesic is the segment; ``dot = a . b`` is then needed for its energy.
    """
    prior = ChiPrior(dim)
    if dim == 1:
        return segment_energies(norm_a**2, dot - norm_a**2, norm_a**2 + norm_b**2 - 2 * dot, prior)
    return planar.solve(np.log(norm_a), np.log(norm_b), phi, prior, grid=grid).energy


def distance(a, b, metric: str = "nao", batched: bool = False, *, grid: int = planar.DEFAULT_GRID):
    """Distance between seeds: ``nao`` = min over paths of ``int w(|x|) ds`` (energy of the NAO geodesic),
    ``euclidean`` = |a - b|, ``angular`` = angle(a, b) in radians.

    Returns a float; with ``batched=True`` (a, b of shape (B, *seed_shape)) float64 values of length B
    (numpy for numpy input, else a tensor on the input device).
    """
    check_choice(metric, DISTANCE_METRICS, "distance metric")
    grid = check_grid(grid)
    ta, spec = as_tensor(a, "a")
    tb, _ = as_tensor(b, "b")
    check_same_shape(ta, tb)
    fa = flat_seeds(ta, "a", batched)
    fb = flat_seeds(tb.to(ta.device), "b", batched)
    stats = pair_stats(fa, fb, euclidean=metric == "euclidean")
    if metric == "euclidean":
        values = stats.euclidean
    elif metric == "angular":
        values = stats.phi
    else:
        dot = (fa.to(torch.float64) * fb.to(torch.float64)).sum(dim=1).cpu().numpy() if fa.shape[1] == 1 else None
        values = nao_distances(stats.norm_a, stats.norm_b, stats.phi, fa.shape[1], grid, dot)
    return restore_values(values, spec) if batched else float(values[0])


def pairwise_distances(seeds, metric: str = "nao", *, grid: int = planar.DEFAULT_GRID):
    """Symmetric (k, k) matrix of ``distance(seeds[i], seeds[j], metric)`` for seeds (k, *seed_shape);
    NAO solves all k(k-1)/2 pairs in one batched call.  float64, numpy for numpy input, else a tensor."""
    check_choice(metric, DISTANCE_METRICS, "distance metric")
    grid = check_grid(grid)
    t, spec = as_tensor(seeds, "seeds")
    X = flat_seeds64(t, "seeds", batched=True)
    k = X.shape[0]
    norms = torch.linalg.vector_norm(X, dim=1)
    if metric == "euclidean":
        D = torch.cdist(X[None], X[None], compute_mode="donot_use_mm_for_euclid_dist")[0]
        return restore_values(D.cpu().numpy(), spec)
    U = X / norms[:, None]
    phi = angle_from_chord(torch.cdist(U[None], U[None], compute_mode="donot_use_mm_for_euclid_dist")[0]).cpu().numpy()
    if metric == "angular":
        out = phi
    else:
        i, j = np.triu_indices(k, 1)
        n = norms.cpu().numpy()
        dot = (X @ X.T).cpu().numpy()[i, j] if X.shape[1] == 1 else None
        out = np.zeros((k, k))
        if i.size:
            vals = nao_distances(n[i], n[j], phi[i, j], X.shape[1], grid, dot)
            out[i, j] = vals
            out[j, i] = vals
    np.fill_diagonal(out, 0.0)
    return restore_values(out, spec)
