"""Distances between seeds: Euclidean, angular and the NAO geodesic distance."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from . import planar
from ._frame import angle_from_chord, pair_stats
from ._tensors import as_tensor, check_choice, check_grid, check_norms, check_same_shape, flat_seeds, restore_values
from .distance_table import TABLE_RTOL, table_for
from .energy import segment_energies
from .prior_io import resolve_prior

DISTANCE_METRICS = ("nao", "euclidean", "angular")
PAIRWISE_METHODS = ("auto", "exact", "table")
#: with method="auto", matrices with more pairs than this use the table (its build costs ~10^4 exact solves)
TABLE_MIN_PAIRS = 40_000
_SOLVE_CHUNK = 8192
_NORM_ROWS = 1024


def nao_distances(norm_a: np.ndarray, norm_b: np.ndarray, phi: np.ndarray, dim: int, grid: int = planar.DEFAULT_GRID,
                  dot: np.ndarray = None, prior=None) -> np.ndarray:
    """NAO distances of B pairs from their norms and angles (one batched 2-D solve).

    For ``dim == 1`` the geodesic is the segment; ``dot = a . b`` is then needed for its energy.
    """
    prior = resolve_prior(prior, dim)
    if dim == 1:
        return segment_energies(norm_a**2, dot - norm_a**2, norm_a**2 + norm_b**2 - 2 * dot, prior)
    ua, ub = np.log(norm_a), np.log(norm_b)
    out = np.empty(ua.shape)
    for s in range(0, ua.size, _SOLVE_CHUNK):  # bounded memory: the solver holds (pairs, grid) arrays
        sl = slice(s, s + _SOLVE_CHUNK)
        out[sl] = planar.solve(ua[sl], ub[sl], phi[sl], prior, grid=grid).energy
    return out


def distance(a, b, metric: str = "nao", batched: bool = False, *, grid: int = planar.DEFAULT_GRID, prior=None):
    """Distance between seeds: ``nao`` = min over paths of ``int w(|x|) ds`` (energy of the NAO geodesic,
    ``w = -log p``, p the ``prior``: chi(d) by default), ``euclidean`` = |a - b|, ``angular`` = angle(a, b) in radians.

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
        values = nao_distances(stats.norm_a, stats.norm_b, stats.phi, fa.shape[1], grid, dot, prior)
    return restore_values(values, spec) if batched else float(values[0])


def _flat_pair_input(X, Y):
    tx, spec = as_tensor(X, "X")
    fx = flat_seeds(tx, "X", batched=True)
    if Y is None:
        return fx, None, spec
    ty, _ = as_tensor(Y, "Y")
    fy = flat_seeds(ty.to(tx.device), "Y", batched=True)
    if fy.shape[1] != fx.shape[1]:
        raise ValueError(f"X and Y must have seeds of one dimension, got {fx.shape[1]} and {fy.shape[1]}")
    return fx, fy, spec


def _norms(F: torch.Tensor, name: str) -> torch.Tensor:
    """float64 norms of the rows, a block of rows at a time (no float64 copy of a whole float32 matrix)."""
    n = torch.empty(F.shape[0], dtype=torch.float64, device=F.device)
    for s in range(0, F.shape[0], _NORM_ROWS):
        n[s:s + _NORM_ROWS] = torch.linalg.vector_norm(F[s:s + _NORM_ROWS].to(torch.float64), dim=1)
    check_norms(n, name)
    return n


