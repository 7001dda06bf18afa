"""True NAO energy of a polyline: ``sum_j int_0^1 w(|x_j + s (x_{j+1} - x_j)|) |x_{j+1} - x_j| ds``."""

from __future__ import annotations

import numpy as np
import torch

from ._tensors import as_tensor, restore_values
from .prior import ChiPrior

_SUB = 8  # graded sub-intervals on each side of a segment's closest approach to the origin
_GRADE = (np.arange(_SUB + 1) / _SUB) ** 3
_X, _W = np.polynomial.legendre.leggauss(8)


def _nodes_and_weights():
    """Quadrature on [0, 1] for integrands with a possible log singularity at 0 (cubic grading)."""
    lo, hi = _GRADE[:-1, None], _GRADE[1:, None]
    x = lo + (hi - lo) * (_X + 1) / 2
    wts = (hi - lo) * _W / 2
    return x.ravel(), wts.ravel()


_T, _TW = _nodes_and_weights()


def segment_energies(sq_start: np.ndarray, cross: np.ndarray, sq_len: np.ndarray, prior: ChiPrior) -> np.ndarray:
    """Energies of segments given ``|x_j|^2``, ``x_j . dx_j`` and ``|dx_j|^2`` (arrays of one shape).

    ``|x(s)|^2 = r_perp^2 + (s - s_c)^2 |dx|^2`` with ``s_c`` the closest approach to the origin; both sides
    of ``s* = clip(s_c, 0, 1)`` use a quadrature graded towards ``s*`` (where ``w`` may be log-singular).
    """
    length = np.sqrt(sq_len)
    safe = np.where(sq_len > 0, sq_len, 1.0)
    s_closest = -cross / safe  # unclipped parameter of the closest approach to the origin
    r_perp2 = np.maximum(sq_start + cross * s_closest, 0.0)
    s_star = np.where(sq_len > 0, np.clip(s_closest, 0.0, 1.0), 0.0)
    total = np.zeros(np.shape(sq_start))
    for sign, side_len in ((-1.0, s_star), (1.0, 1.0 - s_star)):  # both sides of s*, graded towards s*
        s = s_star[..., None] + sign * side_len[..., None] * _T
        r = np.sqrt(r_perp2[..., None] + (s - s_closest[..., None]) ** 2 * sq_len[..., None])
        w = -prior._log_prob(r)
        total = total + side_len * (w @ _TW)
    return np.where(sq_len > 0, total * length, 0.0)


def path_energy(path, batched: bool = False):
    """NAO energy of a polyline, ``sum_j int w(|x|) ds`` over its straight segments (fine graded
    Gauss-Legendre quadrature; only O(n d) dot products touch the d-dimensional data).

    ``path``: (n, *seed_shape), or (n, B, *seed_shape) with ``batched=True`` -> one energy per column.
    Returns a float, or float64 values of length B (numpy for numpy input, else a tensor on the input device).
    """
    t, spec = as_tensor(path, "path")
    if t.dim() < (2 if batched else 1) or t.shape[0] < 2:
        raise ValueError(f"path must have shape (n >= 2, {'B, ' if batched else ''}*seed_shape), got {tuple(t.shape)}")
    n = t.shape[0]
    P = t.reshape(n, t.shape[1] if batched else 1, -1).to(torch.float64)
    if P.shape[-1] == 0:
        raise ValueError("path has seed dimension 0")
    if not bool(torch.isfinite(P).all()):
        raise ValueError("path contains non-finite values (nan or inf)")
    start, step = P[:-1], P[1:] - P[:-1]
    sq_start = (start * start).sum(-1).cpu().numpy()
    cross = (start * step).sum(-1).cpu().numpy()
    sq_len = (step * step).sum(-1).cpu().numpy()
    values = segment_energies(sq_start, cross, sq_len, ChiPrior(P.shape[-1])).sum(axis=0)
    return restore_values(values, spec) if batched else float(values[0])