def pairwise_distances(X, Y=None, metric: str = "nao", *, grid: int = planar.DEFAULT_GRID, prior=None,
                       method: str = "auto"):
    """Matrix ``D[i, j] = distance(X[i], Y[j], metric)`` (X (n, *seed_shape), Y (m, *seed_shape); Y=None: X with
    itself, symmetric with a zero diagonal).  float64, numpy for numpy input, else a tensor.

    NAO (``prior`` as in :func:`distance`): ``method="exact"`` solves every pair (one batched 2-D solve; k(k-1)/2
    pairs when Y is None); ``"table"`` evaluates the distance tabulated in (|a|, |b|, angle) from the Gram matrix
    ``X Y^T`` and the norms, block by block (relative error <= 1e-3 of the exact solver, checked when the table is
    built; if a table cannot reach it the exact solver is used, with a warning: for chi(d) over seeds' norms that
    happens when angles below ~5 shell widths occur, ~0.03 rad at d = 16384, ~0.1 rad at d = 1024, where the
    geodesic switches between two routes); ``"auto"``: the table above 40,000 pairs.
    Angles come from the Gram matrix in the input's dtype (float32 input: about 1e-3 rad near 0 angle).
    """
    check_choice(metric, DISTANCE_METRICS, "distance metric")
    check_choice(method, PAIRWISE_METHODS, "pairwise method")
    grid = check_grid(grid)
    fx, fy, spec = _flat_pair_input(X, Y)
    symmetric = fy is None
    fy = fx if symmetric else fy
    nx, ny = _norms(fx, "X"), (None if symmetric else _norms(fy, "Y"))
    ny = nx if symmetric else ny
    if metric == "euclidean":
        X64, Y64 = fx.to(torch.float64), fy.to(torch.float64)
        out = torch.cdist(X64[None], Y64[None], compute_mode="donot_use_mm_for_euclid_dist")[0].cpu().numpy()
    else:  # angular, nao
        D = fx.shape[1]
        prior = resolve_prior(prior, D) if metric == "nao" else None
        pairs = fx.shape[0] * fy.shape[0] // (2 if symmetric else 1)
        use_table = metric == "nao" and D > 1 and (method == "table" or method == "auto" and pairs > TABLE_MIN_PAIRS)
        table = None
        if use_table:
            gram_dtype = torch.float64 if fx.dtype == torch.float64 else torch.float32
            A, B = fx.to(gram_dtype), fy.to(gram_dtype)
            inv = (1.0 / nx.to(gram_dtype)), (1.0 / ny.to(gram_dtype))

            def cos_block(rows):
                return (A[rows] @ B.T) * inv[0][rows, None] * inv[1][None, :]

            # the table covers the angles of a sample of rows (with a margin); others are solved exactly
            sample = torch.from_numpy(np.random.default_rng(0).choice(fx.shape[0], min(fx.shape[0], 64), replace=False))
            phi = torch.arccos(cos_block(sample).to(torch.float64).clamp(-1.0, 1.0))
            phi = phi[phi > 1e-3]  # (near-)duplicates are few: solved exactly
            span = (float(phi.min()) * 0.9, min(float(phi.max()) * 1.1, np.pi)) if phi.numel() else (0.0, np.pi)
            table = table_for(prior, torch.cat([nx, ny]).cpu().numpy(), grid, span)
        if table is not None and table.ok:
            out = table.matrix(nx, ny, cos_block).cpu().numpy()
        elif table is not None:
            warnings.warn(f"the NAO distance table reaches only {table.error:.1e} relative error on these norms "
                          f"(bound {TABLE_RTOL:.0e}); solving all {pairs} pairs exactly, which is slow")
        if table is None or not table.ok:
            out = _exact_matrix(fx, fy, nx, ny, symmetric, metric, grid, prior)
    if symmetric:
        np.fill_diagonal(out, 0.0)
    return restore_values(out, spec)


def _exact_matrix(fx, fy, nx, ny, symmetric: bool, metric: str, grid: int, prior) -> np.ndarray:
    """Angles from the chords of unit vectors (accurate at 0 and pi), NAO by one batched exact solve."""
    X64, Y64 = fx.to(torch.float64), fy.to(torch.float64)
    U, V = X64 / nx[:, None], Y64 / ny[:, None]
    phi = angle_from_chord(torch.cdist(U[None], V[None], compute_mode="donot_use_mm_for_euclid_dist")[0]).cpu().numpy()
    if metric == "angular":
        return phi
    n, m = phi.shape
    i, j = np.triu_indices(n, 1) if symmetric else (a.ravel() for a in np.indices((n, m)))
    na, nb = nx.cpu().numpy(), ny.cpu().numpy()
    dot = (X64 @ Y64.T).cpu().numpy()[i, j] if fx.shape[1] == 1 else None
    out = np.zeros((n, m))
    if i.size:
        vals = nao_distances(na[i], nb[j], phi[i, j], fx.shape[1], grid, dot, prior)
        out[i, j] = vals
        if symmetric:
            out[j, i] = vals
    return out
